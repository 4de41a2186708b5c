"""``execlab run``: a configured paper session."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..spec.errors import SpecError, SpecErrors
from ..spec.loader import parse_yaml
from ..spec.session import REPO_ROOT, Session, load_session
from .console import render_summary
from .run import run_session


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a paper session (default: the embedded default, no network)")
    p.add_argument("config", nargs="?", help="session config (default: configs/default.yaml)")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="recordings to replay instead of the config's source")
    p.add_argument("--symbols", help="comma-separated symbols (default: the config's)")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<session>-<UTC time>); must be new or empty")
    p.add_argument("--force", action="store_true",
                   help="replace the run already in --out (never one a running session holds)")
    p.add_argument("--speed", type=positive_speed, help="replay speed factor (default: as fast as possible)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="MACHINE.PARAM=VALUE",
                   help="override a param (repeatable)")
    p.add_argument("--watch", action="store_true", help="hot-reload the config and specs when they change")
    p.add_argument("--scalar", action="store_true",
                   help="replay event by event on the reference path (same log, slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def positive_speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a replay speed; expected a positive number (1 = real time)")
    return value


def default_out_dir(session: Session, now: datetime | None = None) -> Path:
    """runs/<session>-<UTC time>, under the config's output.dir when it names one. Only a name:
    ``run_session(..., unique=True)`` appends -2, -3... when it is taken."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = (session.data.get("output") or {}).get("dir")
    root = session.resolve(base) if base else REPO_ROOT / "runs"
    if base:
        _check_output_root(session, root)
    return root / f"{session.name}-{stamp}"


def _check_output_root(session: Session, root: Path) -> None:
    """output.dir must be a folder (or not exist yet), and not the filesystem root."""
    problem = None
    absolute = Path(os.path.abspath(root))
    if absolute.parent == absolute:
        problem = f"{root} is the filesystem root; expected a folder for run directories (e.g. ../runs)"
    elif root.exists() and not root.is_dir():
        what = "a regular file" if root.is_file() else "a special file"
        problem = f"{root} is {what}, not a directory; expected a folder for run directories"
    if problem:
        doc = parse_yaml(session.snapshot["config"], session.path)
        raise SpecErrors([doc.error(("output", "dir"), f"output.dir: {problem}")])


def run(args: argparse.Namespace) -> int:
    session = load_session(args.config, args.sets)
    if args.symbols:
        session.data["symbols"] = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    out = args.out or default_out_dir(session)
    live = session.source["kind"] == "live" and not args.replay
    try:
        result = run_session(session, out, replay=args.replay, speed=args.speed,
                             progress=not args.no_progress and not args.json and sys.stderr.isatty(),
                             watch=args.watch or live, scalar=args.scalar, force=args.force, unique=args.out is None)
    except OSError as exc:  # a full disk, a file size limit, a directory gone read-only
        where = exc.filename or out
        raise SpecErrors([SpecError(str(where), 0, 0, f"cannot write ({exc.strerror or exc}); the session stopped. "
                                    "What was written is kept; the audit log is valid up to its last complete line")]) from None
    out = result.out_dir
    if args.json:
        print(json.dumps(result.summary, indent=2, sort_keys=True, default=str))
    else:
        print(render_summary(result.summary))
        print(f"\nrun directory: {out}")
        print(f"next: execlab report {out}   |   execlab explain {out} --at +60   |   execlab verify {out}")
    return 0
