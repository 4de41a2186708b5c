"""Facts derived from an audit log: state intervals, transition counts, time in state,
eligibility time, execution quality by label, refused intents, incidents.

Everything is computed from the records alone (no specs needed), per symbol.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NS = 1_000_000_000
LAYERS = ("regime", "permission", "health")


@dataclass
class Interval:
    start_ns: int
    end_ns: int
    state: str


@dataclass
class RunFacts:
    start: dict[str, Any]
    end: dict[str, Any] | None
    start_ns: int
    end_ns: int
    symbols: list[str]
    machines: list[str]
    # symbol -> machine -> intervals
    intervals: dict[str, dict[str, list[Interval]]]
    # symbol -> machine -> (from, to, rule) -> count
    edge_counts: dict[str, dict[str, dict[tuple[str, str, int], int]]]
    # symbol -> list of (start, end, eligible, rule)
    decisions: dict[str, list[tuple[int, int, dict[str, Any]]]]
    transitions: list[dict[str, Any]] = field(default_factory=list)
    order_results: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    exchange_rejects: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    feed: list[dict[str, Any]] = field(default_factory=list)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    intents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS

    def time_in_state(self, symbol: str | None = None) -> dict[str, dict[str, float]]:
        """machine -> state -> seconds (summed over symbols unless one is given)."""
        out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for sym, per in self.intervals.items():
            if symbol is not None and sym != symbol:
                continue
            for machine, ivs in per.items():
                for iv in ivs:
                    out[machine][iv.state] += (iv.end_ns - iv.start_ns) / NS
        return {m: dict(v) for m, v in out.items()}

    def transition_counts(self, symbol: str | None = None) -> dict[str, dict[tuple[str, str, int], int]]:
        out: dict[str, dict[tuple[str, str, int], int]] = defaultdict(lambda: defaultdict(int))
        for sym, per in self.edge_counts.items():
            if symbol is not None and sym != symbol:
                continue
            for machine, edges in per.items():
                for k, n in edges.items():
                    out[machine][k] += n
        return {m: dict(v) for m, v in out.items()}

    def eligible_s(self, symbol: str | None = None) -> float:
        total = 0
        for sym, spans in self.decisions.items():
            if symbol is not None and sym != symbol:
                continue
            total += sum(e - s for s, e, d in spans if d.get("eligible"))
        return total / NS

    def state_at(self, symbol: str, machine: str, ts_ns: int) -> str | None:
        for iv in self.intervals.get(symbol, {}).get(machine, []):
            if iv.start_ns <= ts_ns < iv.end_ns:
                return iv.state
        ivs = self.intervals.get(symbol, {}).get(machine, [])
        return ivs[-1].state if ivs and ts_ns >= ivs[-1].end_ns else (ivs[0].state if ivs else None)


# Record kinds collected unchanged, and the RunFacts list each goes to.
_KEPT_AS_IS = {"order_result": "order_results", "order": "orders", "fill": "fills", "alert": "alerts",
               "feed": "feed", "config_reload": "reloads", "metrics": "metrics", "intent": "intents"}

def facts(records: Iterable[dict[str, Any]]) -> RunFacts:
    """One pass over the log."""
    start: dict[str, Any] = {}
    end: dict[str, Any] | None = None
    last_ts = 0
    current: dict[str, dict[str, tuple[int, str]]] = {}
    intervals: dict[str, dict[str, list[Interval]]] = {}
    edges: dict[str, dict[str, dict[tuple[str, str, int], int]]] = {}
    dec_current: dict[str, tuple[int, dict[str, Any]]] = {}
    decisions: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    f = RunFacts(start={}, end=None, start_ns=0, end_ns=0, symbols=[], machines=[], intervals=intervals,
                 edge_counts=edges, decisions=decisions)
    machines: list[str] = []
    for r in records:
        kind = r.get("kind")
        ts = int(r.get("ts_ns") or 0)
        last_ts = max(last_ts, ts)
        sym = r.get("symbol", "")
        if kind == "session_start":
            start = r
            for s, states in (r.get("initial") or {}).items():
                current[s] = {m: (ts, st) for m, st in states.items()}
                for m in states:
                    if m not in machines:
                        machines.append(m)
            for s, d in (r.get("decision") or {}).items():
                dec_current[s] = (ts, dict(d))
        elif kind == "transition":
            m = r.get("machine", "")
            if m not in machines:
                machines.append(m)
            cur = current.setdefault(sym, {})
            if m in cur:
                t0, st = cur[m]
                intervals.setdefault(sym, {}).setdefault(m, []).append(Interval(t0, ts, st))
            elif start:
                intervals.setdefault(sym, {}).setdefault(m, []).append(Interval(int(start.get("ts_ns", ts)), ts, r.get("from", "")))
            cur[m] = (ts, r.get("to", ""))
            e = edges.setdefault(sym, {}).setdefault(m, {})
            key = (r.get("from", ""), r.get("to", ""), int(r.get("rule") or 0))
            e[key] = e.get(key, 0) + 1
            f.transitions.append(r)
        elif kind == "decision":
            if sym in dec_current:
                t0, d = dec_current[sym]
                decisions.setdefault(sym, []).append((t0, ts, d))
            dec_current[sym] = (ts, r)
        elif kind == "session_end":
            end = r
        elif kind == "reject":
            if r.get("stage") in ("decision", "risk") or ("intent_id" in r and "order_id" not in r):
                f.refusals.append(r)
            else:
                f.exchange_rejects.append(r)
        elif kind in _KEPT_AS_IS:
            getattr(f, _KEPT_AS_IS[kind]).append(r)
    start_ns = int(start.get("ts_ns", 0)) if start else 0
    end_ns = int(end.get("ts_ns", last_ts)) if end else last_ts
    end_ns = max(end_ns, start_ns)
    for sym, per in current.items():
        for m, (t0, st) in per.items():
            intervals.setdefault(sym, {}).setdefault(m, []).append(Interval(t0, max(end_ns, t0), st))
    for sym, (t0, d) in dec_current.items():
        decisions.setdefault(sym, []).append((t0, max(end_ns, t0), d))
    symbols = list(start.get("symbols") or []) or sorted(intervals)
    f.start, f.end, f.start_ns, f.end_ns = start, end, start_ns, end_ns
    f.symbols, f.machines = symbols, machines
    return f


# --- execution quality ----------------------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _wmean(pairs: list[tuple[float, float]]) -> float | None:
    w = sum(p[1] for p in pairs)
    return sum(v * wt for v, wt in pairs) / w if w else None


def _horizon_s(h: str) -> float:
    try:
        return float(h.rstrip("s"))
    except ValueError:
        return float("inf")


def quality_rows(results: list[dict[str, Any]], dim: str | None) -> list[dict[str, Any]]:
    """Execution quality grouped by a label (regime, health, ...) or overall (``dim=None``),
    from the engine's per-order results."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        key = "all" if dim is None else str((r.get("labels") or {}).get(dim, r.get(dim, "?")))
        groups[key].append(r)
    horizons: list[str] = []
    for r in results:
        for h in (r.get("markout_bps") or {}):
            if h not in horizons:
                horizons.append(h)
    horizons.sort(key=_horizon_s)
    rows = []
    for key in sorted(groups):
        rs = groups[key]
        qty = sum(float(r.get("qty") or 0) for r in rs)
        filled = sum(float(r.get("filled_qty") or 0) for r in rs)
        weighted = [(r, float(r.get("filled_qty") or 0) * float(r.get("avg_fill_price") or 0)) for r in rs]
        row = {
            "group": key,
            "orders": len(rs),
            "filled_orders": sum(1 for r in rs if (r.get("filled_qty") or 0) > 0),
            "rejected": sum(1 for r in rs if r.get("status") == "rejected"),
            "fill_ratio": filled / qty if qty else None,
            "slippage_arrival_bps": _wmean([(r["slippage_arrival_bps"], w) for r, w in weighted
                                            if r.get("slippage_arrival_bps") is not None]),
            "slippage_decision_bps": _wmean([(r["slippage_decision_bps"], w) for r, w in weighted
                                             if r.get("slippage_decision_bps") is not None]),
            "latency_ms": _mean([r["latency_ms"] for r in rs if r.get("latency_ms") is not None]),
            "markout_bps": {h: _wmean([((r.get("markout_bps") or {}).get(h), w) for r, w in weighted
                                       if (r.get("markout_bps") or {}).get(h) is not None])
                            for h in horizons},
        }
        rows.append(row)
    return rows


def quality_by(f: RunFacts) -> dict[str, list[dict[str, Any]]]:
    return {"all": quality_rows(f.order_results, None),
            "regime": quality_rows(f.order_results, "regime"),
            "health": quality_rows(f.order_results, "health")}


def refusal_counts(f: RunFacts) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in f.refusals:
        out[(str(r.get("stage", "")), str(r.get("rule", "")))] += 1
    return dict(out)


def states_of(r: dict[str, Any]) -> dict[str, Any]:
    """The layer states a record was labelled with (states, labels, or top-level keys)."""
    s = r.get("states") or r.get("labels") or {}
    return {k: s.get(k) for k in LAYERS if k in s}
