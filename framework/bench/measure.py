"""The measurements behind ``execlab bench``; each returns plain numbers.

Events are market frames (quotes and trades). The clock ticks the runtime inserts every
``tick_ms`` of event time are processed by every stage that sees them, and their cost is
counted in the per-event figures, but they are not counted as events.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..execution.config import ExecutionConfig, IntentConfig, RiskConfig
from ..execution.engine import PaperEngine
from ..execution.generators import make_generator
from ..execution.risk import RiskGuard
from ..machines.decision import DecisionTable
from ..machines.machine import StateMachine
from ..market.decode import FrameDecoder
from ..market.events import Quote, Tick, Trade
from ..runtime.auditlog import AuditLog
from ..runtime.blocks import BlockRunner
from ..runtime.clock import Clock
from ..runtime.pipeline import Runtime
from ..spec.session import Session
from ..state.engine import SymbolMetrics
from ..state.kernel import live_metrics

CHUNK = 65_536  # progress is reported between chunks, never inside a timed loop


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform()}


def _chunks(items: list, bar: Any) -> Iterator[list]:
    for i in range(0, len(items), CHUNK):
        chunk = items[i:i + CHUNK]
        yield chunk
        if bar is not None:
            bar.update(len(chunk))


def _pct(samples: list[int] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=np.int64), q)) / 1e3 if len(samples) else float("nan")


# -- inputs shared by the stage measurements ------------------------------------------------------

def decode_all(frames: list[tuple[int, str]]) -> list:
    dec = FrameDecoder().decode
    return [ev for ev in (dec(raw, ns) for ns, raw in frames) if ev is not None]


def with_ticks(events: list, tick_ns: int) -> list:
    """The events with the clock ticks the runtime inserts (``Clock``; every tick at or before an
    event comes before it)."""
    if not events:
        return []
    clock = Clock(tick_ns)
    clock.start(events[0].ts_ns)
    ticks = clock.block_ticks(max(ev.ts_ns for ev in events)).tolist()
    out = []
    k = 0
    for ev in events:
        while k < len(ticks) and ticks[k] <= ev.ts_ns:
            out.append(Tick(ticks[k]))
            k += 1
        out.append(ev)
    return out


def machine_inputs(session: Session) -> tuple[list[str], list[str]]:
    """The metric and risk values the machines and the decision table read."""
    names: list[str] = []
    ms = session.machine_set
    for spec in ms.machines:
        for r in spec.rules:
            names.extend(r.reads)
        for e, _ in spec.derive.values():
            names.extend(e.reads)
    for r in ms.decision.rules:
        names.extend(r.when.reads)
        names.extend(r.risk_budget.reads)
    names = list(dict.fromkeys(names))
    return ([n.split(".", 1)[1] for n in names if n.startswith("metrics.")],
            [n.split(".", 1)[1] for n in names if n.startswith("risk.")])


# -- the whole pipeline ---------------------------------------------------------------------------

def run_pipeline(session: Session, frames: list[tuple[int, str]], *, sample_every: int = 10,
                 machine_cls: type | None = None, bar: Any = None) -> dict[str, Any]:
    """Decode, feed, log to a temp file; every ``sample_every``-th frame timed on its own."""
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "log.jsonl")
        runtime = Runtime(session, log.emit)
        if machine_cls is not None:
            _swap_machines(runtime, machine_cls, log.emit)
        for p in runtime.pipelines.values():
            p.metrics.warm_up()  # the compiled kernel's first call loads it: not part of any event
        decode = FrameDecoder().decode
        feed = runtime.feed
        clock = time.perf_counter_ns
        lat: list[int] = []
        gc.collect()
        t0 = clock()
        for chunk in _chunks(frames, bar):
            k = 0
            for ns, raw in chunk:
                if k == 0:
                    t = clock()
                    ev = decode(raw, ns)
                    if ev is not None:
                        feed(ev)
                    lat.append(clock() - t)
                    k = sample_every
                else:
                    ev = decode(raw, ns)
                    if ev is not None:
                        feed(ev)
                k -= 1
        elapsed = clock() - t0
        log.flush()
        log_bytes = os.path.getsize(log.path)
        summary = runtime.finish()
        log.close()
    n = len(frames)
    return {"events": n, "ticks": _ticks_seen(runtime), "seconds": elapsed / 1e9,
            "events_per_s": n / (elapsed / 1e9), "us_per_event": elapsed / n / 1e3,
            "latency_samples": len(lat), "latency_us_p50": _pct(lat, 50), "latency_us_p99": _pct(lat, 99),
            "latency_us_p999": _pct(lat, 99.9), "latency_us_max": max(lat) / 1e3 if lat else float("nan"),
            "records": log.seq, "log_bytes": log_bytes,
            "transitions": {s: v["transitions"] for s, v in summary["symbols"].items()},
            "metrics_engine": ", ".join(sorted({p.metrics.engine for p in runtime.pipelines.values()}))}


def run_blocks_pipeline(session: Session, frames: list[tuple[int, str]], *, bar: Any = None) -> dict[str, Any]:
    """The replay fast path (``BlockRunner``) over the same frames: decode, a block at a time.

    Decoding happens inside the timed loop, as the frames are pulled into each block. A frame's
    decision is available once its block is done, so the block times bound the latency here."""
    warm = Runtime(session, lambda r: None)
    BlockRunner(warm).run(decode_all(frames[:2000]))  # load the compiled kernel before timing
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "log.jsonl")
        runtime = Runtime(session, log.emit)
        runner = BlockRunner(runtime)
        decode = FrameDecoder().decode
        events = (ev for ev in (decode(raw, ns) for ns, raw in frames) if ev is not None)
        clock = time.perf_counter_ns
        block_ns: list[int] = []
        gc.collect()
        t0 = clock()
        while True:
            tb = clock()
            chunk = list(islice(events, runner.block_rows))
            if not chunk:
                break
            runner.feed_block(chunk)
            block_ns.append(clock() - tb)
            if bar is not None:
                bar.update(len(chunk))
        runner.catch_up()
        elapsed = clock() - t0
        log.flush()
        summary = runtime.finish()
        log.close()
    n = len(frames)
    st = runner.stats
    return {"events": n, "seconds": elapsed / 1e9, "events_per_s": n / (elapsed / 1e9),
            "us_per_event": elapsed / n / 1e3, "block_rows": runner.block_rows, "blocks": len(block_ns),
            "block_ms_p50": _pct(block_ns, 50) / 1e3, "block_ms_p99": _pct(block_ns, 99) / 1e3,
            "rows": st["rows"], "rows_full": st["full"], "rows_engine": st["engine"], "screens": st["screens"],
            "records": log.seq, "transitions": {s: v["transitions"] for s, v in summary["symbols"].items()},
            "orders": sum(v["execution"]["all"]["orders"] for v in summary["symbols"].values()),
            "fills": sum(v["execution"]["all"]["fills"] for v in summary["symbols"].values())}


def _ticks_seen(runtime: Runtime) -> int:
    return sum(p.events for p in runtime.pipelines.values()) - runtime.events


def _swap_machines(runtime: Runtime, machine_cls: type, emit: Callable) -> None:
    for p in runtime.pipelines.values():
        p.machines = [machine_cls(m.spec, p.symbol, p.namespaces, emit) for m in p.machines]


def capture(session: Session, events: list, bar: Any = None) -> dict[str, Any]:
    """One pass of the runtime over decoded events that keeps what the stage measurements
    replay: the audit records, and the machines' inputs at every evaluation."""
    records: list[dict] = []
    runtime = Runtime(session, records.append)
    mkeys, rkeys = machine_inputs(session)
    snaps: list[tuple] = []
    for p in runtime.pipelines.values():
        mvals, rvals, on_event = p.metrics.values, p.risk.values, p.on_event

        def on_event_and_snapshot(ev, p=p, mvals=mvals, rvals=rvals, on_event=on_event) -> None:
            on_event(ev)
            snaps.append((p.last_ts, tuple([mvals[k] for k in mkeys]), tuple([rvals[k] for k in rkeys])))

        p.on_event = on_event_and_snapshot  # the runtime looks it up per call
    feed = runtime.feed
    for chunk in _chunks(events, bar):
        for ev in chunk:
            feed(ev)
    summary = runtime.finish()
    return {"records": records, "snaps": snaps, "mkeys": mkeys, "rkeys": rkeys,
            "transitions": {s: v["transitions"] for s, v in summary["symbols"].items()}}


# -- stages alone -----------------------------------------------------------------------------------

def _rate(n: int, ns: int) -> dict[str, float]:
    return {"events_per_s": n / (ns / 1e9), "us_per_event": ns / n / 1e3, "seconds": ns / 1e9}


def stage_decode(frames: list[tuple[int, str]]) -> dict[str, float]:
    decode = FrameDecoder().decode
    gc.collect()
    t0 = time.perf_counter_ns()
    for ns, raw in frames:
        decode(raw, ns)
    return _rate(len(frames), time.perf_counter_ns() - t0)


def stage_metrics(session: Session, ticked: list, n_events: int, symbol: str,
                  reference: bool = False) -> dict[str, Any]:
    """The metrics alone, one event at a time: the live path's engine (the compiled kernel where
    it has every kind), or with ``reference`` the reference engine."""
    m = SymbolMetrics(session.metric_set, symbol) if reference else live_metrics(session.metric_set, symbol)
    m.warm_up()
    on_quote, on_trade, on_tick, on_feed = m.on_quote, m.on_trade, m.on_tick, m.on_feed
    gc.collect()
    t0 = time.perf_counter_ns()
    for ev in ticked:
        t = type(ev)
        if t is Quote:
            on_quote(ev)
        elif t is Trade:
            on_trade(ev)
        elif t is Tick:
            on_tick(ev.ts_ns)
        else:
            on_feed(ev)
    return {**_rate(n_events, time.perf_counter_ns() - t0), "engine": m.engine}


def _fresh_machines(session: Session, symbol: str, machine_cls: type = StateMachine):
    ns: dict[str, dict[str, Any]] = {"metrics": session.metric_set.initial_values(),
                                     "risk": RiskGuard(RiskConfig.from_dict(session.section("risk"))).values}
    sink: list[dict] = []
    machines = [machine_cls(spec, symbol, ns, sink.append) for spec in session.machine_set.machines]
    decision = DecisionTable(session.machine_set.decision, ns)
    decision.evaluate()
    return ns, machines, decision


def stage_machines(session: Session, cap: dict[str, Any], n_events: int, symbol: str,
                   machine_cls: type = StateMachine, limit: int | None = None) -> dict[str, Any]:
    """Machines and decision over the captured inputs; the cost of copying the inputs into the
    namespaces is measured by the same loop without evaluations and subtracted."""
    snaps = cap["snaps"] if limit is None else cap["snaps"][:limit]
    mkeys, rkeys = cap["mkeys"], cap["rkeys"]
    ns, machines, decision = _fresh_machines(session, symbol, machine_cls)
    mvals, rvals = ns["metrics"], ns["risk"]
    evaluates = [m.evaluate for m in machines]
    decide = decision.evaluate
    gc.collect()
    t0 = time.perf_counter_ns()
    for ts, mv, rv in snaps:
        for k, v in zip(mkeys, mv, strict=True):
            mvals[k] = v
        for k, v in zip(rkeys, rv, strict=True):
            rvals[k] = v
        for ev in evaluates:
            ev(ts)
        decide()
    total = time.perf_counter_ns() - t0
    t0 = time.perf_counter_ns()
    for _ts, mv, rv in snaps:
        for k, v in zip(mkeys, mv, strict=True):
            mvals[k] = v
        for k, v in zip(rkeys, rv, strict=True):
            rvals[k] = v
    copy = time.perf_counter_ns() - t0
    n = n_events if limit is None else round(n_events * len(snaps) / len(cap["snaps"]))
    out = _rate(n, max(total - copy, 1))
    out["evaluations"] = len(snaps)
    out["us_per_evaluation"] = max(total - copy, 1) / len(snaps) / 1e3
    out["transitions"] = {m.spec.name: m.transition_count for m in machines}
    return out


def guard_costs(session: Session, cap: dict[str, Any], symbol: str, machine_cls: type = StateMachine,
                limit: int | None = None) -> dict[str, dict[str, float]]:
    """µs per ``evaluate`` of each machine, split by whether a transition fired (median; the
    clock read's own cost is subtracted)."""
    snaps = cap["snaps"] if limit is None else cap["snaps"][:limit]
    mkeys, rkeys = cap["mkeys"], cap["rkeys"]
    ns, machines, decision = _fresh_machines(session, symbol, machine_cls)
    mvals, rvals = ns["metrics"], ns["risk"]
    clock = time.perf_counter_ns
    quiet: list[list[int]] = [[] for _ in machines]
    fired: list[list[int]] = [[] for _ in machines]
    pairs = list(enumerate(machines))
    decide = decision.evaluate
    gc.collect()
    for ts, mv, rv in snaps:
        for k, v in zip(mkeys, mv, strict=True):
            mvals[k] = v
        for k, v in zip(rkeys, rv, strict=True):
            rvals[k] = v
        for i, m in pairs:
            t = clock()
            f = m.evaluate(ts)
            d = clock() - t
            (fired if f else quiet)[i].append(d)
        decide()
    overhead = min(_clock_overhead(), min(min(q) for q in quiet if q))
    out = {}
    for i, m in pairs:
        q = np.asarray(quiet[i], dtype=np.int64) - overhead
        f = np.asarray(fired[i], dtype=np.int64) - overhead
        out[m.spec.name] = {
            "quiet_us_p50": float(np.median(q)) / 1e3 if len(q) else float("nan"),
            "fired_us_p50": float(np.median(f)) / 1e3 if len(f) else float("nan"),
            "evaluations": len(q) + len(f), "transitions": len(f)}
    return out


def _clock_overhead() -> int:
    clock = time.perf_counter_ns
    best = 1 << 62
    for _ in range(10_000):
        t = clock()
        best = min(best, clock() - t)
    return best


def stage_engine(session: Session, ticked: list, n_events: int, symbol: str) -> dict[str, Any]:
    """The paper engine with the session's intents submitted as they fall due (no decision or
    risk in front of it)."""
    seed = session.source.get("seed", 0)
    engine = PaperEngine(symbol, ExecutionConfig.from_dict(session.section("execution")), lambda r: None, seed)
    intents = make_generator(IntentConfig.from_dict(session.section("intents")), seed)
    on_quote, on_trade, on_tick, due, submit = engine.on_quote, engine.on_trade, engine.on_tick, intents.due, engine.submit
    orders = 0
    gc.collect()
    t0 = time.perf_counter_ns()
    for ev in ticked:
        t = type(ev)
        if t is Quote:
            on_quote(ev)
        elif t is Trade:
            on_trade(ev)
        elif t is Tick:
            ts = ev.ts_ns
            on_tick(ts)
            for intent in due(ts, symbol):
                submit(intent, ts)
                orders += 1
    out: dict[str, Any] = _rate(n_events, time.perf_counter_ns() - t0)
    out["orders"] = orders
    return out


def stage_log(records: list[dict], n_events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "log.jsonl")
        emit = log.emit
        gc.collect()
        t0 = time.perf_counter_ns()
        for r in records:
            emit(r)
        log.flush()
        dt = time.perf_counter_ns() - t0
        log.close()
    out: dict[str, Any] = _rate(n_events, dt)
    out["records"] = len(records)
    out["records_per_s"] = len(records) / (dt / 1e9) if dt else float("nan")
    return out


# -- memory -----------------------------------------------------------------------------------------

def peak_rss_mb(n_events: int, config: str | None, sets: list[str] = (), scalar: bool = False) -> float:
    """Peak RSS of a fresh process running the whole pipeline over ``n_events`` streamed frames."""
    cmd = [sys.executable, "-m", "framework.bench.memory", str(n_events)]
    if config:
        cmd.append(str(config))
    for s in sets:
        cmd += ["--set", s]
    if scalar:
        cmd.append("--scalar")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])
