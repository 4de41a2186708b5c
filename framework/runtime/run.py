"""Running a session to completion: source, runtime, audit log, run directory, shutdown."""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

from ..spec.errors import SpecError, SpecErrors
from ..spec.records import session_end
from ..spec.session import Session
from .auditlog import AuditLog
from .pipeline import RunResult, Runtime, run_events, wall_clock_summary
from .reload import HotReload
from .retrace import LIVE_JOURNAL, LiveJournal, ReloadRecorder, Retrace
from .rundir import claim_run_dir, write_snapshot
from .sources import replay_events, scenario_source

NO_DATA = "no market data received"  # a live session's end reason says so


class StopFlag:
    """Set by Ctrl-C / SIGTERM; the loop checks it between events and shuts down cleanly."""

    def __init__(self) -> None:
        self.set = False
        self.reason = ""

    def __call__(self) -> bool:
        return self.set

    def trip(self, signum: int, _frame: Any = None) -> None:
        self.set = True
        self.reason = signal.Signals(signum).name


@contextmanager
def _signals(stop: StopFlag):
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, stop.trip)
        except ValueError:  # not the main thread (a test or a notebook): no handlers
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit=" ev", unit_scale=True, desc="replay", file=sys.stderr, mininterval=0.5)


def run_session(session: Session, out_dir: Path | None, *, replay: list[str] | None = None,
                progress: bool = False, speed: float | None = None, watch: bool = False,
                stop: StopFlag | None = None, on_reload: Callable[[dict], None] | None = None,
                live_source: Any = None, observer: Callable[[dict], None] | None = None,
                scalar: bool = False, force: bool = False, unique: bool = False,
                retrace: Retrace | None = None) -> RunResult:
    """Run ``session`` to the end of its input (or until stopped) and write ``out_dir``.

    ``replay`` replaces the config's source with recordings; ``speed`` paces a replay in wall
    time (None: as fast as possible); ``watch`` enables hot reload of the config and specs;
    ``live_source`` injects an already-built async source; ``observer`` sees every audit
    record as it is written (a live display, or a test waiting for a fact). A replay (of any
    number of symbols) runs on the block fast path (``blocks.py``) unless ``scalar`` asks for the
    reference path, which gives the same log byte for byte.

    ``out_dir`` is claimed first (``rundir.claim_run_dir``): refused when a living session holds
    it or, unless ``force``, when it already holds a run; ``unique`` takes a free name instead.
    ``retrace`` makes a re-run follow a recorded one (its reloads, its early end).
    """
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise SpecErrors([SpecError("--speed", 0, 0, f"{speed} is not a replay speed; expected a positive factor (e.g. 1 or 10)")])
    stop = stop or StopFlag()
    kind = "replay" if replay else session.source["kind"]
    if retrace is not None and retrace.live is not None:  # a live run again, from its frames and journal
        kind, events, identity = "relive", retrace.live.events(), dict(retrace.live.source)
    elif kind == "replay":
        events, identity = replay_events(session, replay)
    elif kind == "scenario":
        events, identity = scenario_source(session)
    else:
        events, identity = None, {"kind": "live", "files": []}
    if retrace is not None and retrace.end_after_events is not None and kind in ("replay", "scenario"):
        events = islice(events, retrace.end_after_events)
    lock = None
    if out_dir is not None:
        out_dir, lock = claim_run_dir(Path(out_dir), force=force, unique=unique)
    try:
        return _run_in(session, out_dir, kind, events, identity, progress=progress, speed=speed, watch=watch,
                       stop=stop, on_reload=on_reload, live_source=live_source, observer=observer, scalar=scalar,
                       retrace=retrace)
    finally:
        if lock is not None:
            lock.release()


def _run_in(session: Session, out_dir: Path | None, kind: str, events: Any, identity: dict[str, Any], *,
            progress: bool, speed: float | None, watch: bool, stop: StopFlag,
            on_reload: Callable[[dict], None] | None, live_source: Any, observer: Callable[[dict], None] | None,
            scalar: bool, retrace: Retrace | None) -> RunResult:
    frames_out = None
    if out_dir is not None:
        if kind == "live":
            frames_out = out_dir / "input.frames.gz"
            identity["files"] = [{"path": str(frames_out.resolve()), "format": "frames"}]
        write_snapshot(session, out_dir, identity)
    compress = bool((session.data.get("output") or {}).get("compress", False))
    log = AuditLog(out_dir / ("log.jsonl.gz" if compress else "log.jsonl"), compress) if out_dir else None
    records: list[dict] = []
    emit = log.emit if log else records.append
    if observer is not None:
        write = emit

        def emit(record: dict) -> None:
            write(record)
            observer(record)
    runtime = Runtime(session, emit, source_identity=identity)
    runtime.stop = stop
    reloader = HotReload(session, runtime, emit, on_reload) if watch else None
    if reloader is not None:
        if out_dir is not None:  # every reload is recorded, so a re-run can apply it at the same event
            reloader.on_reload = ReloadRecorder(out_dir, runtime, reloader, on_reload)
        runtime.before_event = reloader.check
    elif retrace is not None:
        retrace.attach(runtime, emit)
    # A live run journals what its frames file cannot hold (clock ticks, connection events).
    journal = LiveJournal(runtime, out_dir / LIVE_JOURNAL, identity) if kind == "live" and out_dir else None
    started = time.perf_counter()
    path = "events"  # event by event, or "blocks": the replay fast path
    bar = _progress(progress)
    try:
        with _signals(stop):
            if kind == "live" or speed:
                import asyncio  # only a live or paced run has an event loop: replays start faster
            if kind == "live":
                reason = asyncio.run(_run_live(session, journal or runtime, stop, frames_out, live_source,
                                               log.before_flush if log else None))
            elif speed:
                reason = asyncio.run(_run_paced(runtime, events, speed, stop, log.flush_due if log else None))
            elif not scalar and kind != "relive" and runtime.can_run_blocks():
                from .blocks import run_blocks  # loads the compiled kernel: only replays need it

                path = "blocks"
                reason = run_blocks(runtime, events, stop, bar)
            else:
                reason = run_events(runtime, events, stop, bar)
        if stop.set:
            reason = f"stopped by {stop.reason or 'request'}"
        if frames_out is not None and frames_out.is_file():
            # The live input is complete only now: record its identity for replay and review.
            from ..market.replay import source_identity

            try:
                identity["files"] = [source_identity(frames_out.resolve())]
            except ValueError:  # no frame arrived: there is nothing to replay
                identity["files"] = []
            write_snapshot(session, out_dir, identity)
    except BaseException:
        if log is not None:
            log.abandon()  # what was logged stays readable, up to its last complete line
        raise
    finally:
        if journal is not None:
            journal.close()
        if bar is not None:
            bar.close()
    if retrace is not None and retrace.end_reason is not None:
        reason = retrace.end_reason
    summary = runtime.finish(reason)
    emit(session_end(summary["event_time_end_ns"], events=summary["events"],
                     end_reason=reason, digest=log.digest if log else "",
                     transitions={s: v["transitions"] for s, v in summary["symbols"].items()}))
    summary["log_digest"] = log.digest if log else ""
    summary["wall"] = {**wall_clock_summary(summary, started), "path": path}
    if log is not None:
        summary["records"] = dict(sorted(log.counts.items()))
        log.close()
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n",
                                              encoding="utf-8")
    else:
        summary["records_list"] = records
    return RunResult(out_dir, summary)


async def _run_paced(runtime: Runtime, events, speed: float, stop: StopFlag,
                     waiting: Callable[[], None] | None) -> str:
    from ..market.replay import paced

    # ``waiting``: a wait for the next event (a gap in the data can last hours at the given
    # speed) still hands the log's pending lines to the file once a second.
    async for ev in paced(events, speed, stop, waiting):
        runtime.feed(ev)
        if stop.set:
            return "interrupted"
    return "end of input"


async def _run_live(session: Session, runtime: Runtime, stop: StopFlag, frames_out: Path | None,
                    live_source: Any, before_log_flush: list[Callable[[], None]] | None = None) -> str:
    """Live: events from Binance (or a given source), ticks from the wall clock, frames recorded.
    ``before_log_flush``: the audit log's hooks; the frames reach the disk before any log line
    they caused, so a run killed at any moment re-runs to its log (``execlab verify``)."""
    import asyncio

    from ..market.events import FeedEvent
    from ..market.eventtime import EventTimeGuard
    from ..market.recorder import Recorder
    from . import sources
    from .sources import event_time_policy

    src_cfg = session.source
    recorder = Recorder(frames_out) if frames_out is not None else None
    source = live_source or sources.live_source(session)  # with depth: its streams and snapshots
    if recorder is not None:
        source.on_frame = recorder.write
        if before_log_flush is not None:
            before_log_flush.append(recorder.flush)
    duration = src_cfg.get("duration_s")
    deadline = time.time_ns() + int(duration * 1e9) if duration else None
    tick_s = runtime.clock.tick_ns / 1e9

    async def ticks() -> None:
        # A quiet market still advances the clock: ticks at the same boundaries a replay inserts.
        while True:
            await asyncio.sleep(tick_s / 2)
            runtime.advance_to(time.time_ns())

    guard = EventTimeGuard(event_time_policy(session))
    ticker = asyncio.create_task(ticks())
    reason = "end of input"
    received = 0  # trades and quotes (feed events say only what the connection did)
    try:
        iterator: AsyncIterator = source.__aiter__()
        while True:
            if stop.set:
                reason = "interrupted"
                break
            if deadline is not None and time.time_ns() >= deadline:
                reason = "duration reached"
                break
            try:
                ev = await asyncio.wait_for(iterator.__anext__(), timeout=0.25)
            except TimeoutError:
                continue
            except StopAsyncIteration:
                break
            for accepted in guard.push(ev):  # the same event time guard as a replay of the frames
                received += type(accepted) is not FeedEvent
                runtime.feed(accepted)
        for accepted in guard.flush():
            received += type(accepted) is not FeedEvent
            runtime.feed(accepted)
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await source.aclose()
        if recorder is not None:
            recorder.close()
    return reason if received else f"{reason}; {NO_DATA}"
