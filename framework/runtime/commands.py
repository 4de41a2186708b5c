"""``execlab run``: a configured paper session."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import workspace

if TYPE_CHECKING:
    from ..spec.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a paper session (default: the embedded default, no network)")
    p.add_argument("config", nargs="?", help="session config (default: configs/default.yaml)")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="recordings to replay instead of the config's source")
    p.add_argument("--symbols", help="comma-separated symbols (default: the config's)")
    p.add_argument("--symbol", help="the symbol of a Binance CSV dump whose file name does not say it")
    p.add_argument("--from", dest="start", metavar="DATE",
                   help="replay of a folder: only files dated from DATE (YYYY-MM-DD or YYYY-MM)")
    p.add_argument("--to", dest="end", metavar="DATE", help="replay of a folder: only files dated up to DATE, inclusive")
    p.add_argument("--url", help="live: websocket base URL (a mirror, a testnet or `execlab fake-binance`)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="live: stop after this long")
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
    root = session.resolve(base) if base else (workspace.of_file(session.path) or Path.cwd()) / "runs"
    if base:
        _check_output_root(session, root)
    return root / f"{session.name}-{stamp}"


def _check_output_root(session: Session, root: Path) -> None:
    """output.dir must be a folder (or not exist yet), and not the filesystem root."""
    from ..spec.errors import SpecErrors
    from ..spec.loader import parse_yaml

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
    # imported here: `execlab --help` loads no command's machinery
    from ..spec.errors import SpecError, SpecErrors
    from ..spec.session import load_session
    from .console import render_summary
    from .live_console import LiveConsole
    from .run import NO_DATA, run_session

    session = load_session(args.config, args.sets)
    if args.symbols:
        session.data["symbols"] = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if args.symbol:
        session.data["source"]["symbol"] = args.symbol.strip().upper()
    for key, value in (("from", args.start), ("to", args.end)):
        if value is not None:
            session.data["source"][key] = value
    live = session.source["kind"] == "live" and not args.replay
    for flag, key, value in (("--url", "url", args.url), ("--duration", "duration_s", args.duration)):
        if value is None:
            continue
        if not live:
            raise SpecErrors([SpecError(flag, 0, 0, f"{flag} is for live sessions; expected a config with source.kind: live")])
        if key == "duration_s" and not value > 0:
            raise SpecErrors([SpecError(flag, 0, 0, f"--duration {value}; expected a positive number of seconds")])
        session.data["source"][key] = value
    out = args.out or default_out_dir(session)
    # Another area may watch the session: the dashboard adds its flags and this hook.
    watcher = args.observe_session(args, session) if getattr(args, "observe_session", None) else None
    console = LiveConsole(session.symbols) if live and not args.json else None
    observers = [o for o in (console, watcher.observe if watcher is not None else None) if o is not None]
    if console is not None:
        console.start()
    try:
        result = run_session(session, out, replay=args.replay, speed=args.speed,
                             progress=not args.no_progress and not args.json and sys.stderr.isatty(),
                             watch=args.watch or live, scalar=args.scalar, observer=_fan_out(observers),
                             force=args.force, unique=args.out is None)
    except OSError as exc:  # a full disk, a file size limit, a directory gone read-only
        where = exc.filename or out
        raise SpecErrors([SpecError(str(where), 0, 0, f"cannot write ({exc.strerror or exc}); the session stopped. "
                                    "What was written is kept; the audit log is valid up to its last complete line")]) from None
    finally:
        if console is not None:
            console.stop()
    out = result.out_dir
    if args.json:
        print(json.dumps(result.summary, indent=2, sort_keys=True, default=str))
    else:
        print(render_summary(result.summary))
        print(f"\nrun directory: {out}")
        print(f"next: execlab report {out}   |   execlab explain {out} --at +60   |   execlab verify {out}")
    if watcher is not None:
        watcher.finish()
    if live and NO_DATA in result.summary["end_reason"]:
        print(f"the live session received no market data ({result.summary['end_reason']}); see the feed messages above",
              file=sys.stderr)
        return 2
    return 0


def _fan_out(observers: list) -> Callable[[dict], None] | None:
    """One observer for run_session that passes each record to every watcher of the session."""
    if not observers:
        return None
    if len(observers) == 1:
        return observers[0]

    def observe(record: dict) -> None:
        for o in observers:
            o(record)

    return observe
