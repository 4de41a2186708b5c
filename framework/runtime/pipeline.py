"""The pipeline: market events -> metrics -> machines -> decision -> paper execution -> log.

``Runtime`` is the library entry point: build it from a validated ``Session``, ``feed`` it
events in time order (it inserts clock ticks at fixed event-time boundaries, so timers expire
in a quiet market and a replay sees exactly the ticks a live run saw), then ``finish``.
``run_session`` does all of that for a session's configured source and writes a run directory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import compress
from operator import not_
from pathlib import Path
from typing import Any

from ..execution.config import ExecutionConfig, IntentConfig, RiskConfig
from ..execution.engine import PaperEngine
from ..execution.generators import make_generator
from ..execution.risk import RiskGuard
from ..machines.decision import AGGRESSIVENESS_RANK, DecisionTable
from ..machines.invariants import InvariantMonitor
from ..machines.machine import StateMachine
from ..market.book_feed import DEFAULT_STALE_MS, SymbolBook
from ..market.depth import DepthSnapshot, DepthUpdate
from ..market.events import FeedEvent, Quote, Tick, Trade
from ..spec import records, workspace
from ..spec.expr import Binding
from ..spec.session import Session
from ..state.book_metrics import BookMetrics
from ..state.engine import SymbolMetrics
from .clock import Clock
from .quiet import QuietSpan

LOG_VERSION = records.LOG_VERSION  # kept importable from here
NS = 1_000_000_000
Emit = Callable[[dict[str, Any]], None]


def _finite(v: Any) -> Any:
    """JSON cannot carry inf/nan; the log writes them as strings so nothing is lost."""
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    return v


def _finite_values(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` as the log writes it (``_finite`` of each value): one C-level pass
    when every value is a finite number; when a few are NaN (metrics without data yet), C-level
    passes find them and only they are rewritten in Python."""
    try:
        finite = list(map(math.isfinite, values.values()))
    except (TypeError, OverflowError):  # a value that is not a float-like number
        return {k: _finite(v) for k, v in values.items()}
    out = dict(values)
    if not all(finite):
        for k in compress(out, map(not_, finite)):
            out[k] = _finite(out[k])
    return out


def _live_metrics(metric_set: Any, symbol: str) -> SymbolMetrics:
    """The compiled kernel one event at a time where it has every metric kind of the set (the
    reference engine otherwise). Loaded here, not at import: without the kernel compiled ahead of
    time it loads numba."""
    from ..state.kernel import live_metrics
    return live_metrics(metric_set, symbol)


class SymbolPipeline:
    """Every layer for one symbol, wired through one dict of namespaces guards read."""

    def __init__(self, session: Session, symbol: str, emit: Emit, *, states: dict[str, str] | None = None,
                 metrics: SymbolMetrics | None = None, engine: PaperEngine | None = None,
                 risk: RiskGuard | None = None):
        self.symbol = symbol
        self.emit = emit
        seed = session.source.get("seed", 0)
        self.metrics = metrics or _live_metrics(session.metric_set, symbol)
        self.risk = risk or RiskGuard(RiskConfig.from_dict(session.section("risk")), session.risk_machine,
                                      self.metrics.values)
        self.engine = engine or PaperEngine(symbol, ExecutionConfig.from_dict(session.section("execution")), emit, seed)
        self.namespaces: dict[str, dict[str, Any]] = {"metrics": self.metrics.values, "risk": self.risk.values}
        if session.latency_load is not None:
            self.engine.set_latency_load(session.latency_load.bind(Binding({"metrics": self.metrics.values})))
        self.book: SymbolBook | None = None  # the local L2 book, in a session with depth
        self.book_metrics = BookMetrics(session.metric_set, self.metrics.values)
        self.book_incidents: dict[str, int] = {}
        if session.depth:
            market = session.section("market")
            self.book = SymbolBook(symbol, rebuild_from_diffs=session.source.get("kind") != "live",
                                   buffer_size=int(market.get("buffer", 1000)),
                                   stale_ms=float(market.get("stale_book_ms", DEFAULT_STALE_MS)))
            self.book_metrics.start()
            self.engine.attach_book(self.book)
        states = states or {}
        self.machines = [StateMachine(spec, symbol, self.namespaces, emit, states.get(spec.name),
                                      watch=self.metrics.watch_slot(spec.name))
                         for spec in session.machine_set_for(symbol).machines]
        self.decision = DecisionTable(session.machine_set_for(symbol).decision, self.namespaces)
        self.decision.evaluate()
        self.invariants = InvariantMonitor(session.machine_set.decision, self.namespaces)
        self.time_in_state: dict[str, dict[str, float]] = {m.spec.name: {} for m in self.machines}
        self._since: dict[str, tuple[str, int]] = {}
        self._last_decision: tuple[str, float] | None = None  # (rule, budget) last written to the log
        self.last_ts = 0
        self.events = 0

    # -- state --------------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        return {m.spec.name: m.state for m in self.machines}

    def decision_view(self) -> dict[str, Any]:
        d = self.decision.out
        return {"eligible": d["eligible"], "aggressiveness": d["aggressiveness"],
                "risk_budget": d["risk_budget"], "rule": d["rule"]}

    # -- the hot path ---------------------------------------------------------------------------
    def on_event(self, ev: Quote | Trade | Tick | FeedEvent) -> None:
        ts = ev.ts_ns
        if ts < self.last_ts:
            ts = self.last_ts  # late events are applied at the current time (the metrics do the same)
        self.last_ts = ts
        self.events += 1
        t = type(ev)
        metrics = self.metrics
        engine = self.engine
        if t is Quote:  # one type dispatch for both (every event pays for it)
            metrics.on_quote(ev)
            engine.on_quote(ev)
        elif t is Trade:
            metrics.on_trade(ev)
            engine.on_trade(ev)
        elif t is Tick:
            metrics.on_tick(ts)
            engine.on_tick(ts)
        elif t is DepthUpdate or t is DepthSnapshot:
            self.on_depth(ev, ts)
        else:
            metrics.on_feed(ev)
        self.after_engine(ts)

    def react(self, ev: Quote | Trade | Tick | FeedEvent, t: type, ts: int) -> None:
        """Everything after the metrics (``on_event`` without them): the paper engine, risk, the
        machines and the decision. The replay fast path calls it with the metrics precomputed."""
        engine = self.engine
        if t is Quote:
            engine.on_quote(ev)
        elif t is Trade:
            engine.on_trade(ev)
        elif t is Tick:
            engine.on_tick(ts)
        elif t is DepthUpdate or t is DepthSnapshot:
            self.on_depth(ev, ts)
        self.after_engine(ts)

    def on_depth(self, ev: DepthUpdate | DepthSnapshot, ts: int) -> None:
        """A depth event: what the engine has due before it is judged on the book as it was;
        then the book, its health incidents (logged as feed records), the engine's own
        consumption against the new levels, and the book's metrics."""
        sb = self.book
        if sb is None:
            return  # depth is not part of this session
        self.engine.before_depth(ts)
        for inc in sb.apply(ev, ts):
            self.book_incidents[inc.kind] = self.book_incidents.get(inc.kind, 0) + 1
            self.emit(records.feed(ts, self.symbol, event=inc.kind, detail=inc.detail, gap_ms=inc.gap_ms))
        self.engine.after_depth()
        self.book_metrics.update(sb)

    def rebind_book_metrics(self, metric_set: Any) -> None:
        """A new metric set (hot reload): the book's metrics go into the new values, as of now."""
        self.book_metrics = BookMetrics(metric_set, self.metrics.values)
        if self.book is not None:
            self.book_metrics.start()
            self.book_metrics.update(self.book)
            self.book_metrics.age(self.book, self.last_ts)

    def book_summary(self) -> dict[str, Any] | None:
        """The book's sequencing counters and health incidents (None without depth)."""
        sb = self.book
        if sb is None:
            return None
        b = sb.book
        return {"state": b.state if b is not None else "empty", "last_update_id": b.last_update_id if b is not None else None,
                "counters": b.counters.as_dict() if b is not None else {}, "incidents": dict(sorted(self.book_incidents.items()))}

    def after_engine(self, ts: int) -> None:
        """Risk, the machines and the decision, once the engine has seen the event."""
        engine = self.engine
        if self.book is not None:
            self.book_metrics.age(self.book, ts)
        alerts = self.risk.update(ts, engine, engine.mid)
        if alerts:
            for alert in alerts:
                self.emit({k: _finite(v) for k, v in alert.items()})
        fired = False
        for m in self.machines:
            if m.evaluate(ts):
                fired = True
        if self.decision.evaluate() or fired:
            self._on_change(ts)

    def _on_change(self, ts: int) -> None:
        for m in self.machines:
            prev = self._since.get(m.spec.name)
            if prev is None or prev[0] != m.state:
                if prev is not None:
                    acc = self.time_in_state[m.spec.name]
                    acc[prev[0]] = acc.get(prev[0], 0.0) + (ts - prev[1]) / NS
                self._since[m.spec.name] = (m.state, ts)
        d = self.decision.out
        key = (d["rule"], d["risk_budget"])
        if key != self._last_decision:
            self._last_decision = key
            self.emit(records.decision(ts, self.symbol, **self.decision_view(), states=self.states()))
            if not d["eligible"] and self.engine.open_orders:
                self.engine.cancel_all(ts, f"decision:{d['rule']}")
        for alert in self.invariants.check(ts, self.symbol):  # proven at load; watched in case
            self.emit(alert)

    def start(self, ts: int) -> None:
        for m in self.machines:
            self._since[m.spec.name] = (m.state, ts)
        self._last_decision = (self.decision.out["rule"], self.decision.out["risk_budget"])

    def close_time_in_state(self, ts: int) -> dict[str, dict[str, float]]:
        out = {}
        for m in self.machines:
            acc = dict(self.time_in_state[m.spec.name])
            state, since = self._since.get(m.spec.name, (m.state, ts))
            acc[state] = acc.get(state, 0.0) + max(ts - since, 0) / NS
            out[m.spec.name] = {k: round(v, 6) for k, v in sorted(acc.items())}
        return out

    # -- intents ----------------------------------------------------------------------------------
    def handle_intent(self, intent: Any, ts: int) -> None:
        """Constraints first, then risk, then (only if both allow it) the paper engine."""
        states = self.states()
        decision = self.decision_view()
        self.emit(records.intent(ts, self.symbol, intent_id=intent.intent_id,
                                 side=intent.side, notional_usd=intent.notional_usd, style=intent.style,
                                 states=states, decision=decision))

        def reject(stage: str, rule: str, reason: str) -> None:
            self.emit(records.intent_reject(ts, self.symbol, intent_id=intent.intent_id,
                                            stage=stage, rule=rule, reason=reason, states=states, decision=decision))

        if not decision["eligible"]:
            reject("decision", decision["rule"], "not eligible")
            return
        if AGGRESSIVENESS_RANK[intent.style] > AGGRESSIVENESS_RANK[decision["aggressiveness"]]:
            reject("decision", decision["rule"], f"style {intent.style} exceeds the ceiling {decision['aggressiveness']}")
            return
        sized = replace(intent, notional_usd=intent.notional_usd * decision["risk_budget"])
        if sized.notional_usd <= 0:
            reject("decision", decision["rule"], "risk budget is zero")
            return
        guard = self.risk.check(sized, self.engine, ts, self.engine.mid)
        if guard is not None:
            reject("risk", guard, f"risk guard {guard}")
            return
        self.engine.submit(sized, ts, states)


@dataclass
class RunResult:
    out_dir: Path | None
    summary: dict[str, Any]


class Runtime:
    """A session in progress: feed it events; it keeps the clock, the pipelines and the log."""

    def __init__(self, session: Session, emit: Emit, *, source_identity: dict | None = None):
        self.session = session
        self.emit = emit
        self.clock = Clock(session.tick_ns, lambda: self.session.metric_set)
        self.sample_ns = NS  # a metrics sample per symbol per second of event time, for reports
        self.pipelines = {s: SymbolPipeline(session, s, emit) for s in session.symbols}
        self.intents = make_generator(IntentConfig.from_dict(session.section("intents")), session.source.get("seed", 0),
                                      import_root=workspace.find(Path(session.path).parent) or Path(session.path).parent)
        if hasattr(self.intents, "bind"):  # a strategy reads the pipelines' metrics, states and decision
            self.intents.bind(self.pipelines)
        self.event_intents = getattr(self.intents, "event_by_event", False)  # it sees every event
        self.source_identity = source_identity or {}
        self.next_sample: int | None = None
        self.events = 0
        self.feed_events: dict[str, int] = {}
        self.before_event: Callable[[int], None] | None = None  # hot reload hooks in here
        self.stop: Callable[[], bool] | None = None  # asked during a long run of clock ticks
        # A gap in the data (quiet.py): past settle_ns after the last event, ticks that provably
        # change nothing are skipped, and no intent or metrics sample is due.
        self.quiet_spans = [QuietSpan(p) for p in self.pipelines.values()]

    def can_run_blocks(self) -> bool:
        """Whether the replay fast path (``blocks.py``) can feed this runtime: no hook that must
        see every event (hot reload, a Python strategy)."""
        return self.before_event is None and not self.event_intents

    # -- clock ----------------------------------------------------------------------------------
    def start(self, ts: int) -> None:
        """The first event's time: the clock's origin and the ``session_start`` record."""
        self.clock.start(ts)
        self.next_sample = (ts // self.sample_ns + 1) * self.sample_ns
        self.emit(records.session_start(
            ts,
            session=self.session.name, config_hash=self.session.config_hash,
            symbols=list(self.pipelines), source=self.source_identity,
            initial={s: p.states() for s, p in self.pipelines.items()},
            decision={s: p.decision_view() for s, p in self.pipelines.items()},
        ))
        for p in self.pipelines.values():
            p.start(ts)

    def advance_to(self, ts: int) -> None:
        """Process every clock tick at or before ``ts`` (live runs call this on a timer). A signal
        in a long gap ends the session, whatever the clock owes."""
        if self.clock.first_ns is not None:
            self.clock.run_ticks(ts, self.provably_quiet, self._tick, self.stop)

    def provably_quiet(self, t0: int, t1: int) -> bool:
        return all(q.provably_quiet(t0, t1) for q in self.quiet_spans)

    def _tick(self, t: int, quiet: bool) -> None:
        tick = Tick(t)
        for p in self.pipelines.values():
            p.on_event(tick)
            if not quiet:
                self._intents(p, t)
        if t >= self.next_sample and not quiet:
            self.sample(t)

    def sample(self, t: int) -> None:
        """A metrics record per symbol, once per ``sample_ns`` of event time."""
        self.next_sample = (t // self.sample_ns + 1) * self.sample_ns
        for s, p in self.pipelines.items():
            self.emit(records.metrics(t, s, values=_finite_values(p.metrics.values), states=p.states()))

    def _intents(self, p: SymbolPipeline, t: int) -> None:
        for intent in self.intents.due(t, p.symbol):
            p.handle_intent(intent, t)

    # -- events ---------------------------------------------------------------------------------
    def feed(self, ev: Quote | Trade | FeedEvent) -> None:
        ts = ev.ts_ns
        clock = self.clock
        if clock.first_ns is None:
            self.start(ts)
        if self.before_event is not None:
            self.before_event(ts)
        if clock.next_tick <= ts:  # most events fall between two ticks: skip the call
            self.advance_to(ts)
        if ts > clock.now_ns:
            clock.now_ns = ts
        last = clock.last_data_ns  # clock.saw_data(ts), inline: every event pays for it
        if last is None or ts > last:
            clock.last_data_ns = ts
        clock.quiet_seen = False
        self.events += 1
        if type(ev) is FeedEvent:
            self.log_feed_event(ev)
            targets = [self.pipelines[ev.symbol]] if ev.symbol in self.pipelines else list(self.pipelines.values())
            for p in targets:
                p.on_event(ev)
            return
        p = self.pipelines.get(ev.symbol)
        if p is not None:
            p.on_event(ev)
            if self.event_intents:
                for intent in self.intents.on_event(ev, p.last_ts):
                    p.handle_intent(intent, p.last_ts)

    def log_feed_event(self, ev: FeedEvent) -> None:
        self.feed_events[ev.kind] = self.feed_events.get(ev.kind, 0) + 1
        self.emit(records.feed(ev.ts_ns, ev.symbol, event=ev.kind,
                               detail=ev.detail, gap_ms=ev.gap_ms))

    def finish(self, reason: str = "end of input") -> dict[str, Any]:
        """Cancel open orders, write the summary record; returns the summary."""
        clock = self.clock
        end = clock.now_ns if clock.first_ns is not None else 0
        if clock.first_ns is None:
            self.start(0)
        per_symbol = {}
        for s, p in self.pipelines.items():
            p.engine.cancel_all(end, "session_end")
            p.engine.close(end)
            per_symbol[s] = {
                "time_in_state_s": p.close_time_in_state(end),
                "transitions": {m.spec.name: m.transition_count for m in p.machines},
                "final_states": p.states(),
                "execution": p.engine.summary(),
                "metrics": {"late_events": p.metrics.late_events, "invalid_events": p.metrics.invalid_events,
                            "gaps": p.metrics.gaps},
            }
            if p.book is not None:
                per_symbol[s]["book"] = p.book_summary()
        summary = {
            "session": self.session.name,
            "config_hash": self.session.config_hash,
            "source": self.source_identity,
            "end_reason": reason,
            "events": self.events,
            "event_time_start_ns": clock.first_ns,
            "event_time_end_ns": end,
            "duration_s": round((end - (clock.first_ns or end)) / NS, 3),
            "feed": dict(sorted(self.feed_events.items())),
            "symbols": per_symbol,
        }
        return summary


def run_events(runtime: Runtime, events: Iterable, stop: Callable[[], bool] | None = None,
               progress: Any = None) -> str:
    """Feed a finite iterable of events; returns why it stopped."""
    feed = runtime.feed
    n = 0
    for ev in events:
        feed(ev)
        n += 1
        if n & 1023 == 0:  # a stop is seen within a fraction of a second
            if progress is not None:
                progress.update(1024)
            if stop is not None and stop():
                return "interrupted"
    if progress is not None:
        progress.update(n & 1023)
    return "end of input"


def wall_clock_summary(summary: dict[str, Any], started: float) -> dict[str, Any]:
    """Figures that depend on the machine, kept out of the log and its digest."""
    elapsed = time.perf_counter() - started
    return {"wall_s": round(elapsed, 3), "events_per_s": round(summary["events"] / elapsed) if elapsed > 0 else None}
