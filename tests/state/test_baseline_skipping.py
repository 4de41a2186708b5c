"""Baselines (rolling quantiles and EWMAs of other metrics) advance only when they can change:
when a new sample period starts or the oldest held sample leaves the window; the other windows
are advanced by events that add nothing to them only once their oldest entry leaves. The
skipping must change nothing: after every event of random streams, the engine's values equal
bit for bit those of the same engine advancing every window and baseline on every event, and
the compiled kernel's rows equal both.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import build_events

from framework.market.events import FeedEvent, Quote, Tick, Trade
from framework.state import SymbolMetrics, metric_set
from framework.state.engine import INVALIDATING_FEED_KINDS
from framework.state.kernel import FEED, GAP, QUOTE, TICK, TRADE, MetricKernel

MS = 1_000_000

# Short cadences and windows, so random streams cross many sample periods and expiries; one
# baseline of another, several on the same source, a window of one sample.
BASELINES = metric_set({
    "spread_bps": ("spread_bps", None),
    "quote_age": ("quote_age", None),
    "rate_1s": ("trade_rate", 1),
    "move_1s": ("mid_move", 1),
    "spread_med": ("rolling_quantile", 2, {"of": "spread_bps", "quantile": 0.5, "sample_s": 0.2,
                                           "min_history_s": 0.4}),
    "rate_p90": ("rolling_quantile", 1.5, {"of": "rate_1s", "quantile": 0.9, "sample_s": 0.25}),
    "move_max": ("rolling_quantile", 0.3, {"of": "move_1s", "quantile": 1.0, "sample_s": 0.3}),
    "age_ewma": ("ewma", None, {"of": "quote_age", "half_life_s": 0.5, "sample_s": 0.3}),
    # windows that are not a whole number of periods: samples leave between two periods
    "age_min": ("rolling_quantile", 0.35, {"of": "quote_age", "quantile": 0.0, "sample_s": 0.1}),
    "age_max": ("rolling_quantile", 1.0, {"of": "quote_age", "quantile": 1.0, "sample_s": 0.3}),
    "med_of_med": ("rolling_quantile", 3, {"of": "spread_med", "quantile": 0.25, "sample_s": 0.5}),
})


class AlwaysAdvance(SymbolMetrics):
    """The engine without the skipping: every window and every baseline steps on every event."""

    def on_event(self, ev) -> None:
        for s in self._all:
            s.due = -(1 << 63)  # every window looks due: advance() runs as it did before
        super().on_event(ev)

    def _advance_derived(self, ts: int) -> None:
        for d in self._derived:
            d._advance(ts)
        self._derived_due = -(1 << 63)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


dt = st.one_of(
    st.just(0),
    st.integers(1, 60).map(lambda x: x * MS),
    st.integers(60, 700).map(lambda x: x * MS),
    st.sampled_from([200, 250, 300, 500, 1000, 1500, 2000]).map(lambda x: x * MS),  # on a period
    st.integers(1, 5).map(lambda x: x * 1000 * MS),  # longer than some windows
    st.integers(-400, -1).map(lambda x: x * MS),  # out of order: applied at the current time
)
price = st.integers(-4, 4).map(lambda k: 100.0 + 0.5 * k)
qty = st.sampled_from([0.0, 1.0, 2.5])
quote = st.builds(lambda b, s, bq, aq: ("q", b, b + s, bq, aq), price,
                  st.sampled_from([0.0, 0.5, 0.5, 1.0, 3.0]), qty, qty)
trade = st.builds(lambda p, q, m: ("t", p, q, m), price, st.sampled_from([0.1, 1.0]), st.booleans())
feed = st.builds(lambda k: ("f", k, ""), st.sampled_from(["gap", "reconnect", "connect"]))
step = st.tuples(dt, st.one_of(quote, quote, trade, st.just(("k",)), feed))


def kernel_rows(events: list) -> np.ndarray:
    n = len(events)
    kind = np.zeros(n, np.int8)
    ts = np.zeros(n, np.int64)
    cols = [np.zeros(n) for _ in range(6)]
    maker = np.zeros(n, np.bool_)
    for i, ev in enumerate(events):
        ts[i] = ev.ts_ns
        if type(ev) is Quote:
            kind[i] = QUOTE
            cols[0][i], cols[1][i], cols[2][i], cols[3][i] = ev.bid, ev.bid_qty, ev.ask, ev.ask_qty
        elif type(ev) is Trade:
            kind[i] = TRADE
            cols[4][i], cols[5][i], maker[i] = ev.price, ev.qty, ev.buyer_is_maker
        elif type(ev) is Tick:
            kind[i] = TICK
        else:
            assert type(ev) is FeedEvent
            kind[i] = GAP if ev.kind in INVALIDATING_FEED_KINDS else FEED
    return MetricKernel(BASELINES).run(kind, ts, *cols, maker)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=250))
def test_skipping_baselines_changes_no_value_bit_for_bit(steps):
    events = build_events(steps)
    fast = SymbolMetrics(BASELINES, symbol="X")
    slow = AlwaysAdvance(BASELINES, symbol="X")
    rows = kernel_rows(events)
    names = BASELINES.names
    for i, ev in enumerate(events):
        fast.on_event(ev)
        slow.on_event(ev)
        for j, name in enumerate(names):
            want = slow.values[name]
            assert bits(fast.values[name]) == bits(want), f"event {i} {ev!r}: {name}"
            assert bits(float(rows[i, j])) == bits(want), f"kernel, event {i} {ev!r}: {name}"
    assert fast.buffered() == slow.buffered()


def test_a_baseline_between_its_due_times_is_not_touched():
    """Inside a sample period with nothing leaving the window, the events after the first do
    not step the baselines at all (the point of the skipping), and the first one of the next
    period steps only the baseline whose period it starts."""
    m = SymbolMetrics(BASELINES, symbol="X")
    t0 = 1_700_000_004_000 * MS  # a multiple of 6 s: every period starts here
    m.on_event(Quote(t0, "X", 100.0, 1.0, 100.5, 1.0, 1))
    due = {d.name: d.next_due for d in m._derived}
    assert due["age_min"] == t0 + 100 * MS and due["age_ewma"] == t0 + 300 * MS
    assert m._derived_due == t0 + 100 * MS
    for k in range(1, 10):
        m.on_event(Quote(t0 + k * 10 * MS, "X", 100.0, 1.0, 100.5, 1.0, 1 + k))
        assert {d.name: d.next_due for d in m._derived} == due
    m.on_event(Quote(t0 + 100 * MS, "X", 100.0, 1.0, 100.5, 1.0, 99))
    now = {d.name: d.next_due for d in m._derived}
    assert [n for n in due if now[n] != due[n]] == ["age_min"]  # the only one sampled every 0.1 s
    assert now["age_min"] == t0 + 200 * MS
