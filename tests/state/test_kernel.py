"""The compiled batch kernel against SymbolMetrics, bit for bit, after every event.

Rows are compared as IEEE bit patterns, except that any NaN equals any NaN. Events go in as
several blocks of uneven sizes, so the state carried from one ``run`` call to the next is
checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import build_events

from framework.bench.measure import with_ticks
from framework.market.decode import FrameDecoder
from framework.market.events import FeedEvent, Quote, Tick, Trade
from framework.market.replay import read_frames
from framework.state import (
    INVALIDATING_FEED_KINDS,
    KINDS,
    SymbolMetrics,
    default_metrics_path,
    load_metric_set,
    metric_set,
)
from framework.state.kernel import FEED, GAP, INITIAL_CAPACITY, QUOTE, TICK, TRADE, MetricKernel

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S
DEFAULT = load_metric_set(default_metrics_path()).rolling  # the book kinds are the book's, not the kernel's
RECORDINGS = ["data/binance-spot-btcusdt-20240808.frames.gz",
              "data/binance-usdm-btcusdt-20240808.frames.gz"]


def columns(events: list) -> tuple:
    """The kernel's input columns for one symbol's events (feed events already filtered)."""
    n = len(events)
    kind = np.zeros(n, dtype=np.int8)
    ts = np.zeros(n, dtype=np.int64)
    f = np.zeros((6, n))
    bim = np.zeros(n, dtype=bool)
    for i, ev in enumerate(events):
        ts[i] = ev.ts_ns
        if type(ev) is Quote:
            kind[i] = QUOTE
            f[0, i], f[1, i], f[2, i], f[3, i] = ev.bid, ev.bid_qty, ev.ask, ev.ask_qty
        elif type(ev) is Trade:
            kind[i] = TRADE
            f[4, i], f[5, i] = ev.price, ev.qty
            bim[i] = ev.buyer_is_maker
        elif type(ev) is Tick:
            kind[i] = TICK
        else:
            kind[i] = GAP if ev.kind in INVALIDATING_FEED_KINDS else FEED
    return (kind, ts, *f, bim)


def reference_rows(ms, events: list, symbol: str) -> tuple[np.ndarray, SymbolMetrics]:
    eng = SymbolMetrics(ms, symbol)
    v = eng.values
    rows = np.empty((len(events), len(ms)))
    for i, ev in enumerate(events):
        eng.on_event(ev)
        rows[i] = [v[n] for n in ms.names]
    return rows, eng


def run_blocks(kernel: MetricKernel, cols: tuple, sizes) -> np.ndarray:
    n = len(cols[0])
    parts, start = [], 0
    for size in sizes:
        if start >= n:
            break
        parts.append(kernel.run(*(c[start:start + size] for c in cols)))
        start += size
    parts.append(kernel.run(*(c[start:] for c in cols)))
    return np.concatenate(parts)


def assert_same_bits(got: np.ndarray, want: np.ndarray, names, events=None) -> None:
    assert got.shape == want.shape
    same = (got.view(np.uint64) == want.view(np.uint64)) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        i, j = (int(x) for x in np.argwhere(~same)[0])
        ev = f" {events[i]!r}" if events is not None else ""
        raise AssertionError(f"event {i}{ev}: {names[j]} = {got[i, j]!r}, "
                             f"SymbolMetrics {want[i, j]!r} ({int((~same).sum())} cells differ)")


def assert_same_counters(kernel: MetricKernel, eng: SymbolMetrics) -> None:
    for name in ("late_events", "invalid_events", "gaps", "quotes", "trades"):
        assert getattr(kernel, name) == getattr(eng, name), name


# -- the shipped recordings ------------------------------------------------------------------------

@pytest.mark.parametrize("path", RECORDINGS)
def test_recording_with_ticks_matches_symbol_metrics_bit_for_bit(path):
    decode = FrameDecoder().decode
    events = [ev for ev in (decode(raw, ns) for ns, raw in read_frames(path)) if ev is not None]
    events = with_ticks(events, 100 * MS)
    assert any(type(ev) is Tick for ev in events)
    want, eng = reference_rows(DEFAULT, events, "BTCUSDT")
    kernel = MetricKernel(DEFAULT)
    assert kernel.names == DEFAULT.names
    got = run_blocks(kernel, columns(events), [1, 7, 1000])
    assert_same_bits(got, want, DEFAULT.names)
    assert_same_counters(kernel, eng)
    assert kernel.quotes > 10_000 and kernel.trades > 1_000
    now = kernel.values_now()
    assert list(now) == list(DEFAULT.names)
    assert_same_bits(np.array([list(now.values())]),
                     np.array([[eng.values[n] for n in DEFAULT.names]]), DEFAULT.names)


# -- random streams --------------------------------------------------------------------------------

# Every kind; windowed kinds at several windows, tiny ones included so windows often empty;
# two names for one kind and window, and two windows of one kind within a family.
WINDOWS = {"tiny": 0.002, "short": 0.05, "mid": 0.4, "1s": 1.0, "5s": 5.0}
BASIC = {k: info for k, info in KINDS.items() if not info.derived and not info.book}  # the book writes its own
MANY = metric_set({
    **{k: (k, None) for k, info in BASIC.items() if not info.windowed},
    **{f"{k}_{w}": (k, s) for i, (k, info) in enumerate(BASIC.items()) if info.windowed
       for j, (w, s) in enumerate(WINDOWS.items()) if w in ("tiny", "1s") or (i + j) % 2},
    # derived kinds: of a windowed, an instantaneous (NaN in gaps, inf before data) and a
    # derived metric; sample periods from tiny to longer than the windows
    "spread_median_2s": ("rolling_quantile", 2.0, {"of": "spread_bps", "quantile": 0.5,
                                                    "sample_s": 0.05, "min_history_s": 0.2}),
    "rate_p75_3s": ("rolling_quantile", 3.0, {"of": "quote_rate_1s", "quantile": 0.75,
                                               "sample_s": 0.3}),
    "age_max_tiny": ("rolling_quantile", 0.01, {"of": "quote_age", "quantile": 1.0,
                                                 "sample_s": 0.001}),
    "vol_ewma": ("ewma", None, {"of": "realized_vol_1s", "half_life_s": 2.0, "sample_s": 0.1,
                                "min_history_s": 0.5}),
    "median_ewma": ("ewma", None, {"of": "spread_median_2s", "half_life_s": 0.3,
                                   "sample_s": 2.5}),
    "mid_again": ("mid", None),
    "mid_move_1s_again": ("mid_move", 1.0),
    "spread_to_median_1s_again": ("spread_to_median", 1.0),
    "realized_vol_5s": ("realized_vol", 5.0),
    "buy_ratio_5s": ("buy_ratio", 5.0),
})
# Only a few kinds, in an odd order (families absent, one family with one kind).
FEW = metric_set({"spread_to_median_2s": ("spread_to_median", 2.0), "trade_age": ("trade_age", None),
                  "age_p10_1s": ("rolling_quantile", 1.0, {"of": "trade_age", "quantile": 0.1,
                                                           "sample_s": 0.2}),
                  "mid_move_tiny": ("mid_move", 0.001), "crossed_1s": ("crossed_count", 1.0)})

dt = st.one_of(
    st.just(0),                                          # equal stamps
    st.integers(1, 3).map(lambda x: x * MS),             # inside the tiny windows
    st.integers(1, 400).map(lambda x: x * MS),
    st.integers(1, 7).map(lambda x: x * S),              # longer than most windows
    st.integers(-600, -1).map(lambda x: x * MS),         # late
)
price = st.one_of(st.integers(-8, 8).map(lambda k: 100.0 + 0.5 * k),
                  st.sampled_from([100.0 + 1e-9, 0.001, 1e6, 1e150]))
size = st.sampled_from([0.0, 0.25, 1.0, 3.5, 1e-300])
bad = st.sampled_from([0.0, -1.0, -0.0, math.nan, math.inf, -math.inf])
quote = st.builds(lambda b, s, bq, aq: ("q", b, b + s, bq, aq), price,
                  st.sampled_from([-1.0, -0.5, 0.0, 0.5, 0.5, 0.5, 1.0, 3.0]), size, size)
bad_quote = st.one_of(
    st.builds(lambda b, a: ("q", b, a, 1.0, 1.0), bad, price),
    st.builds(lambda b, a: ("q", b, a, 1.0, 1.0), price, bad),
    st.builds(lambda b, q: ("q", b, b + 0.5, q, 1.0), price, bad),
    st.builds(lambda b, q: ("q", b, b + 0.5, 1.0, q), price, bad),
)
trade = st.builds(lambda p, q, m: ("t", p, q, m), price,
                  st.sampled_from([0.001, 0.1, 1.0, 2.0, 1e-300]), st.booleans())
bad_trade = st.one_of(st.builds(lambda p, m: ("t", p, 1.0, m), bad, st.booleans()),
                      st.builds(lambda q, m: ("t", 100.0, q, m), bad, st.booleans()))
feed = st.builds(lambda k, s: ("f", k, s),
                 st.sampled_from(["disconnect", "gap", "stall", "reconnect", "connect",
                                  "malformed", "end", "rollover"]), st.sampled_from(["", "X", "OTHER"]))
step = st.tuples(dt, st.one_of(quote, quote, quote, quote, trade, trade, st.just(("k",)), feed,
                               bad_quote, bad_trade))


def check_stream(ms, events: list, sizes) -> None:
    want, eng = reference_rows(ms, events, "X")
    # The caller passes only this symbol's feed events; SymbolMetrics ignores the others.
    keep = [i for i, ev in enumerate(events) if not (type(ev) is FeedEvent and ev.symbol == "OTHER")]
    kept = [events[i] for i in keep]
    kernel = MetricKernel(ms)
    got = run_blocks(kernel, columns(kept), sizes)
    assert_same_bits(got, want[keep], ms.names, kept)
    assert_same_counters(kernel, eng)
    if kept:
        now = kernel.values_now()
        assert_same_bits(np.array([[now[n] for n in ms.names]]), want[keep][-1:], ms.names)


blocks = st.lists(st.integers(0, 60), max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=150), blocks)
def test_random_streams_match_symbol_metrics_bit_for_bit(steps, sizes):
    check_stream(MANY, build_events(steps), sizes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2).map(lambda x: x * MS), st.one_of(quote, trade)),
                min_size=100, max_size=600), blocks)
def test_dense_bursts_outgrowing_the_initial_rings_match_bit_for_bit(steps, sizes):
    check_stream(MANY, build_events(steps), sizes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=150), blocks)
def test_metric_set_with_few_kinds_matches_bit_for_bit(steps, sizes):
    check_stream(FEW, build_events(steps), sizes)


def test_empty_block_and_values_before_any_event():
    kernel = MetricKernel(MANY)
    want = SymbolMetrics(MANY).values
    empty = columns([])
    assert kernel.run(*empty).shape == (0, len(MANY))
    now = kernel.values_now()
    assert_same_bits(np.array([[now[n] for n in MANY.names]]),
                     np.array([[want[n] for n in MANY.names]]), MANY.names)


# -- bounded memory --------------------------------------------------------------------------------

def test_rings_stay_bounded_by_the_window_contents_on_a_long_stream():
    """A quote and a trade every ms for 200 s: each 1 s window holds about 1000 entries, so no
    ring may grow past 2048 however long the stream, and the capacities stop changing once
    the windows are full."""
    ms = metric_set({"quote_rate": ("quote_rate", 1.0), "trade_rate": ("trade_rate", 1.0),
                     "mid_move": ("mid_move", 1.0), "spread_to_median": ("spread_to_median", 1.0),
                     "vol_tiny": ("realized_vol", 0.01)})
    kernel = MetricKernel(ms)
    n = 200_000
    rng = np.random.default_rng(7)

    def block(t0: int) -> tuple:
        ts = t0 + np.arange(n, dtype=np.int64) * (MS // 2)
        kind = np.where(np.arange(n) % 2 == 0, QUOTE, TRADE).astype(np.int8)
        bid = 100.0 + np.round(rng.normal(0, 1, n).cumsum(), 1) * 0.01 + 1000.0
        ask = bid + rng.choice([0.01, 0.02, 0.05], n)
        one = np.ones(n)
        return kind, ts, bid, one, ask, one, bid, one, rng.random(n) < 0.5

    kernel.run(*block(T0))
    first = kernel.capacities()
    kernel.run(*block(T0 + 100 * S))
    assert kernel.capacities() == first
    bound = 2 * 1024  # next power of two above the ~1002 entries a 1 s window holds
    caps = kernel.capacities()
    assert max(max(c) for c in caps.values()) <= bound, caps
    assert caps["quote"][1] == INITIAL_CAPACITY  # the 10 ms window holds about 11
    held = kernel.buffered()
    assert max(max(c) for c in held.values()) <= 1002, held
    assert held["quote"][0] >= 990 and held["trade"][0] >= 990 and held["median"][0] >= 990


def test_long_drifting_stream_through_small_windows_matches_bit_for_bit():
    """Spreads and mids on random walks through small windows: values leave the window from
    deep inside the median's heaps, so full heaps get compacted again and again."""
    rng = np.random.default_rng(11)
    n = 40_000
    ts = T0 + np.cumsum(rng.choice([0, 1, 2, 5, 40], n, p=[0.1, 0.5, 0.2, 0.15, 0.05]) * MS)
    mid = 100.0 + np.round(rng.normal(0, 1, n).cumsum()) * 0.01
    spread = 0.01 * (1 + np.abs(np.round(rng.normal(0, 1, n).cumsum() * 0.3)))
    events: list = []
    for i in range(n):
        r = rng.random()
        t = int(ts[i])
        if r < 0.8:
            events.append(Quote(t, "X", float(mid[i] - spread[i] / 2), 1.0,
                                float(mid[i] + spread[i] / 2), 2.0, i))
        elif r < 0.95:
            events.append(Trade(t, "X", float(mid[i]), 0.5, bool(r < 0.9), i, 0, 0))
        elif r < 0.997:
            events.append(Tick(t + MS // 2))
        else:
            events.append(FeedEvent(t, "gap"))
    ms = metric_set({"s2m_30ms": ("spread_to_median", 0.03), "s2m_200ms": ("spread_to_median", 0.2),
                     "move_30ms": ("mid_move", 0.03), "vol_50ms": ("realized_vol", 0.05),
                     "buy_20ms": ("buy_ratio", 0.02)})
    want, eng = reference_rows(ms, events, "X")
    kernel = MetricKernel(ms)
    got = run_blocks(kernel, columns(events), [5000, 1, 12345])
    assert_same_bits(got, want, ms.names, events)
    assert_same_counters(kernel, eng)
