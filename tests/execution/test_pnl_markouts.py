"""Fees, position and PnL arithmetic; slippage and markout definitions and horizons."""

from exec_helpers import MS, S, engine, intent, kinds, quote, trade
from hypothesis import given, settings
from hypothesis import strategies as st


def test_round_trip_pnl_and_fees_by_hand():
    e, recs = engine(fees={"maker_bps": 2, "taker_bps": 5})
    e.on_quote(quote(0, 99.0, 10.0, 100.0, 10.0))
    e.submit(intent("buy", 2 * 99.5), 0, {})  # 2 @ 100.0
    e.on_quote(quote(1 * S, 104.0, 10.0, 105.0, 10.0))
    e.submit(intent("sell", 104.5), 1 * S, {})  # 1 @ 104.0
    e.on_tick(2 * S)
    assert abs(e.position - 1.0) < 1e-12 and abs(e.avg_price - 100.0) < 1e-9
    assert abs(e.realized_pnl - 4.0) < 1e-9
    assert abs(e.unrealized_pnl(110.0) - 10.0) < 1e-9
    assert abs(e.fees_paid - (200.0 + 104.0) * 5e-4) < 1e-12
    assert [f["fee_usd"] for f in kinds(recs, "fill")] == [200.0 * 5e-4, 104.0 * 5e-4]
    s = e.summary()
    assert abs(s["net_pnl_usd"] - (4.0 + 1.0 * (104.5 - 100.0) - 0.152)) < 1e-6


def test_flipping_the_position_opens_the_rest_at_the_fill_price():
    e, _ = engine()
    e.on_quote(quote(0, 99.0, 10.0, 100.0, 10.0))
    e.submit(intent("buy", 99.5), 0, {})  # +1 @ 100
    e.on_quote(quote(1 * S, 98.0, 10.0, 99.0, 10.0))
    e.submit(intent("sell", 3 * 98.5), 1 * S, {})  # -3 @ 98
    e.on_tick(2 * S)
    assert abs(e.position + 2.0) < 1e-12 and abs(e.avg_price - 98.0) < 1e-9
    assert abs(e.realized_pnl + 2.0) < 1e-9


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.floats(1.0, 500.0),
                                st.integers(5000, 15000), st.booleans()), min_size=1, max_size=25),
       mark=st.integers(5000, 15000),
       maker=st.floats(-2.0, 10.0), taker=st.floats(0.0, 10.0))
def test_pnl_equals_cash_plus_marked_position_minus_fees(steps, mark, maker, taker):
    """Brute force: PnL is the cash flow of every fill plus the position marked at mid."""
    e, recs = engine(fees={"maker_bps": maker, "taker_bps": taker}, passive={"ttl_s": 0.5})
    ts = 0
    for side, notional, px, passive in steps:
        bid, ask = px / 100, px / 100 + 0.02
        e.on_quote(quote(ts, bid, 1e9, ask, 1e9))
        e.submit(intent(side, notional, "passive" if passive else "take", limit_offset_ticks=-1), ts, {})
        ts += 20 * MS
        e.on_tick(ts)
        if passive:  # a print through the price fills it completely
            e.on_trade(trade(ts, bid - 1 if side == "buy" else ask + 1, 1e9, "sell" if side == "buy" else "buy"))
        ts += S
        e.on_tick(ts)
    fills = kinds(recs, "fill")
    assert len(fills) == len(steps)  # every order fills completely, at one price
    assert {f["liquidity"] for f in fills} == {"maker" if p else "taker" for *_, p in steps}
    cash = sum((-1 if f["side"] == "buy" else 1) * f["price"] * f["qty"] for f in fills)
    pos = sum((1 if f["side"] == "buy" else -1) * f["qty"] for f in fills)
    fees = sum(f["price"] * f["qty"] * (maker if f["liquidity"] == "maker" else taker) / 1e4 for f in fills)
    m = mark / 100
    scale = 1.0 + sum(f["price"] * f["qty"] for f in fills)
    assert abs(e.position - pos) <= 1e-9 * (1 + sum(f["qty"] for f in fills))
    assert abs(e.fees_paid - fees) <= 1e-9 * scale
    assert abs((e.realized_pnl + e.unrealized_pnl(m)) - (cash + pos * m)) <= 1e-7 * scale


def test_slippage_is_positive_for_a_cost_against_decision_and_arrival_mid():
    e, recs = engine()
    e.on_quote(quote(0, 99.9, 10.0, 100.1, 10.0))  # mid 100.0
    e.submit(intent("buy", 100.0), 0, {})
    e.on_quote(quote(5 * MS, 100.1, 10.0, 100.3, 10.0))  # arrival mid 100.2, fill at 100.3
    e.on_tick(40 * S)
    (r,) = kinds(recs, "order_result")
    assert abs(r["slippage_decision_bps"] - 30.0) < 1e-6
    assert abs(r["slippage_arrival_bps"] - (100.3 - 100.2) / 100.2 * 1e4) < 1e-5
    assert r["latency_ms"] == 10.0 and r["time_to_fill_ms"] == 10.0 and r["fill_ratio"] == 1.0


def test_markouts_use_the_last_mid_at_each_horizon_and_stay_unresolved_until_seen():
    e, recs = engine(markout_horizons_s=[1, 5, 30])
    e.on_quote(quote(0, 99.9, 10.0, 100.1, 10.0))
    e.submit(intent("buy", 100.0), 0, {})  # fills at 100.1 at t = 10 ms
    t0 = 10 * MS
    e.on_quote(quote(t0 + 500 * MS, 100.0, 1.0, 100.2, 1.0))
    e.on_quote(quote(t0 + 1 * S, 100.1, 1.0, 100.3, 1.0))  # exactly at +1 s: mid 100.2
    e.on_quote(quote(t0 + 1 * S + 1, 90.0, 1.0, 90.2, 1.0))  # just after: not used for +1 s
    e.on_quote(quote(t0 + 4 * S, 100.5, 1.0, 100.7, 1.0))  # last before +5 s: mid 100.6
    e.on_tick(t0 + 6 * S)
    s = e.summary()
    mk = s["all"]["markout_bps"]
    assert abs(mk["1s"] - (100.2 - 100.1) / 100.1 * 1e4) < 1e-5
    assert abs(mk["5s"] - (100.6 - 100.1) / 100.1 * 1e4) < 1e-5
    assert mk["30s"] is None and s["all"]["markout_unresolved_fills"]["30s"] == 1
    assert not kinds(recs, "order_result")  # waits for its last horizon
    e.close(t0 + 7 * S)
    (r,) = kinds(recs, "order_result")
    assert r["markout_bps"]["30s"] is None and r["markout_unresolved_fills"] == {"1s": 0, "5s": 0, "30s": 1}


def test_sell_markout_is_positive_when_the_mid_falls():
    e, recs = engine(markout_horizons_s=[1])
    e.on_quote(quote(0, 100.0, 10.0, 100.2, 10.0))
    e.submit(intent("sell", 100.0), 0, {})  # fills at 100.0
    e.on_quote(quote(500 * MS, 98.9, 1.0, 99.1, 1.0))
    e.on_tick(2 * S)
    (r,) = kinds(recs, "order_result")
    assert abs(r["markout_bps"]["1s"] - 100.0) < 1e-6


def test_metrics_are_aggregated_by_each_label_and_style():
    e, recs = engine(markout_horizons_s=[1])
    e.on_quote(quote(0, 99.9, 10.0, 100.1, 10.0))
    e.submit(intent("buy", 100.0), 0, {"regime": "NORMAL", "health": "GREEN"})
    e.submit(intent("sell", 100.0, "passive"), 0, {"regime": "FAST", "health": "GREEN"})
    e.on_tick(40 * S)  # the passive order expires unfilled (ttl 30 s)
    s = e.summary()
    by = s["by_label"]
    assert by["regime"]["NORMAL"]["fill_ratio"] == 1.0 and by["regime"]["FAST"]["fill_ratio"] == 0.0
    assert by["health"]["GREEN"]["orders"] == 2 and abs(by["health"]["GREEN"]["fill_ratio"] - 0.5) < 1e-6
    assert set(by["style"]) == {"take", "passive"}
    assert s["all"]["orders"] == 2 and s["cancels"] == {"ttl": 1}
