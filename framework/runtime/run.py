"""Running a session to completion: source, runtime, audit log, run directory, shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..spec.session import Session
from .auditlog import AuditLog
from .pipeline import RunResult, Runtime, run_events, wall_clock_summary
from .reload import HotReload
from .rundir import write_snapshot
from .sources import replay_events, scenario_source


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
                scalar: bool = False) -> RunResult:
    """Run ``session`` to the end of its input (or until stopped) and write ``out_dir``.

    ``replay`` replaces the config's source with recordings; ``speed`` paces a replay in wall
    time (None: as fast as possible); ``watch`` enables hot reload of the config and specs;
    ``live_source`` injects an already-built async source; ``observer`` sees every audit
    record as it is written (a live display, or a test waiting for a fact). A replay of one
    symbol runs on the block fast path (``blocks.py``) unless ``scalar`` asks for the reference
    path, which gives the same log byte for byte.
    """
    stop = stop or StopFlag()
    kind = "replay" if replay else session.source["kind"]
    frames_out = None
    if kind == "replay":
        events, identity = replay_events(session, replay)
    elif kind == "scenario":
        events, identity = scenario_source(session)
    else:
        events, identity = None, {"kind": "live", "files": []}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if kind == "live":
            frames_out = out_dir / "input.frames.gz"
            identity["files"] = [{"path": str(frames_out.resolve()), "format": "frames"}]
        write_snapshot(session, out_dir, identity)
    compress = bool((session.data.get("output") or {}).get("compress", False))
    log = AuditLog(out_dir / ("log.jsonl.gz" if compress else "log.jsonl")) if out_dir else None
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
        runtime.before_event = reloader.check
    started = time.perf_counter()
    path = "events"  # event by event, or "blocks": the replay fast path
    bar = _progress(progress)
    try:
        with _signals(stop):
            if kind == "live":
                reason = asyncio.run(_run_live(session, runtime, stop, frames_out, live_source))
            elif speed:
                reason = asyncio.run(_run_paced(runtime, events, speed, stop))
            elif not scalar and runtime.can_run_blocks():
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

            identity["files"] = [source_identity(frames_out.resolve())]
            write_snapshot(session, out_dir, identity)
    finally:
        if bar is not None:
            bar.close()
    summary = runtime.finish(reason)
    emit({"ts_ns": summary["event_time_end_ns"], "symbol": "", "kind": "session_end", "events": summary["events"],
          "end_reason": reason, "digest": log.digest if log else "",
          "transitions": {s: v["transitions"] for s, v in summary["symbols"].items()}})
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


async def _run_paced(runtime: Runtime, events, speed: float, stop: StopFlag) -> str:
    from ..market.replay import paced

    async for ev in paced(events, speed, stop):
        runtime.feed(ev)
        if stop.set:
            return "interrupted"
    return "end of input"


async def _run_live(session: Session, runtime: Runtime, stop: StopFlag, frames_out: Path | None,
                    live_source: Any) -> str:
    """Live: events from Binance (or a given source), ticks from the wall clock, frames recorded."""
    from ..market.binance import BinanceSource
    from ..market.eventtime import EventTimeGuard
    from ..market.recorder import Recorder
    from .sources import event_time_policy

    src_cfg = session.source
    recorder = Recorder(frames_out) if frames_out is not None else None
    source = live_source or BinanceSource(
        session.symbols, streams=src_cfg.get("streams"), market=src_cfg.get("market", "spot"),
        base_url=src_cfg.get("url"), seed=src_cfg.get("seed", 0))
    if recorder is not None:
        source.on_frame = recorder.write
    duration = src_cfg.get("duration_s")
    deadline = time.time_ns() + int(duration * 1e9) if duration else None
    tick_s = runtime.tick_ns / 1e9

    async def ticks() -> None:
        # A quiet market still advances the clock: ticks at the same boundaries a replay inserts.
        while True:
            await asyncio.sleep(tick_s / 2)
            runtime.advance_to(time.time_ns())

    guard = EventTimeGuard(event_time_policy(session))
    ticker = asyncio.create_task(ticks())
    reason = "end of input"
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
                runtime.feed(accepted)
        for accepted in guard.flush():
            runtime.feed(accepted)
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await source.aclose()
        if recorder is not None:
            recorder.close()
    return reason
