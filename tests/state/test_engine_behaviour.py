"""Edge cases, timestamp and gap policies, and bounded memory of the state engine."""

from __future__ import annotations

import math

from framework.market.events import FeedEvent, Quote, Tick, Trade
from framework.state import (
    KINDS,
    MultiSymbolMetrics,
    SymbolMetrics,
    default_metrics_path,
    load_metric_set,
    metric_set,
)

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S
DEFAULT = load_metric_set(default_metrics_path())


def q(ts, bid=100.0, ask=100.5, bq=1.0, aq=1.0, sym="X"):
    return Quote(ts, sym, bid, bq, ask, aq, 0)


def t(ts, price=100.0, qty=1.0, buyer_is_maker=False, sym="X"):
    return Trade(ts, sym, price, qty, buyer_is_maker, 0, 0, 0)


def test_values_before_any_event_are_the_documented_empty_values():
    eng = SymbolMetrics(DEFAULT)
    for m in DEFAULT:
        want = KINDS[m.kind].empty
        got = eng.values[m.name]
        assert (math.isnan(got) and math.isnan(want)) or got == want, m.name
    assert eng.values["quote_age_ms"] == math.inf and eng.values["trade_age_ms"] == math.inf
    assert eng.values["quote_rate_hz_10s"] == 0.0 and math.isnan(eng.values["mid"])


def test_first_quote_sets_book_metrics_and_leaves_trade_metrics_empty():
    eng = SymbolMetrics(DEFAULT)
    eng.on_quote(q(T0, 100.0, 100.5, 3.0, 1.0))
    v = eng.values
    assert v["mid"] == 100.25 and v["spread"] == 0.5
    assert v["spread_bps"] == 0.5 / 100.25 * 1e4
    assert v["microprice"] == (100.0 * 1.0 + 100.5 * 3.0) / 4.0
    assert v["imbalance"] == 0.5
    assert v["quote_age_ms"] == 0.0 and v["trade_age_ms"] == math.inf
    assert v["quote_rate_hz_10s"] == 0.1
    assert v["realized_vol_bps_10s"] == 0.0  # no return yet
    assert v["mid_move_bps_1s"] == 0.0 and v["spread_to_median_60s"] == 1.0
    assert math.isnan(v["buy_ratio_10s"]) and v["trade_rate_hz_10s"] == 0.0


def test_values_dict_is_the_same_object_for_the_engine_life():
    eng = SymbolMetrics(DEFAULT)
    d = eng.values
    for ev in (q(T0), t(T0 + MS), Tick(T0 + 5 * S), FeedEvent(T0 + 6 * S, "disconnect"),
               q(T0 + 7 * S)):
        eng.on_event(ev)
        assert eng.values is d
    assert set(d) == set(DEFAULT.names)


def test_quiet_market_decays_rates_to_zero_and_ages_grow_on_ticks():
    eng = SymbolMetrics(DEFAULT)
    eng.on_quote(q(T0))
    eng.on_trade(t(T0 + 100 * MS, qty=2.0))
    assert eng.values["trade_rate_hz_10s"] == 0.1
    assert eng.values["volume_base_per_s_10s"] == 0.2
    eng.on_tick(T0 + 100 * MS + 10 * S)  # the trade leaves its 10 s window exactly now
    v = eng.values
    assert v["trade_rate_hz_10s"] == 0.0 and v["volume_base_per_s_10s"] == 0.0
    assert math.isnan(v["buy_ratio_10s"])
    assert v["quote_rate_hz_10s"] == 0.0
    assert v["quote_age_ms"] == 10_100.0 and v["trade_age_ms"] == 10_000.0
    assert v["mid"] == 100.25  # no gap reported: the last quote is still the book
    assert v["mid_move_bps_10s"] == 0.0  # the mid in force over the window did not move


def test_out_of_order_events_are_applied_at_the_latest_time_and_counted():
    eng = SymbolMetrics(DEFAULT)
    eng.on_quote(q(T0 + 5 * S))
    eng.on_trade(t(T0 + 1 * S))  # late by 4 s
    assert eng.late_events == 1
    assert eng.now_ns == T0 + 5 * S
    assert eng.values["trade_age_ms"] == 0.0  # stamped at the clamped time
    eng.on_tick(T0)  # a tick in the past changes nothing
    assert eng.now_ns == T0 + 5 * S and eng.late_events == 1
    eng.on_quote(q(T0 + 5 * S, 100.5, 101.0))  # equal stamps are normal, not late
    assert eng.late_events == 1


def test_feed_gap_makes_the_book_unknown_while_ages_keep_growing():
    eng = SymbolMetrics(DEFAULT, symbol="X")
    eng.on_quote(q(T0))
    eng.on_trade(t(T0))
    eng.on_quote(q(T0 + 100 * MS, 100.5, 101.0))
    eng.on_feed(FeedEvent(T0 + 200 * MS, "disconnect", "X"))
    v = eng.values
    for name in ("mid", "spread", "spread_bps", "microprice", "imbalance",
                 "spread_to_median_60s"):
        assert math.isnan(v[name]), name
    assert v["quote_age_ms"] == 100.0 and v["trade_age_ms"] == 200.0
    assert eng.gaps == 1
    eng.on_tick(T0 + 3 * S)
    assert v["quote_age_ms"] == 2_900.0 and v["trade_age_ms"] == 3_000.0
    assert math.isnan(v["mid_move_bps_1s"])  # nothing was in force during the last second
    assert v["mid_move_bps_10s"] > 0.0  # the moves before the gap are still in the window
    # After the gap, the first quote starts a new path: no return across the gap.
    vol_before = v["realized_vol_bps_10s"]
    eng.on_quote(q(T0 + 3 * S, 110.0, 110.5))
    assert v["realized_vol_bps_10s"] == vol_before
    assert v["mid"] == 110.25 and v["quote_age_ms"] == 0.0


def test_feed_events_for_another_symbol_are_ignored_and_connection_wide_ones_apply():
    eng = SymbolMetrics(DEFAULT, symbol="X")
    eng.on_quote(q(T0))
    eng.on_feed(FeedEvent(T0 + MS, "gap", "OTHER"))
    assert eng.values["mid"] == 100.25 and eng.gaps == 0
    eng.on_feed(FeedEvent(T0 + 2 * MS, "stall", ""))
    assert math.isnan(eng.values["mid"]) and eng.gaps == 1
    eng.on_feed(FeedEvent(T0 + 3 * MS, "malformed", ""))
    assert eng.gaps == 1


def test_crossed_and_locked_books_are_counted_in_the_window():
    eng = SymbolMetrics(DEFAULT)
    eng.on_quote(q(T0, 100.0, 100.0))  # locked
    eng.on_quote(q(T0 + S, 100.5, 100.0))  # crossed
    eng.on_quote(q(T0 + 2 * S, 100.0, 100.5))
    assert eng.values["crossed_count_60s"] == 2.0
    assert eng.values["spread"] == 0.5
    eng.on_tick(T0 + 60 * S)
    assert eng.values["crossed_count_60s"] == 1.0
    eng.on_tick(T0 + 61 * S)
    assert eng.values["crossed_count_60s"] == 0.0


def test_invalid_prices_are_ignored_but_advance_the_clock():
    eng = SymbolMetrics(DEFAULT)
    eng.on_quote(q(T0))
    eng.on_quote(q(T0 + S, 0.0, 100.0))
    eng.on_trade(t(T0 + 2 * S, price=math.nan))
    assert eng.invalid_events == 2
    assert eng.values["mid"] == 100.25 and eng.values["quote_age_ms"] == 2_000.0
    assert eng.values["trade_rate_hz_10s"] == 0.0


def test_multi_symbol_engine_keeps_symbols_apart_and_broadcasts_ticks():
    mm = MultiSymbolMetrics(DEFAULT, symbols=["X"])
    vx = mm.values("X")
    mm.on_event(q(T0, sym="X"))
    mm.on_event(q(T0 + MS, 200.0, 201.0, sym="Y"))
    assert vx["mid"] == 100.25 and mm.values("Y")["mid"] == 200.5
    mm.on_event(Tick(T0 + S))
    assert vx["quote_age_ms"] == 1000.0 and mm.values("Y")["quote_age_ms"] == 999.0
    mm.on_event(FeedEvent(T0 + 2 * S, "disconnect", ""))
    assert math.isnan(vx["mid"]) and math.isnan(mm.values("Y")["mid"])
    assert mm.for_symbol("X").values is vx


def test_window_memory_stays_bounded_over_a_long_stream():
    eng = SymbolMetrics(DEFAULT)
    # 2 hours at 50 events/s: quotes and trades alternate, mid walks in a band.
    step = 20 * MS
    longest = max(m.window_ns for m in DEFAULT if m.window_s)
    per_window = longest // step + 2
    stores = sum(1 for _ in eng._all)
    sizes = []
    for i in range(360_000):
        ts = T0 + i * step
        if i % 3:
            k = (i // 7) % 11
            eng.on_quote(q(ts, 100.0 + 0.5 * k, 100.5 + 0.5 * k + 0.5 * (i % 2)))
        else:
            eng.on_trade(t(ts, qty=0.1 + (i % 5)))
        if i % 1000 == 0:
            sizes.append(eng.buffered())
    assert max(sizes) <= 2 * stores * per_window
    steady = sizes[len(sizes) // 4:]
    assert max(steady) - min(steady) <= 0.05 * max(steady)  # flat, not growing
    # A long quiet stretch empties every window down to the book in force.
    eng.on_tick(T0 + 360_000 * step + 3600 * S)
    assert eng.buffered() <= stores


# -- derived kinds: baselines sampled on an event-time cadence ---------------------------------

BASELINES = metric_set({
    "spread_bps": ("spread_bps", None),
    "spread_median": ("rolling_quantile", 600.0, {"of": "spread_bps", "quantile": 0.5,
                                                   "sample_s": 1.0, "min_history_s": 60}),
    "spread_ewma": ("ewma", None, {"of": "spread_bps", "half_life_s": 10.0, "min_history_s": 5}),
})


def test_a_baseline_is_nan_before_its_minimum_history_then_follows_the_samples():
    """One quote per 100 ms, spread 0.5 for 90 s then 1.5: the median needs 60 samples (one
    per second), then holds the usual spread; once the wide spread fills more than half of its
    window (now 30 min long, not full) it moves there."""
    eng = SymbolMetrics(BASELINES, "X")
    v = eng.values
    seen_nan_at_59 = None
    for k in range(3000):
        ts = T0 + k * 100 * MS
        eng.on_quote(q(ts, 100.0, 100.5 if k < 900 else 101.5))
        if k == 589:  # 58.9 s: 59 samples
            seen_nan_at_59 = v["spread_median"]
        if k == 600:
            assert v["spread_median"] == (0.5 / 100.25) * 1e4
        if k == 1790:  # samples 0..179: 90 narrow and 90 wide: halfway
            assert v["spread_median"] == 0.5 * ((0.5 / 100.25) * 1e4 + (1.5 / 100.75) * 1e4)
    assert math.isnan(seen_nan_at_59)
    assert v["spread_median"] == (1.5 / 100.75) * 1e4
    assert math.isclose(v["spread_ewma"], (1.5 / 100.75) * 1e4, rel_tol=1e-5)  # 21 half-lives


def test_a_baseline_skips_samples_while_its_source_is_missing():
    """In a feed gap the book is unknown: no sample is taken, so the baseline keeps its history
    (and stays NaN if it had none)."""
    eng = SymbolMetrics(BASELINES, "X")
    eng.on_feed(FeedEvent(T0, "gap", "X"))
    for k in range(1, 100):
        eng.on_tick(T0 + k * S)
    assert math.isnan(eng.values["spread_median"]) and math.isnan(eng.values["spread_ewma"])
    assert eng.buffered() == 0


def test_baseline_memory_is_bounded_by_its_samples_not_the_event_rate():
    ms = metric_set({"quote_rate_hz_1s": ("quote_rate", 1.0),
                     "rate_median": ("rolling_quantile", 60.0, {"of": "quote_rate_hz_1s",
                                                                "quantile": 0.5})})
    eng = SymbolMetrics(ms, "X")
    for k in range(200_000):  # 1000 quotes a second for 200 s
        eng.on_quote(q(T0 + k * MS))
    assert eng.buffered() <= 1002 + 61
    assert eng.values["rate_median"] == 1000.0
