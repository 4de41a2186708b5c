"""Taker orders: judged at the arrival BBO, limited by displayed size, partial vs walk."""

from exec_helpers import MS, S, engine, intent, kinds, quote
from hypothesis import given, settings
from hypothesis import strategies as st


def test_taker_fills_at_the_arrival_ask_not_the_decision_ask():
    e, recs = engine()  # 10 ms latency
    e.on_quote(quote(0, 100.0, 5.0, 100.1, 5.0))
    e.submit(intent("buy", 100.1), 0, {})
    e.on_quote(quote(5 * MS, 100.2, 5.0, 100.3, 5.0))  # before arrival: this is the arrival BBO
    e.on_quote(quote(20 * MS, 100.4, 5.0, 100.5, 5.0))  # after arrival
    (ack,) = kinds(recs, "ack")
    (fill,) = kinds(recs, "fill")
    assert ack["ts_ns"] == 10 * MS and ack["arrival_ask"] == 100.3
    assert fill["price"] == 100.3 and fill["how"] == "touch" and fill["liquidity"] == "taker"
    assert fill["ts_ns"] == 10 * MS


def test_latency_changes_which_bbo_a_fill_sees():
    prices = {}
    for lat in (10, 50):
        e, recs = engine(latency={"fixed_ms": lat})
        e.on_quote(quote(0, 100.0, 5.0, 100.1, 5.0))
        e.submit(intent("buy", 50), 0, {})
        e.on_quote(quote(30 * MS, 100.4, 5.0, 100.5, 5.0))
        e.on_tick(100 * MS)
        prices[lat] = kinds(recs, "fill")[0]["price"]
    assert prices == {10: 100.1, 50: 100.5}


def test_a_quote_at_the_arrival_instant_counts_as_the_arrival_bbo():
    e, recs = engine()
    e.on_quote(quote(0, 100.0, 5.0, 100.1, 5.0))
    e.submit(intent("sell", 50), 0, {})
    e.on_quote(quote(10 * MS, 99.0, 5.0, 99.1, 5.0))  # exactly at arrival
    e.on_tick(11 * MS)
    assert kinds(recs, "fill")[0]["price"] == 99.0


def test_partial_impact_fills_displayed_size_and_cancels_the_rest():
    e, recs = engine(taker={"impact": "partial"})
    e.on_quote(quote(0, 100.0, 1.0, 100.0 + 0.1, 1.0))
    e.submit(intent("buy", 2.5 * 100.05), 0, {})
    e.on_tick(S)
    fills = kinds(recs, "fill")
    assert [(f["price"], f["qty"]) for f in fills] == [(100.1, 1.0)]
    (c,) = kinds(recs, "cancel")
    assert c["reason"] == "ioc_remainder" and abs(c["remaining_qty"] - 1.5) < 1e-9
    assert abs(e.position - 1.0) < 1e-12


def test_walk_impact_fills_the_rest_at_worse_prices_per_displayed_size():
    e, recs = engine(taker={"impact": "walk", "walk_step_bps": 10, "walk_max_levels": 5})
    e.on_quote(quote(0, 99.9, 1.0, 100.0, 1.0))
    e.submit(intent("buy", 2.5 * 99.95), 0, {})
    e.on_tick(S)
    got = [(f["price"], round(f["qty"], 9), f["how"]) for f in kinds(recs, "fill")]
    # touch 100.0; level k at 100 * (1 + k * 10 bps), rounded up to the tick
    assert got == [(100.0, 1.0, "touch"), (100.1, 1.0, "walk"), (100.2, 0.5, "walk")]
    assert not kinds(recs, "cancel")


def test_walk_sell_goes_down_and_stops_at_max_levels():
    e, recs = engine(taker={"impact": "walk", "walk_step_bps": 10, "walk_max_levels": 1})
    e.on_quote(quote(0, 100.0, 1.0, 100.1, 1.0))
    e.submit(intent("sell", 3 * 100.05), 0, {})
    e.on_tick(S)
    got = [(f["price"], round(f["qty"], 9)) for f in kinds(recs, "fill")]
    assert got == [(100.0, 1.0), (99.9, 1.0)]
    assert kinds(recs, "cancel")[0]["reason"] == "ioc_remainder"


def test_two_takers_on_the_same_quote_share_its_displayed_size():
    e, recs = engine()
    e.on_quote(quote(0, 100.0, 1.0, 100.1, 1.0))
    e.submit(intent("buy", 0.8 * 100.05), 0, {})
    e.submit(intent("buy", 0.8 * 100.05), 0, {})
    e.on_tick(S)
    assert abs(sum(f["qty"] for f in kinds(recs, "fill")) - 1.0) < 1e-9


def test_an_order_without_market_data_is_rejected():
    e, recs = engine()
    oid = e.submit(intent("buy", 100), 0, {})
    (r,) = kinds(recs, "reject")
    assert r["order_id"] == oid and r["reason"] == "no_market_data"


quotes_st = st.lists(
    st.tuples(st.integers(0, 200), st.integers(9000, 11000), st.integers(1, 50),
              st.floats(0.01, 3.0), st.floats(0.01, 3.0)),
    min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(quotes=quotes_st,
       orders=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(["buy", "sell"]),
                                 st.floats(1.0, 1000.0)), min_size=1, max_size=8),
       impact=st.sampled_from(["partial", "walk"]),
       jitter=st.sampled_from(["none", "uniform", "lognormal"]),
       seed=st.integers(0, 10))
def test_a_taker_fill_never_beats_the_arrival_bbo(quotes, orders, impact, jitter, seed):
    e, recs = engine(seed=seed, taker={"impact": impact},
                     latency={"fixed_ms": 5, "jitter": jitter, "jitter_ms": 20})
    events = [("q", ms * MS, quote(ms * MS, b / 100, bq, (b + sp) / 100, aq)) for ms, b, sp, bq, aq in quotes]
    events += [("o", ms * MS, (side, n)) for ms, side, n in orders]
    events.sort(key=lambda x: (x[1], x[0] == "o"))
    for k, ts, x in events:
        if k == "q":
            e.on_quote(x)
        else:
            e.submit(intent(x[0], x[1]), ts, {})
    e.on_tick(10 * S)
    acks = {a["order_id"]: a for a in kinds(recs, "ack")}
    # the arrival BBO is the last quote at or before arrival
    qs = sorted((ms * MS, i, b / 100, (b + sp) / 100) for i, (ms, b, sp, _, _) in enumerate(quotes))
    for f in kinds(recs, "fill"):
        a = acks[f["order_id"]]
        arrival_q = [x for x in qs if x[0] <= a["ts_ns"]][-1]
        assert (a["arrival_bid"], a["arrival_ask"]) == (arrival_q[2], arrival_q[3])
        if f["side"] == "buy":
            assert f["price"] >= a["arrival_ask"]
        else:
            assert f["price"] <= a["arrival_bid"]
        if f["how"] == "touch":
            assert f["price"] == (a["arrival_ask"] if f["side"] == "buy" else a["arrival_bid"])
