"""Re-creating a recorded run exactly: what a run records beyond its snapshot, and how a re-run
replays it.

- Hot reloads: every attempt is a line of RUN/reloads.jsonl with ``event``, the number of
  events fed before it was applied; an accepted one also keeps the config and specs it switched
  to under RUN/reloads/NNN/. A re-run applies each at the same event (a refused one writes the
  same ``config_reload`` record), whatever the wall clock does.
- The end: a run stopped early (a signal) ends after ``session_end.events`` events with the
  same reason; a re-run stops there too.
- Live runs: RUN/input.frames.gz holds every frame, but not what the wall clock and the
  connection added: the clock ticks the live loop processed between frames, and connection
  events (connect, disconnect, reconnect, gap, stall, ...). RUN/live.jsonl holds those, each with
  the number of frame events fed before it, written as they happen, so a re-run feeds the same
  sequence: the frames' events with the journal's entries between them.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..market.events import FeedEvent
from ..spec.session import Session
from .auditlog import iter_records
from .reload import HotReload
from .rundir import snapshot_session, write_session_files

RELOADS = "reloads.jsonl"
LIVE_JOURNAL = "live.jsonl"
# The feed events the frame decoder (market/decode.py) makes from a frame: a replay of the
# frames makes them again. Every other feed event comes from the connection and is journaled.
FRAME_FEED_KINDS = frozenset({"malformed", "server_shutdown"})


@dataclass
class Retrace:
    """What a re-run needs, beyond the snapshot, to retrace a recorded run."""

    run_dir: Path
    end_after_events: int | None = None  # stop after this many events...
    end_reason: str | None = None  # ...and end with this reason (a run stopped early)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    live: LiveInput | None = None

    @classmethod
    def of_run(cls, run_dir: Path, end: dict[str, Any] | None, live: bool = False) -> Retrace:
        """From the run directory and its ``session_end`` record (None: the run was killed)."""
        out = cls(Path(run_dir), reloads=read_reloads(run_dir))
        if end is not None and end.get("end_reason") != "end of input":
            out.end_after_events = int(end["events"])
            out.end_reason = str(end["end_reason"])
        if live:
            out.live = LiveInput.of_run(Path(run_dir))
        return out

    def attach(self, runtime: Any, emit: Callable[[dict], None]) -> None:
        """Hook the re-run's runtime: scheduled reloads, and the live journal's clock ticks."""
        if self.reloads:
            runtime.before_event = ScheduledReloads(self.run_dir, self.reloads, runtime.session, runtime, emit)
        if self.live is not None:
            self.live.runtime = runtime


def read_reloads(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / RELOADS
    if not path.is_file():
        return []
    return read_jsonl(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A file of one JSON object per line, read as the audit log is (a torn last line left out)."""
    return list(iter_records(path))


class ReloadRecorder:
    """Wraps HotReload's ``on_reload``: writes each attempt into the run directory."""

    def __init__(self, run_dir: Path, runtime: Any, reloader: HotReload,
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
            session = self.reloader.session
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


class LiveJournal:
    """Stands in for the Runtime in the live loop: forwards every call, and writes to
    RUN/live.jsonl each input a frames file cannot hold, before it takes effect."""

    def __init__(self, runtime: Any, path: Path, source: dict[str, Any]):
        object.__setattr__(self, "_runtime", runtime)
        object.__setattr__(self, "_fd", os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644))
        object.__setattr__(self, "frames", 0)  # frame events fed so far
        self._write({"source": json.loads(json.dumps(source))})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._runtime, name, value)

    def _write(self, entry: dict[str, Any]) -> None:
        # One write per entry, unbuffered: on disk before the log lines it causes.
        data = (json.dumps(entry, sort_keys=True) + "\n").encode()
        while data:
            data = data[os.write(self._fd, data):]

    def feed(self, ev: Any) -> None:
        if type(ev) is FeedEvent and ev.kind not in FRAME_FEED_KINDS:
            self._write({"frames": self.frames, "feed": {"ts_ns": ev.ts_ns, "kind": ev.kind, "symbol": ev.symbol,
                                                         "detail": ev.detail, "gap_ms": ev.gap_ms}})
        else:
            object.__setattr__(self, "frames", self.frames + 1)
        self._runtime.feed(ev)

    def advance_to(self, ts: int) -> None:
        rt = self._runtime
        if rt.clock.first_ns is not None and rt.clock.next_tick is not None and rt.clock.next_tick <= ts:
            self._write({"frames": self.frames, "advance": ts})
        rt.advance_to(ts)

    def close(self) -> None:
        """The end: how many frame events the run fed (the frames file may hold a few more)."""
        if self._fd is not None:
            self._write({"frames": self.frames, "end": True})
            os.close(self._fd)
            object.__setattr__(self, "_fd", None)


@dataclass
class LiveInput:
    """A live run's input for a re-run: the frames' events with the journal's entries between."""

    frames_path: Path
    source: dict[str, Any]
    entries: list[dict[str, Any]]
    fed_frames: int | None  # from the journal's end; None: the run was killed
    runtime: Any = None
    short: bool = False  # the frames file ended before the journal: the run was killed mid-write
    records_before_end: int | None = None
    count_records: Callable[[], int] | None = None

    @classmethod
    def of_run(cls, run_dir: Path) -> LiveInput:
        path = run_dir / LIVE_JOURNAL
        lines = read_jsonl(path) if path.is_file() else []
        if not lines or "source" not in lines[0]:
            from ..spec.errors import SpecError, SpecErrors

            raise SpecErrors([SpecError(str(run_dir), 0, 0, f"a live run without {LIVE_JOURNAL} (the clock ticks and "
                                        "connection events it saw) cannot be re-created; expected a run directory "
                                        "written by this version")])
        end = next((e for e in lines if e.get("end")), None)
        return cls(run_dir / "input.frames.gz", lines[0]["source"], [e for e in lines[1:] if not e.get("end")],
                   end["frames"] if end else None)

    def events(self) -> Iterator[Any]:
        """The events to feed; clock ticks are applied to ``runtime`` between them."""
        from ..market.replay import open_replay, read_frames

        pending = deque(self.entries)
        n = 0
        frames = iter(())
        if self.frames_path.is_file():
            try:
                frames = open_replay(self.frames_path)
            except ValueError:
                if next(read_frames(self.frames_path), None) is not None:
                    raise
                # no complete frame: killed before the recorder's first flush; none to feed
        while True:
            while pending and pending[0]["frames"] <= n:
                entry = pending.popleft()
                if "advance" in entry:
                    self.runtime.advance_to(entry["advance"])
                else:
                    yield FeedEvent(**entry["feed"])
            if self.fed_frames is not None and n >= self.fed_frames:
                break
            ev = next(frames, None)
            if ev is None:
                self.short = bool(pending) or (self.fed_frames is not None and n < self.fed_frames)
                break
            yield ev
            n += 1
        if self.count_records is not None:
            self.records_before_end = self.count_records()
