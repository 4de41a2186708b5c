"""The compiled kernel one event at a time (``KernelMetrics``, the live path's metrics) against
the reference engine ``SymbolMetrics``: every metric bit for bit after every event, and the
counters, the clock and the last stamps.

Values are compared as IEEE bit patterns, except that any NaN equals any NaN (as the block
tests do). The event sequences are hypothesis' (the strategies of ``test_kernel``): quotes and
trades with zero, tiny, huge, negative, NaN and infinite numbers, crossed and locked books,
equal, backwards and far-apart stamps, clock ticks, every kind of feed event for this symbol,
for the whole connection and for another symbol.
"""

from __future__ import annotations

import copy
import math
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import build_events
from test_kernel import DEFAULT, FEW, MANY, RECORDINGS, T0, quote, step, trade

from framework.bench.measure import with_ticks
from framework.market.decode import FrameDecoder
from framework.market.events import FeedEvent, Quote, Tick, Trade
from framework.market.replay import read_frames
from framework.state import (
    INVALIDATING_FEED_KINDS,
    SymbolMetrics,
    default_metrics_path,
    load_metric_set,
    metric_set,
)
from framework.state.kernel import (
    FEED,
    GAP,
    QUOTE,
    TICK,
    TRADE,
    KernelMetrics,
    MetricKernel,
    live_metrics,
)

MS = 1_000_000
S = 1_000_000_000
COUNTERS = ("late_events", "invalid_events", "gaps", "quotes", "trades")


def bits(x: float) -> int | str:
    return "nan" if x != x else struct.unpack("<q", struct.pack("<d", x))[0]


def assert_same_state(got: KernelMetrics, want: SymbolMetrics, where: str) -> None:
    assert list(got.values) == list(want.values), where  # same names, same order
    a, b = list(got.values.values()), list(want.values.values())
    if struct.pack(f"{len(a)}d", *a) != struct.pack(f"{len(b)}d", *b):  # else: the same bits
        for name, x in want.values.items():
            y = got.values[name]
            assert bits(y) == bits(x), f"{where}: {name} = {y!r}, SymbolMetrics {x!r}"
    assert all(type(y) is float for y in a), where
    for name in COUNTERS:
        assert getattr(got, name) == getattr(want, name), (where, name)
    assert got.now_ns == want.now_ns, where
    assert got.last_stamps() == want.last_stamps(), where


def check_every_event(ms, events: list, symbol: str = "X") -> None:
    want = SymbolMetrics(ms, symbol)
    got = KernelMetrics(ms, symbol)
    assert_same_state(got, want, "before any event")
    for i, ev in enumerate(events):
        want.on_event(ev)
        got.on_event(ev)
        assert_same_state(got, want, f"after event {i} {ev!r}")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=150))
def test_random_streams_match_the_reference_after_every_event(steps):
    check_every_event(MANY, build_events(steps))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=150))
def test_a_metric_set_with_few_kinds_matches_after_every_event(steps):
    check_every_event(FEW, build_events(steps))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2).map(lambda x: x * MS), st.one_of(quote, trade)),
                min_size=100, max_size=600))
def test_dense_bursts_that_outgrow_the_rings_match_after_every_event(steps):
    """Rings start with room for 16 entries: bursts make them grow between two events (the
    address table is rebuilt) many times over."""
    check_every_event(MANY, build_events(steps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=120))
def test_the_default_metric_set_matches_after_every_event(steps):
    """The shipped declaration, its book kinds included (the kernel leaves them to the book)."""
    check_every_event(load_metric_set(default_metrics_path()), build_events(steps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=120), st.lists(st.integers(0, 40), max_size=5))
def test_blocks_and_single_events_share_one_state(steps, sizes):
    """``MetricKernel.run`` on blocks and ``step`` on single events, alternating, on one kernel:
    the rows are the reference's after the same events."""
    events = [ev for ev in build_events(steps) if not (type(ev) is FeedEvent and ev.symbol == "OTHER")]
    want = SymbolMetrics(MANY, "X")
    kernel = MetricKernel(MANY)
    i = 0
    for size in [*sizes, len(events)]:
        block = events[i:i + size]
        if block:
            rows = kernel.run(*_columns(block))
            for r, ev in enumerate(block):
                want.on_event(ev)
                assert [bits(x) for x in rows[r].tolist()] == [bits(want.values[n]) for n in MANY.names]
        i += size
        if i < len(events):  # one event through the one-event entry
            ev = events[i]
            want.on_event(ev)
            row = kernel.step(*_one(ev))
            assert [bits(x) for x in row.tolist()] == [bits(want.values[n]) for n in MANY.names], ev
            i += 1
        if i >= len(events):
            break


def _one(ev) -> tuple:
    t = type(ev)
    if t is Quote:
        return QUOTE, ev.ts_ns, ev.bid, ev.bid_qty, ev.ask, ev.ask_qty, 0.0, 0.0, False
    if t is Trade:
        return TRADE, ev.ts_ns, 0.0, 0.0, 0.0, 0.0, ev.price, ev.qty, ev.buyer_is_maker
    if t is Tick:
        return TICK, ev.ts_ns, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False
    return GAP if ev.kind in INVALIDATING_FEED_KINDS else FEED, ev.ts_ns, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False


def _columns(events: list) -> tuple:
    cols = list(zip(*(_one(ev) for ev in events), strict=True))
    return (np.array(cols[0], np.int8), np.array(cols[1], np.int64),
            *(np.array(c, np.float64) for c in cols[2:8]), np.array(cols[8], np.bool_))


# -- recordings and edge cases ---------------------------------------------------------------------

@pytest.mark.parametrize("path", RECORDINGS)
def test_recording_with_ticks_matches_after_every_event(path):
    decode = FrameDecoder().decode
    events = [ev for ev in (decode(raw, ns) for ns, raw in read_frames(path)) if ev is not None]
    events = with_ticks(events, 100 * MS)
    check_every_event(load_metric_set(default_metrics_path()), events, "BTCUSDT")


def test_ints_for_floats_and_a_quote_at_the_first_instant():
    """Numbers the decoder never makes but a caller may: ints where floats are declared."""
    events = [Quote(T0, "X", 100, 1, 101, 2, 1), Trade(T0, "X", 100, 3, True, 1, 0, 0),
              Quote(T0 + MS, "X", 99, 0, 100, 0, 2), Tick(T0 + S), FeedEvent(T0 + S, "gap", "X")]
    check_every_event(MANY, events)


def test_the_kernel_is_used_where_it_has_every_kind_and_the_reference_otherwise():
    assert live_metrics(MANY, "X").engine == "compiled kernel"
    assert live_metrics(load_metric_set(default_metrics_path()), "X").engine == "compiled kernel"
    # A baseline of a book metric reads the book's value from the shared dict: the kernel does
    # not see the book, so the reference engine runs.
    book_baseline = metric_set({"book_gaps": ("book_gaps", None),
                                "gaps_p50": ("rolling_quantile", 2.0, {"of": "book_gaps", "quantile": 0.5,
                                                                      "sample_s": 0.1})})
    fallback = live_metrics(book_baseline, "X")
    assert type(fallback) is SymbolMetrics and fallback.engine == "reference engine"
    assert not KernelMetrics.supports(book_baseline)


def test_values_is_one_dict_for_life_and_counters_can_be_caught_up():
    """Guards bind ``values`` once; the replay fast path sets the counters and the clock when it
    catches a pipeline up."""
    m = KernelMetrics(DEFAULT, "X")
    v = m.values
    m.on_quote(Quote(T0, "X", 100.0, 1.0, 100.5, 1.0, 1))
    assert m.values is v and v["mid"] == 100.25
    m.late_events, m.quotes, m.now_ns = 3, 7, T0 + S
    assert (m.late_events, m.quotes, m.now_ns) == (3, 7, T0 + S)
    assert m.stats()["quotes"] == 7
    assert KernelMetrics(DEFAULT, "X").now_ns is None


def test_a_large_stream_keeps_matching_after_the_rings_have_grown_many_times():
    """200,000 quotes and trades at 50 µs through 5 s windows: every ring grows to 131,072."""
    ms = metric_set({"qr": ("quote_rate", 5.0), "tr": ("trade_rate", 5.0), "mm": ("mid_move", 5.0),
                     "s2m": ("spread_to_median", 5.0), "vol": ("realized_vol", 5.0)})
    want = SymbolMetrics(ms, "X")
    got = KernelMetrics(ms, "X")
    for i in range(200_000):
        t = T0 + i * 50_000
        bid = 100.0 + (i * 7919 % 101) * 0.01
        ev = Quote(t, "X", bid, 1.0, bid + 0.01 * (1 + i % 3), 2.0, i) if i % 3 else \
            Trade(t, "X", bid, 0.5, bool(i & 4), i, 0, 0)
        want.on_event(ev)
        got.on_event(ev)
        if i % 997 == 0:
            assert_same_state(got, want, f"event {i}")
    assert_same_state(got, want, "end")
    assert max(max(c) for c in got._kernel.capacities().values()) >= 65_536
    assert not math.isnan(got.values["s2m"])


def test_a_copy_has_state_of_its_own():
    """The address table points at one object's arrays: a deep copy or a pickled copy must
    build its own, or the two would write into each other's windows."""
    events = [Quote(T0 + i * 10 * MS, "X", 100.0 + i % 5, 1.0, 101.0 + i % 5, 2.0, i) for i in range(100)]
    for copier in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        want = SymbolMetrics(MANY, "X")
        got = KernelMetrics(MANY, "X")
        for ev in events[:50]:
            want.on_event(ev)
            got.on_event(ev)
        twin = copier(got)
        before = dict(got.values)
        for ev in events[50:]:  # the copy goes on; the original must not move
            want.on_event(ev)
            twin.on_event(ev)
            assert_same_state(twin, want, repr(ev))
        assert [bits(x) for x in got.values.values()] == [bits(x) for x in before.values()]
        got.on_event(events[50])
        assert got.quotes == 51 and twin.quotes == 100
