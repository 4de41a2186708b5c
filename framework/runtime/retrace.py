"""Re-creating a recorded run exactly: what a run records beyond its snapshot, and how a re-run
replays it.

- Hot reloads: every attempt is a line of RUN/reloads.jsonl with ``event``, the number of
  events fed before it was applied; an accepted one also keeps the config and specs it switched
  to under RUN/reloads/NNN/. A re-run applies each at the same event (a refused one writes the
  same ``config_reload`` record), whatever the wall clock does.
- The end: a run stopped early (a signal) ends after ``session_end.events`` events with the
  same reason; a re-run stops there too.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec.session import Session
from .reload import HotReload
from .rundir import snapshot_session, write_session_files

RELOADS = "reloads.jsonl"


@dataclass
class Retrace:
    """What a re-run needs, beyond the snapshot, to retrace a recorded run."""

    run_dir: Path
    end_after_events: int | None = None  # stop after this many events...
    end_reason: str | None = None  # ...and end with this reason (a run stopped early)
    reloads: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_run(cls, run_dir: Path, end: dict[str, Any] | None) -> Retrace:
        """From the run directory and its ``session_end`` record (None: the run was killed)."""
        out = cls(Path(run_dir), reloads=read_reloads(run_dir))
        if end is not None and end.get("end_reason") != "end of input":
            out.end_after_events = int(end["events"])
            out.end_reason = str(end["end_reason"])
        return out


def read_reloads(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / RELOADS
    if not path.is_file():
        return []
    from .auditlog import LogLines  # the same tolerance as the log: a torn last line is left out

    return [json.loads(line) for line in LogLines(path)]


class ReloadRecorder:
    """Wraps HotReload's ``on_reload``: writes each attempt into the run directory."""

    def __init__(self, run_dir: Path, runtime: Any, reloader: Callable[[], HotReload],
                 then: Callable[[dict], None] | None = None):
        self.run_dir = run_dir
        self.runtime = runtime
        self.reloader = reloader
        self.then = then
        self.n = 0

    def __call__(self, record: dict[str, Any]) -> None:
        self.n += 1
        entry: dict[str, Any] = {"event": self.runtime.events, "ts_ns": record["ts_ns"], "accepted": record["accepted"]}
        if record["accepted"]:
            session = self.reloader().session
            folder = f"reloads/{self.n:03d}"
            write_session_files(session, self.run_dir / folder)
            entry.update(dir=folder, config_path=session.path, sets=session.snapshot["sets"],
                         specs=list(session.snapshot["specs"]), config_hash=session.config_hash)
        else:
            entry["record"] = {k: v for k, v in record.items() if k != "seq"}
        with open(self.run_dir / RELOADS, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
        if self.then is not None:
            self.then(record)


class ScheduledReloads:
    """A ``before_event`` hook for a re-run: each recorded reload at the event it came before."""

    def __init__(self, run_dir: Path, entries: list[dict[str, Any]], session: Session, runtime: Any,
                 emit: Callable[[dict], None]):
        self.run_dir = run_dir
        self.pending = deque(entries)
        self.runtime = runtime
        self.emit = emit
        self.reloader = HotReload(session, runtime, emit)

    def __call__(self, ts_ns: int) -> None:
        while self.pending and self.pending[0]["event"] <= self.runtime.events:
            entry = self.pending.popleft()
            if entry["accepted"]:
                new = snapshot_session(self.run_dir / entry["dir"], entry["config_path"], entry["specs"], entry["sets"])
                self.reloader.apply(ts_ns, new=new)
            else:
                self.emit(dict(entry["record"]))
