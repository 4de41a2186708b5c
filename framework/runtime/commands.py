"""``execlab run``: a configured paper session."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..spec import workspace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a paper session (default: the embedded default, no network)")
    p.add_argument("config", nargs="?", help="session config (default: configs/default.yaml)")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="recordings to replay instead of the config's source")
    p.add_argument("--symbols", help="comma-separated symbols (default: the config's)")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<session>-<UTC time>)")
    p.add_argument("--speed", type=float, help="replay speed factor (default: as fast as possible)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="MACHINE.PARAM=VALUE",
                   help="override a param (repeatable)")
    p.add_argument("--watch", action="store_true", help="hot-reload the config and specs when they change")
    p.add_argument("--scalar", action="store_true",
                   help="replay event by event on the reference path (same log, slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def default_out_dir(session) -> Path:
    """runs/<session>-<UTC time>, under the config's output.dir when it names one."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = (session.data.get("output") or {}).get("dir")
    root = session.resolve(base) if base else (workspace.of_file(session.path) or Path.cwd()) / "runs"
    return root / f"{session.name}-{stamp}"


def run(args: argparse.Namespace) -> int:
    from ..spec.session import (
        load_session,  # imported here: `execlab --help` loads no command's machinery
    )
    from .console import render_summary
    from .run import run_session

    session = load_session(args.config, args.sets)
    if args.symbols:
        session.data["symbols"] = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    out = args.out or default_out_dir(session)
    live = session.source["kind"] == "live" and not args.replay
    result = run_session(session, out, replay=args.replay, speed=args.speed,
                         progress=not args.no_progress and not args.json and sys.stderr.isatty(),
                         watch=args.watch or live, scalar=args.scalar)
    if args.json:
        print(json.dumps(result.summary, indent=2, sort_keys=True, default=str))
    else:
        print(render_summary(result.summary))
        print(f"\nrun directory: {out}")
        print(f"next: execlab report {out}   |   execlab explain {out} --at +60   |   execlab verify {out}")
    return 0
