"""``execlab sweep bench SWEEP.yaml``: trials per second of one sweep, run from scratch in this
process, on the local pool, and on a loopback Dask cluster with one and with two workers.

Every backend runs the same trials into a fresh folder (nothing reused). Cluster start-up is
measured apart; the first trial on each new process pays its imports and the compiled kernel's
load, which a sweep of many trials spreads thin.
"""

from __future__ import annotations

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
    res = run_sweep(sweep, backend)
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
        identical = _same_tables([r["table"] for r in rows])
        for r in rows:
            r.pop("table")
            r["same_table"] = identical
    return rows


def _same_tables(paths: list[str]) -> bool:
    try:
        from .results import same_tables
    except ImportError:
        return False
    paths = [p for p in paths if p and p != "None"]
    try:
        return bool(paths) and all(same_tables(Path(paths[0]), Path(p)) for p in paths[1:])
    except ImportError:
        return False


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = f"{'backend':34} {'trials':>6} {'failed':>6} {'wall s':>8} {'trials/s':>9} {'start s':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['backend']:34} {r['trials']:>6} {r['failed']:>6} {r['wall_s']:>8.2f} "
                     f"{r['trials_per_s'] or 0:>9.3f} {r.get('cluster_start_s', ''):>8}")
    lines.append(f"results tables identical across backends: {'yes' if rows and rows[0]['same_table'] else 'no'}")
    return "\n".join(lines)
