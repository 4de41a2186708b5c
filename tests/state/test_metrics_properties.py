"""Every metric kind against a brute-force reference, after every event of random streams.

Streams mix quotes (crossed and locked books included), trades, ticks and feed events, with
duplicate stamps, bursts, long gaps and out-of-order stamps.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference, build_events, close

from framework.state import KINDS, SymbolMetrics, metric_set

MS = 1_000_000

# Every kind, windowed kinds at two windows, and one kind declared twice with one window.
# Derived kinds sample other metrics (a derived one included) on short cadences.
BASIC = {k: info for k, info in KINDS.items() if not info.derived and not info.book}  # the book writes its own
DERIVED = {
    "spread_median_3s": ("rolling_quantile", 3, {"of": "spread_bps", "quantile": 0.5,
                                                  "sample_s": 0.2, "min_history_s": 0.6}),
    "rate_p90_2s": ("rolling_quantile", 2, {"of": "quote_rate_1s", "quantile": 0.9,
                                             "sample_s": 0.25}),
    "move_min_1s": ("rolling_quantile", 1, {"of": "mid_move_1s", "quantile": 0.0,
                                             "sample_s": 0.1, "min_history_s": 0.3}),
    "vol_ewma": ("ewma", None, {"of": "realized_vol_1s", "half_life_s": 1.5, "sample_s": 0.2,
                                "min_history_s": 1}),
    "age_ewma": ("ewma", None, {"of": "quote_age", "half_life_s": 0.5, "sample_s": 0.3}),
    "median_of_median_4s": ("rolling_quantile", 4, {"of": "spread_median_3s", "quantile": 1.0,
                                                     "sample_s": 0.5}),
}
ALL_KINDS = metric_set({
    **{k: (k, None) for k, info in BASIC.items() if not info.windowed},
    **{f"{k}_1s": (k, 1) for k, info in BASIC.items() if info.windowed},
    **{f"{k}_5s": (k, 5) for k, info in BASIC.items() if info.windowed},
    "mid_move_again_1s": ("mid_move", 1),
    "realized_vol_half_s": ("realized_vol", 0.5),
    **DERIVED,
})

dt = st.one_of(
    st.just(0),                                   # duplicate stamp
    st.integers(1, 50).map(lambda x: x * MS),      # burst
    st.integers(50, 900).map(lambda x: x * MS),    # ordinary spacing
    st.integers(1, 12).map(lambda x: x * 1000 * MS),  # gap longer than the windows
    st.integers(-500, -1).map(lambda x: x * MS),   # out of order
)
price = st.integers(-6, 6).map(lambda k: 100.0 + 0.5 * k)
qty = st.sampled_from([0.0, 0.25, 1.0, 3.5])

quote = st.builds(lambda b, s, bq, aq: ("q", b, b + s, bq, aq), price,
                  st.sampled_from([-0.5, 0.0, 0.5, 0.5, 0.5, 1.0, 2.5]), qty, qty)
bad_quote = st.builds(lambda b, a: ("q", b, a, 1.0, 1.0),
                      st.sampled_from([0.0, -1.0, math.nan, math.inf]), price)
trade = st.builds(lambda p, q, m: ("t", p, q, m), price,
                  st.sampled_from([0.001, 0.1, 1.0, 2.0, 0.0]), st.booleans())
feed = st.builds(lambda k, s: ("f", k, s),
                 st.sampled_from(["disconnect", "gap", "stall", "reconnect", "connect",
                                  "malformed", "end"]), st.sampled_from(["", "X", "OTHER"]))
step = st.tuples(dt, st.one_of(quote, quote, quote, trade, trade, st.just(("k",)), feed,
                               bad_quote))


def run_and_compare(events, ms=ALL_KINDS):
    eng = SymbolMetrics(ms, symbol="X")
    values = eng.values
    ref = Reference(ms, "X")
    kinds = {m.name: m.kind for m in ms}
    for i, ev in enumerate(events):
        eng.on_event(ev)
        ref.apply(ev)
        assert eng.values is values
        expected = ref.values()
        for name, want in expected.items():
            got = values[name]
            assert close(got, want, kinds[name]), (
                f"event {i} {ev!r}: {name} = {got!r}, reference {want!r}")
    assert eng.late_events == ref.late
    return eng


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=120))
def test_every_metric_matches_brute_force_reference_after_every_event(steps):
    run_and_compare(build_events(steps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3).map(lambda x: x * MS), st.one_of(quote, trade)),
                min_size=200, max_size=400))
def test_dense_bursts_with_many_equal_stamps_match_reference(steps):
    run_and_compare(build_events(steps))
