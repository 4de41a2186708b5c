"""``execlab dashboard RUN`` (a finished run, with a time slider) and the ``--dashboard`` flags
of ``execlab run`` (a session as it runs).

The flags are added here to the ``run`` parser, with ``observe_session``: ``execlab run`` calls
it before the session, passes its ``observe`` to ``run_session`` and calls ``finish()`` after
the summary. The session's code does not know the dashboard exists.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..spec.errors import SpecError, SpecErrors

if TYPE_CHECKING:  # the server, layout and log reader load only when a page is served
    from .server import DashboardServer

DEFAULT_PORT = 8765


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port; expected 0..65535 (0: any free port)")
    return port


def _access_flags(p: argparse._ActionsContainer, prefix: str) -> None:
    p.add_argument(f"--{prefix}host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1); any other needs the token, printed in the address")
    p.add_argument(f"--{prefix}token", help="the token pages must present (default: a random one when not on loopback)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="a finished run in the browser, with a time slider")
    p.add_argument("run", type=Path, help="a run directory (written by execlab run)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    _access_flags(p, "")
    p.set_defaults(func=dashboard)

    b = sub.add_parser("dashboard-bench", help="what the dashboard costs a session (wall time, messages, per-record cost)")
    b.add_argument("config", nargs="?", help="session config (default: configs/default.yaml)")
    b.add_argument("--repeat", type=int, default=3, help="runs of each kind; the best is kept (default 3)")
    b.add_argument("--json", action="store_true", help="print the figures as JSON")
    b.set_defaults(func=bench)

    run = sub.choices.get("run")
    if run is not None:
        g = run.add_argument_group("dashboard")
        g.add_argument("--dashboard", nargs="?", const=DEFAULT_PORT, type=_port, metavar="PORT",
                       help=f"serve a live page of the session on PORT (default {DEFAULT_PORT}); read-only")
        _access_flags(g, "dashboard-")
        run.set_defaults(observe_session=observe_session)


def _announce(server: DashboardServer, what: str) -> None:
    print(f"dashboard ({what}): {server.url}", file=sys.stderr, flush=True)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _serve_until_interrupted(server: DashboardServer) -> None:
    """Serve until Ctrl-C or SIGTERM (a service manager's stop), then close the pages."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: no handler
        previous = None
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class SessionWatch:
    """The page of a session run by ``execlab run``: ``observe`` is the session's observer;
    ``finish()``, once the summary is printed, keeps the page up until Ctrl-C after a session
    that reached its end, and closes it at once after one stopped by a signal."""

    def __init__(self, server: DashboardServer):
        self.server = server
        self.observe = server.observe

    def finish(self) -> None:
        if self.server.ended_by_signal:
            self.server.stop()
            return
        print(f"dashboard: the session ended; still serving {self.server.url} (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        _serve_until_interrupted(self.server)


def observe_session(args: argparse.Namespace, session: Any) -> SessionWatch | None:
    """Called by ``execlab run`` before the session: the page, when ``--dashboard`` asks for one."""
    if getattr(args, "dashboard", None) is None:
        return None
    from .layout import layout
    from .server import DashboardServer

    live = session.source["kind"] == "live" and not args.replay
    server = DashboardServer(layout(session.machine_set, mode="live" if live else "replay"),
                             host=args.dashboard_host, port=args.dashboard, token=args.dashboard_token)
    server.start()  # a daemon thread: an error in the session ends the process, and the page
    _announce(server, "live" if live else "replay")
    return SessionWatch(server)


def load_run_records(run: Path) -> list[dict[str, Any]]:
    """The run's records. A log still being written (or a killed run's) may end in a torn
    line: the records before it are shown. Any other bad line is an error at its line."""
    from ..audit.runlog import log_path, read_lines

    path = log_path(run)
    lines = read_lines(run)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()
    records = []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            col = getattr(exc, "colno", 0)
            raise SpecErrors([SpecError(str(path), n, col, "not a JSON object; expected one audit record per line")]) from None
        if not isinstance(record, dict):
            raise SpecErrors([SpecError(str(path), n, 1, "not a JSON object; expected one audit record per line")])
        records.append(record)
    return records


def dashboard(args: argparse.Namespace) -> int:
    from ..audit.runlog import run_error, run_machine_set
    from .history import History
    from .layout import layout
    from .server import DashboardServer

    records = load_run_records(args.run)
    if not records or records[0].get("kind") != "session_start":
        raise run_error(args.run, "the log does not start with session_start; expected an audit log written by execlab run")
    machine_set = run_machine_set(args.run)
    hello = layout(machine_set, mode="run")
    history = History(records, hello["charted"])
    server = DashboardServer(hello, host=args.host, port=args.port, token=args.token, history=history)
    server.start()
    _announce(server, f"{len(records)} records")
    _serve_until_interrupted(server)
    return 0


def bench(args: argparse.Namespace) -> int:
    from .measure import format_text, measure

    if args.repeat < 1:
        raise SpecErrors([SpecError("--repeat", 0, 0, f"{args.repeat} runs; expected 1 or more")])
    figures = measure(args.config, args.repeat)
    print(json.dumps(figures, indent=2, sort_keys=True) if args.json else format_text(figures), end="\n" if args.json else "")
    return 0 if figures["same_log"] else 1
