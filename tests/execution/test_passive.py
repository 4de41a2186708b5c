"""Passive orders: post-only, queue position, fills only from prints, TTL, cancels."""

from exec_helpers import MS, S, engine, intent, kinds, quote, trade
from hypothesis import given, settings
from hypothesis import strategies as st

BID, ASK = 100.0, 100.1


def resting_buy(qty=1.0, bid_qty=3.0, offset_ticks=0, **sections):
    """An engine with one passive buy resting at 100.0 - offset (arrived at 10 ms)."""
    e, recs = engine(**sections)
    e.on_quote(quote(0, BID, bid_qty, ASK, 2.0))
    e.submit(intent("buy", qty * (BID + ASK) / 2, "passive", limit_offset_ticks=offset_ticks), 0,
             {"regime": "NORMAL"})
    e.on_tick(11 * MS)
    return e, recs


def test_passive_buy_joining_the_bid_has_the_displayed_size_ahead():
    e, recs = resting_buy(bid_qty=3.0)
    (ack,) = kinds(recs, "ack")
    assert ack["placement"] == "join" and ack["queue_ahead"] == 3.0
    assert kinds(recs, "order")[0]["limit_price"] == 100.0


def test_passive_fills_only_after_the_queue_ahead_traded():
    e, recs = resting_buy(qty=1.0, bid_qty=3.0)
    e.on_trade(trade(20 * MS, 100.0, 2.0, "sell"))
    e.on_trade(trade(30 * MS, 100.0, 0.5, "buy"))  # aggressor on our side: not against our bid
    e.on_trade(trade(40 * MS, 100.1, 5.0, "sell"))  # above our price: not ours
    assert not kinds(recs, "fill")
    e.on_trade(trade(50 * MS, 100.0, 1.4, "sell"))  # 1.0 left ahead, 0.4 for us
    e.on_trade(trade(60 * MS, 100.0, 1.0, "sell"))
    fills = kinds(recs, "fill")
    assert [round(f["qty"], 9) for f in fills] == [0.4, 0.6]
    assert all(f["how"] == "queue_consumed" and f["liquidity"] == "maker" and f["price"] == 100.0 for f in fills)
    assert fills[0]["queue_at_placement"] == 3.0 and fills[0]["queue_at_fill"] == 1.0
    assert fills[-1]["done"] and e.summary()["fill_plausibility"] == {"plausible": 2, "implausible": 0}


def test_a_print_through_the_price_fills_at_the_order_price():
    e, recs = resting_buy(qty=1.0, bid_qty=50.0)
    e.on_trade(trade(20 * MS, 99.9, 0.3, "sell"))
    (f,) = kinds(recs, "fill")
    assert f["how"] == "trade_through" and f["price"] == 100.0 and abs(f["qty"] - 0.3) < 1e-12
    assert f["queue_at_fill"] == 50.0


def test_improving_the_bid_puts_nothing_ahead():
    e, recs = resting_buy(offset_ticks=-1)  # 100.01 > bid
    ack = kinds(recs, "ack")[0]
    assert ack["placement"] == "improve" and ack["queue_ahead"] == 0.0
    e.on_trade(trade(20 * MS, 100.01, 0.25, "sell"))
    assert abs(kinds(recs, "fill")[0]["qty"] - 0.25) < 1e-12


def test_behind_the_touch_the_queue_is_unknown_until_the_bid_comes_to_it():
    e, recs = resting_buy(offset_ticks=2, bid_qty=3.0)  # 99.98
    assert kinds(recs, "ack")[0]["placement"] == "behind"
    e.on_trade(trade(20 * MS, 99.98, 5.0, "sell"))  # unknown queue: no fill from prints at price
    assert not kinds(recs, "fill")
    e.on_quote(quote(30 * MS, 99.98, 4.0, 99.99, 1.0))  # bid comes down to us: 4.0 ahead
    e.on_trade(trade(40 * MS, 99.98, 4.5, "sell"))
    (f,) = kinds(recs, "fill")
    assert abs(f["qty"] - 0.5) < 1e-9 and f["queue_at_fill"] == 4.0


def test_post_only_buy_that_would_cross_at_arrival_is_rejected():
    e, recs = engine()
    e.on_quote(quote(0, BID, 3.0, ASK, 2.0))
    e.submit(intent("buy", 100, "passive"), 0, {})
    e.on_quote(quote(5 * MS, 99.8, 1.0, 100.0, 1.0))  # ask fell to our price before arrival
    e.on_tick(20 * MS)
    (r,) = kinds(recs, "reject")
    assert r["reason"] == "post_only_would_cross" and r["ts_ns"] == 10 * MS and r["arrival_ask"] == 100.0
    assert not kinds(recs, "fill") and not kinds(recs, "ack")
    assert e.summary()["rejects"] == {"post_only_would_cross": 1}


def test_ttl_expiry_cancels_the_order_at_arrival_plus_ttl():
    e, recs = engine()
    e.on_quote(quote(0, BID, 3.0, ASK, 2.0))
    e.submit(intent("sell", 100, "passive", ttl_s=2.0), 0, {})
    e.on_tick(2 * S)
    assert not kinds(recs, "cancel")
    e.on_tick(2 * S + 10 * MS)  # exactly at expiry: still live
    assert not kinds(recs, "cancel")
    e.on_tick(2 * S + 10 * MS + 1)
    (c,) = kinds(recs, "cancel")
    assert c["reason"] == "ttl" and c["ts_ns"] == 2 * S + 10 * MS
    assert e.open_orders == []


def test_a_cancel_takes_effect_one_latency_later_and_fills_can_happen_meanwhile():
    e, recs = resting_buy(qty=1.0, bid_qty=0.0)
    assert e.cancel(kinds(recs, "order")[0]["order_id"], 100 * MS, "strategy")
    e.on_trade(trade(105 * MS, 100.0, 0.2, "sell"))  # before the cancel reaches the exchange
    e.on_trade(trade(111 * MS, 100.0, 0.2, "sell"))  # after
    assert len(kinds(recs, "fill")) == 1
    (c,) = kinds(recs, "cancel")
    assert c["ts_ns"] == 110 * MS and c["reason"] == "strategy" and c["requested_ts_ns"] == 100 * MS


def test_cancel_all_before_arrival_cancels_at_arrival_without_fills():
    e, recs = engine()
    e.on_quote(quote(0, BID, 0.0, ASK, 2.0))
    e.submit(intent("buy", 100, "passive"), 0, {})
    e.submit(intent("sell", 100, "passive"), 0, {})
    assert e.cancel_all(0, "kill_switch") == 2
    e.on_trade(trade(10 * MS, 100.0, 5.0, "sell"))
    e.on_tick(30 * MS)
    assert not kinds(recs, "fill")
    assert [c["reason"] for c in kinds(recs, "cancel")] == ["kill_switch", "kill_switch"]


def test_cancellations_ahead_are_modelled_only_when_configured_and_flagged_implausible():
    results = {}
    for frac in (0.0, 1.0):
        e, recs = resting_buy(qty=1.0, bid_qty=3.0, passive={"cancel_ahead_fraction": frac})
        e.on_quote(quote(20 * MS, BID, 0.5, ASK, 2.0))  # 2.5 left the bid without trading
        e.on_trade(trade(30 * MS, 100.0, 1.0, "sell"))
        results[frac] = (round(sum(f["qty"] for f in kinds(recs, "fill")), 9), e.summary()["fill_plausibility"])
    assert results[0.0] == (0.0, {"plausible": 0, "implausible": 0})
    assert results[1.0] == (0.5, {"plausible": 0, "implausible": 1})


def test_two_own_orders_at_one_price_queue_behind_each_other():
    e, recs = engine()
    e.on_quote(quote(0, BID, 1.0, ASK, 2.0))
    e.submit(intent("buy", 100.05, "passive"), 0, {})
    e.submit(intent("buy", 100.05, "passive"), 1 * MS, {})
    e.on_tick(20 * MS)
    assert [a["queue_ahead"] for a in kinds(recs, "ack")] == [1.0, 2.0]
    e.on_trade(trade(30 * MS, 100.0, 2.5, "sell"))
    fills = kinds(recs, "fill")
    assert [(f["order_id"], round(f["qty"], 9)) for f in fills] == [("BTCUSDT-1", 1.0), ("BTCUSDT-2", 0.5)]


# ------------------------------------------------------------------ property: queue reference

P = 100.0
trades_st = st.lists(
    st.tuples(st.sampled_from([99.99, 100.0, 100.0, 100.0, 100.01]),  # through, at (x3), above
              st.floats(0.001, 2.0), st.sampled_from(["sell", "sell", "buy"]),
              st.one_of(st.none(), st.floats(0.0, 5.0))),  # optional quote before the print
    max_size=40)


def reference_fills(q0: float, qty: float, prints: list[tuple[float, float, str]]) -> list[tuple[str, float]]:
    """Brute force: replay the prints against an explicit FIFO of what is ahead of us."""
    ahead = [q0]  # one block of size q0 (we only ever remove from the front)
    left = qty
    out = []
    for price, size, aggr in prints:
        if aggr != "sell" or left <= 1e-12 * qty:  # the engine snaps float dust to done
            continue
        if price < P:  # the whole level traded away, our order is reached
            ahead = []
            f = min(left, size)
            left -= f
            out.append(("trade_through", f))
        elif price == P:
            remaining = size
            while ahead and remaining > 0:
                take = min(ahead[0], remaining)
                ahead[0] -= take
                remaining -= take
                if ahead[0] <= 0:
                    ahead.pop(0)
            if remaining > 0 and not ahead:
                f = min(left, remaining)
                left -= f
                out.append(("queue_consumed", f))
    return [(h, q) for h, q in out if q > 0]


@settings(max_examples=300, deadline=None)
@given(q0=st.floats(0.0, 5.0), qty=st.floats(0.01, 3.0), seq=trades_st)
def test_a_passive_order_never_fills_before_its_queue_is_consumed(q0, qty, seq):
    e, recs = engine()
    e.on_quote(quote(0, P, q0, 100.01, 1.0))
    e.submit(intent("buy", qty * (P + 100.01) / 2, "passive", ttl_s=1000.0), 0, {})
    e.on_tick(11 * MS)
    qty = kinds(recs, "order")[0]["qty"]
    prints = []
    prints_ts = []
    ts = 20 * MS
    for price, size, aggr, disp in seq:
        if disp is not None:  # the bid stays at our price with any displayed size
            e.on_quote(quote(ts, P, disp, 100.01, 1.0))
            ts += MS
        e.on_trade(trade(ts, price, size, aggr))
        prints.append((price, size, aggr))
        prints_ts.append((ts, price, size, aggr))
        ts += MS
    got = [(f["how"], f["qty"]) for f in kinds(recs, "fill")]
    want = reference_fills(q0, qty, prints)
    assert len(got) == len(want)
    for (h1, q1), (h2, q2) in zip(got, want, strict=True):
        assert h1 == h2 and abs(q1 - q2) <= 1e-9 * max(1.0, q2)
    # and directly: every queue fill is covered by at-price volume beyond the queue ahead
    filled = 0.0
    for f in kinds(recs, "fill"):
        upto = [p for p in prints_ts if p[0] <= f["ts_ns"]]
        through = any(a == "sell" and px < P for _, px, _, a in upto)
        at_vol = sum(sz for _, px, sz, a in upto if a == "sell" and px == P)
        filled += f["qty"]
        if f["how"] == "queue_consumed" and not through:
            assert at_vol >= q0 + filled - 1e-9
    assert e.summary()["fill_plausibility"]["implausible"] == 0


def test_a_quote_crossing_a_resting_order_is_not_a_fill():
    e, recs = resting_buy(qty=1.0, bid_qty=3.0)
    e.on_quote(quote(20 * MS, 99.9, 1.0, 99.95, 1.0))  # the ask is through our bid, no print
    e.on_tick(40 * MS)
    assert not kinds(recs, "fill")


def test_close_cancels_open_orders_and_finalises_every_order():
    e, recs = resting_buy(qty=1.0, bid_qty=0.0)
    e.on_trade(trade(20 * MS, 100.0, 0.4, "sell"))
    e.close(2 * S)  # the fill at 20 ms has its +1 s markout, not +5 s or +30 s
    (c,) = kinds(recs, "cancel")
    assert c["reason"] == "session_end" and abs(c["remaining_qty"] - 0.6) < 1e-9
    (r,) = kinds(recs, "order_result")
    assert r["status"] == "cancelled" and abs(r["fill_ratio"] - 0.4) < 1e-6
    assert r["markout_unresolved_fills"] == {"1s": 0, "5s": 1, "30s": 1}
    s = e.summary()
    assert s["open_orders"] == 0 and s["markouts_pending"] == 0 and e.open_orders == []
    assert s["by_label"]["regime"]["NORMAL"]["orders"] == 1


def test_cancel_of_an_unknown_or_finished_order_is_refused():
    e, recs = resting_buy()
    assert not e.cancel("nope", 0)
    oid = kinds(recs, "order")[0]["order_id"]
    assert e.cancel(oid, 20 * MS) and not e.cancel(oid, 21 * MS)
