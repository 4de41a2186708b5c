"""``execlab sweep bench SWEEP.yaml``: trials per second of one sweep, run from scratch in this
process, on the local pool, and on a loopback Dask cluster with one and with two workers.

Every backend runs the same trials into a fresh folder (nothing reused). Cluster start-up is
measured apart; the first trial on each new process pays its imports and the compiled kernel's
load, which a sweep of many trials spreads thin.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .backends import DaskCluster, LocalPool, Serial
from .runner import run_sweep
from .spec import load_sweep


def _timed(sweep_path: str, out: Path, backend) -> dict[str, Any]:
    sweep = load_sweep(sweep_path)
    sweep.out = out
    t0 = time.perf_counter()
    res = run_sweep(sweep, backend, log=lambda m: print(m, file=sys.stderr) if "failed" in m else None)
    wall = time.perf_counter() - t0
    return {"trials": res.ran, "failed": res.failed, "wall_s": round(wall, 2),
            "trials_per_s": round(res.ran / wall, 3) if wall else None, "table": str(res.table)}


def bench_sweep(sweep_path: str, pool_workers: int | None = None, cluster_workers: tuple[int, ...] = (1, 2),
                say=print) -> list[dict[str, Any]]:
    from .cluster import LoopbackCluster

    rows = []
    with tempfile.TemporaryDirectory(prefix="execlab-sweep-bench-") as tmp:
        root = Path(tmp)
        say("serial ...")
        rows.append({"backend": "serial (this process)", **_timed(sweep_path, root / "serial", Serial())})
        pool = LocalPool(pool_workers)
        say(f"{pool.describe()} ...")
        rows.append({"backend": pool.describe(), **_timed(sweep_path, root / "pool", pool)})
        for n in cluster_workers:
            say(f"loopback Dask cluster, {n} worker(s) ...")
            t0 = time.perf_counter()
            with LoopbackCluster(n, root / f"cluster{n}", {"EXECLAB_SWEEP_CACHE": str(root / f"cache{n}")}) as address:
                started = time.perf_counter() - t0
                row = _timed(sweep_path, root / f"dask{n}", DaskCluster(address))
            rows.append({"backend": f"Dask loopback, {n} worker{'s' if n > 1 else ''}", **row,
                         "cluster_start_s": round(started, 2)})
        difference = _table_difference([r["table"] for r in rows])
        for r in rows:
            r.pop("table")
            r["same_table"] = difference is None
            r["table_difference"] = difference
    return rows


def _table_difference(paths: list[str]) -> str | None:
    """None when every backend's table is the same; else the first difference."""
    from .results import table_difference

    paths = [p for p in paths if p and p != "None"]
    if len(paths) < 2:
        return "fewer than two results tables (is pyarrow installed?)"
    for p in paths[1:]:
        diff = table_difference(Path(paths[0]), Path(p))
        if diff is not None:
            return f"{Path(p).parent.name}: {diff}"
    return None


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = f"{'backend':34} {'trials':>6} {'failed':>6} {'wall s':>8} {'trials/s':>9} {'start s':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['backend']:34} {r['trials']:>6} {r['failed']:>6} {r['wall_s']:>8.2f} "
                     f"{r['trials_per_s'] or 0:>9.3f} {r.get('cluster_start_s', ''):>8}")
    diff = rows[0]["table_difference"] if rows else "no rows"
    lines.append("results tables identical across backends: " + ("yes" if diff is None else f"no ({diff})"))
    return "\n".join(lines)
