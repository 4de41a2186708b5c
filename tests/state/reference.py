"""Brute-force reference of every metric kind, recomputed from the whole history each time.

Written from the definitions in docs/metrics.md, independently of the engine's incremental
data structures: it keeps every applied event and scans all of them on each evaluation.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from framework.market.events import FeedEvent, Quote, Tick, Trade
from framework.state.engine import INVALIDATING_FEED_KINDS

NAN = float("nan")


class Reference:
    def __init__(self, metric_set, symbol: str = "X"):
        self.ms = metric_set
        self.symbol = symbol
        self.now: int | None = None
        self.book: list[tuple] = []  # ("q", ts, bid, ask, bq, aq) or ("g", ts), in order
        self.trades: list[tuple] = []  # (ts, price, qty, buy)
        self.late = 0
        # derived metrics: every sample taken, (ts, value), per metric name
        self.samples: dict[str, list[tuple[int, float]]] = {
            m.name: [] for m in metric_set if m.of is not None}
        self.last_period: dict[str, int] = {}

    def _clamp(self, ts: int) -> int:
        if self.now is not None and ts < self.now:
            self.late += 1
            return self.now
        self.now = ts
        return ts

    def apply(self, ev) -> None:
        if isinstance(ev, Tick):
            if self.now is None or ev.ts_ns > self.now:
                self.now = ev.ts_ns
                self._sample()
            return
        if isinstance(ev, FeedEvent):
            if ev.symbol and ev.symbol != self.symbol:
                return
            ts = self._clamp(ev.ts_ns)
            if ev.kind in INVALIDATING_FEED_KINDS:
                self.book.append(("g", ts))
            self._sample()
            return
        self._apply_market(ev)
        self._sample()

    def _sample(self) -> None:
        """Derived metrics sample their source at the first applied event of each period."""
        for m in self.ms:
            if m.of is None:
                continue
            period = self.now // m.sample_ns
            if self.last_period.get(m.name) == period:
                continue
            self.last_period[m.name] = period
            x = self.value_of(m.of)
            if math.isfinite(x):
                self.samples[m.name].append((self.now, x))

    def _apply_market(self, ev) -> None:
        ts = self._clamp(ev.ts_ns)
        if isinstance(ev, Quote):
            ok = all(math.isfinite(x) for x in (ev.bid, ev.ask, ev.bid_qty, ev.ask_qty))
            if ok and ev.bid > 0 and ev.ask > 0 and ev.bid_qty >= 0 and ev.ask_qty >= 0:
                self.book.append(("q", ts, ev.bid, ev.ask, ev.bid_qty, ev.ask_qty))
        elif isinstance(ev, Trade):
            if math.isfinite(ev.price) and math.isfinite(ev.qty) and ev.price > 0 and ev.qty > 0:
                self.trades.append((ts, ev.price, ev.qty, not ev.buyer_is_maker))

    # -- evaluation ---------------------------------------------------------------------

    def values(self) -> dict[str, float]:
        return {m.name: self.value_of(m.name) for m in self.ms}

    def value_of(self, name: str) -> float:
        m = self.ms[name]
        if m.of is None:
            return self.value(m.kind, m.window_ns)
        samples = self.samples[name]
        if m.kind == "ewma":
            if len(samples) < m.min_samples:
                return NAN
            # closed form: each sample weighted by alpha (1 - alpha)^age, the first by (1 - alpha)^age
            a = m.alpha
            n = len(samples)
            total = samples[0][1] * (1 - a) ** (n - 1)
            for k in range(1, n):
                total += samples[k][1] * a * (1 - a) ** (n - 1 - k)
            return total
        held = sorted(x for ts, x in samples if ts > self.now - m.window_ns)
        if len(held) < m.min_samples or not held:
            return NAN
        return float(np.quantile(np.array(held), m.quantile))

    def value(self, kind: str, w: int) -> float:
        now = self.now
        quotes = [b for b in self.book if b[0] == "q"]
        last = self.book[-1] if self.book else None
        cur = last if last is not None and last[0] == "q" else None
        if kind in ("mid", "spread", "spread_bps", "microprice", "imbalance"):
            if cur is None:
                return NAN
            _, _, bid, ask, bq, aq = cur
            mid = (bid + ask) / 2
            if kind == "mid":
                return mid
            if kind == "spread":
                return ask - bid
            if kind == "spread_bps":
                return (ask - bid) / mid * 1e4
            if bq + aq == 0:
                return mid if kind == "microprice" else NAN
            if kind == "microprice":
                return (bid * aq + ask * bq) / (bq + aq)
            return (bq - aq) / (bq + aq)
        if kind == "quote_age":
            return (now - quotes[-1][1]) / 1e6 if quotes else math.inf
        if kind == "trade_age":
            return (now - self.trades[-1][0]) / 1e6 if self.trades else math.inf
        if now is None:  # nothing applied yet: every window is empty
            return {"buy_ratio": NAN, "mid_move": NAN, "spread_to_median": NAN}.get(kind, 0.0)
        cut = now - w
        ws = w / 1e9
        if kind == "quote_rate":
            return sum(1 for q in quotes if q[1] > cut) / ws
        if kind == "crossed_count":
            return float(sum(1 for q in quotes if q[1] > cut and q[2] >= q[3]))
        if kind == "realized_vol":
            s = 0.0
            for i, b in enumerate(self.book):
                if b[0] == "q" and b[1] > cut and i > 0 and self.book[i - 1][0] == "q":
                    p = self.book[i - 1]
                    r = math.log(((b[2] + b[3]) / 2) / ((p[2] + p[3]) / 2))
                    s += r * r
            return math.sqrt(s) * 1e4
        window_trades = [t for t in self.trades if t[0] > cut]
        if kind == "trade_rate":
            return len(window_trades) / ws
        if kind == "volume_base_rate":
            return sum(t[2] for t in window_trades) / ws
        if kind == "volume_quote_rate":
            return sum(t[1] * t[2] for t in window_trades) / ws
        if kind == "buy_ratio":
            total = sum(t[2] for t in window_trades)
            return sum(t[2] for t in window_trades if t[3]) / total if total > 0 else NAN
        # Mids (or spreads) in force at some point of (cut, now]: each quote is in force from
        # its stamp until the next book event (quote or gap), the last one open-ended.
        in_force = []
        for i, b in enumerate(self.book):
            if b[0] != "q":
                continue
            end = self.book[i + 1][1] if i + 1 < len(self.book) else None
            if end is None or end > cut:
                in_force.append(b)
        if kind == "mid_move":
            if not in_force:
                return NAN
            mids = [(b[2] + b[3]) / 2 for b in in_force]
            return (max(mids) - min(mids)) / min(mids) * 1e4
        if kind == "spread_to_median":
            if cur is None:
                return NAN
            spreads = [(b[3] - b[2]) / ((b[2] + b[3]) / 2) * 1e4 for b in in_force]
            med = statistics.median(spreads)
            now_s = (cur[3] - cur[2]) / ((cur[2] + cur[3]) / 2) * 1e4
            return now_s / med if med > 0 else NAN
        raise AssertionError(f"no reference for kind {kind}")


def close(a: float, b: float, kind: str) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    if kind in ("rolling_quantile", "ewma"):  # of a realized vol: its tolerance, and more
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-5)
    if kind == "realized_vol":
        return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-5)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def build_events(steps, t0: int = 1_700_000_000 * 1_000_000_000) -> list:
    """Events of symbol "X" from generated (delta_ns, spec) steps: ("q", bid, ask, bid_qty,
    ask_qty), ("t", price, qty, buyer_is_maker), ("k",) for a tick, ("f", kind, symbol)."""
    ts = t0
    out = []
    for i, (d, spec) in enumerate(steps):
        ts += d
        if spec[0] == "q":
            out.append(Quote(ts, "X", spec[1], spec[3], spec[2], spec[4], i))
        elif spec[0] == "t":
            out.append(Trade(ts, "X", spec[1], spec[2], spec[3], i, 0, 0))
        elif spec[0] == "k":
            out.append(Tick(ts))
        else:
            out.append(FeedEvent(ts, spec[1], spec[2]))
    return out
