"""``execlab sweep SWEEP.yaml [--cluster ADDRESS]`` and ``execlab sweep report SWEEP.yaml``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..spec.errors import SpecError, SpecErrors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a base session over params x recordings; 'sweep report FILE' writes the HTML page",
                       description="Run every trial of a sweep file (docs/sweeps.md) on a local process pool "
                                   "(default), in this process (--workers 1), or on a Dask cluster (--cluster). "
                                   "Finished trials are kept and reused. 'execlab sweep report SWEEP.yaml' writes "
                                   "the report of a sweep directory.")
    p.add_argument("file", metavar="SWEEP.yaml | report | bench", help="the sweep file, or 'report' or 'bench' followed by it")
    p.add_argument("target", nargs="?", metavar="SWEEP.yaml", help="with 'report' or 'bench': the sweep file")
    p.add_argument("--workers", type=int, help="local pool processes (default: all cores; 1: in this process)")
    p.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--shared-inputs", action="store_true",
                   help="with --cluster: workers read the recordings at the same paths (shared storage) instead of receiving them")
    p.add_argument("--out", type=Path, help="the sweep directory (default: the file's out:, or runs/sweeps/<name>)")
    p.add_argument("--check", action="store_true", help="validate the sweep file and list the plan; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--html", type=Path, help="with 'report': where to write the page (default: OUT/report.html)")
    p.add_argument("--best", type=int, default=3, help="with 'report': write the run reports of this many best points (default 3)")
    p.add_argument("--json", action="store_true", help="with 'bench': print the figures as JSON")
    p.set_defaults(func=run)


def _load(path: str, out: Path | None):
    from .spec import load_sweep

    if not Path(path).is_file():
        raise SpecErrors([SpecError(path, 0, 0, "no such sweep file; expected a YAML file (docs/sweeps.md)")])
    sweep = load_sweep(path)
    if out is not None:
        sweep.out = out.resolve()
    return sweep


def _backend(args: argparse.Namespace):
    from .backends import DaskCluster, LocalPool, Serial

    if args.cluster:
        try:
            return DaskCluster(args.cluster, shared=args.shared_inputs)
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise SpecErrors([SpecError("--cluster", 0, 0, f"cannot use the cluster at {args.cluster} ({exc}); "
                                                           "expected a running Dask scheduler (dask scheduler; dask worker ADDRESS)")]) from None
    if args.workers is not None and args.workers < 1:
        raise SpecErrors([SpecError("--workers", 0, 0, f"{args.workers} workers; expected 1 or more")])
    if args.workers == 1:
        return Serial()
    return LocalPool(args.workers)


def run(args: argparse.Namespace) -> int:
    if args.file in ("report", "bench"):
        if not args.target:
            raise SpecErrors([SpecError(f"sweep {args.file}", 0, 0, f"no sweep file; expected execlab sweep {args.file} SWEEP.yaml")])
        return _report(args) if args.file == "report" else _bench(args)
    if args.target:
        raise SpecErrors([SpecError(args.target, 0, 0, "unexpected argument; expected execlab sweep SWEEP.yaml or execlab sweep report SWEEP.yaml")])
    sweep = _load(args.file, args.out)
    if args.check:
        from .space import point_source

        points = sum(len(b) for b in point_source(sweep).batches()) if sweep.method != "optuna" else sweep.trials
        per = sum(len(r.symbols) for r in sweep.recordings)
        print(f"ok  {args.file}: {points} points x {per} recording-symbol pairs = {points * per} trials; out {sweep.out}")
        return 0
    from .runner import run_sweep

    backend = _backend(args)
    result = run_sweep(sweep, backend, progress=not args.no_progress and sys.stderr.isatty(),
                       log=lambda m: print(m, file=sys.stderr))
    print(_summary_text(sweep, result))
    if result.interrupted:
        return 130
    # Some failed trials still make a sweep; none that finished does not.
    return 0 if any(r["status"] == "ok" for r in result.records) else 2


def _summary_text(sweep, result) -> str:
    from .rank import rank_points

    lines = [f"{len(result.records)} trials: {result.ran} run, {result.reused} reused, {result.failed} failed"
             + (" (stopped early)" if result.interrupted else "")]
    if result.table is not None:
        lines.append(f"results: {result.table}")
    ranked = rank_points(sweep, result.records)
    if ranked:
        lines.append("best points:")
        for p in ranked[:5]:
            objs = ", ".join(f"{o.name} {v:.4g}" for o, v in zip(sweep.objectives, p.values or [], strict=False))
            point = " ".join(f"{k}={v}" for k, v in p.point.items())
            lines.append(f"  {'ok ' if p.feasible else 'x  '}{point}  {objs or p.note}")
    lines.append(f"next: execlab sweep report {sweep.path}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    from .report import write_report
    from .runner import collect

    sweep = _load(args.target, args.out)
    records = collect(sweep)
    if not records:
        raise SpecErrors([SpecError(str(sweep.out), 0, 0, "no finished trials here; expected a sweep directory (run execlab sweep first)")])
    path = write_report(sweep, records, args.html or sweep.out / "report.html", best=max(args.best, 0))
    print(f"report: {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from .bench import bench_sweep, format_rows

    _load(args.target, None)  # a bad file fails here, before any cluster starts
    rows = bench_sweep(args.target, args.workers, say=lambda m: print(m, file=sys.stderr))
    print(json.dumps(rows, indent=2) if args.json else format_rows(rows))
    return 0
