"""The local order book: queries against a brute-force reference, and Binance's sequencing
rules on hand-built frames."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from framework.market.book import AWAITING_SNAPSHOT, PARTIAL, SYNCED, OrderBook
from framework.market.depth import DepthSnapshot, DepthUpdate


def diff(U, u, bids=(), asks=(), pu=-1, sym="BTCUSDT", ns=0) -> DepthUpdate:
    return DepthUpdate(ns, sym, U, u, pu, 0, 0, tuple(bids), tuple(asks))


def snap(L, bids=(), asks=()) -> DepthSnapshot:
    return DepthSnapshot(0, L, tuple(bids), tuple(asks))


# --------------------------------------------------------------------------- reference


class Reference:
    """The book rebuilt from scratch: a dict per side, sorted on every question."""

    def __init__(self, bids=(), asks=()):
        self.bids = {p: q for p, q in bids if q > 0}
        self.asks = {p: q for p, q in asks if q > 0}

    def apply(self, d: DepthUpdate):
        for side, levels in ((self.bids, d.bids), (self.asks, d.asks)):
            for p, q in levels:
                if q > 0:
                    side[p] = q
                else:
                    side.pop(p, None)

    def levels(self, side, n):
        if side == "bid":
            return sorted(self.bids.items(), reverse=True)[:n]
        return sorted(self.asks.items())[:n]

    def walk(self, side, qty):
        levels = self.levels("ask" if side == "buy" else "bid", None)
        got, notional, used = 0.0, 0.0, 0
        for p, q in levels:
            if got >= qty * (1 - 1e-12):  # the book's tolerance for float residue
                break
            take = min(q, qty - got)
            got += take
            notional += take * p
            used += 1
        return got, (notional / got if got else 0.0), used


prices = st.integers(1, 60).map(lambda i: i / 4)  # a coarse grid: levels collide often
qtys = st.one_of(st.just(0.0), st.integers(1, 500).map(lambda i: i / 100))
levels = st.lists(st.tuples(prices, qtys), max_size=8)


@settings(max_examples=200, deadline=None)
@given(start=st.lists(st.tuples(prices, qtys), max_size=20), steps=st.lists(
    st.tuples(levels, levels), min_size=1, max_size=30), walk_qty=st.integers(1, 3000).map(lambda i: i / 100),
    n=st.integers(0, 12), bps=st.integers(1, 5000))
# float residue: 3.02 - 0.7 - 0.23 - 2.09 is not exactly 0; no fourth level for it
@example(start=[(0.25, 0.7)], steps=[([], [(0.5, 0.23), (0.75, 2.1), (1.0, 0.01)])],
         walk_qty=3.02, n=0, bps=1)
def test_book_matches_reference(start, steps, walk_qty, n, bps):
    # Split the grid so the reference book is never crossed: bids below 7.5, asks above.
    def bid_side(lv):
        return [(p, q) for p, q in lv if p < 7.5]

    def ask_side(lv):
        return [(p + 7.5, q) for p, q in lv]

    book = OrderBook("BTCUSDT")
    assert book.apply_snapshot(snap(100, bid_side(start), ask_side(start)))
    ref = Reference(bid_side(start), ask_side(start))
    uid = 100
    for b, a in steps:
        d = diff(uid + 1, uid + 3, bid_side(b), ask_side(a))
        uid += 3
        assert book.apply(d) == "applied"
        ref.apply(d)
        # every query against the reference
        assert book.levels("bid", None) == ref.levels("bid", None)
        assert book.levels("ask", None) == ref.levels("ask", None)
        assert book.levels("bid", n) == ref.levels("bid", n)
        assert book.levels("ask", n) == ref.levels("ask", n)
        rb, ra = ref.levels("bid", 1), ref.levels("ask", 1)
        assert book.best_bid() == (rb[0] if rb else None)
        assert book.best_ask() == (ra[0] if ra else None)
    assert book.in_sync and book.state == SYNCED and book.last_update_id == uid
    for side in ("buy", "sell"):
        w = book.walk(side, walk_qty)
        got, avg, used = ref.walk(side, walk_qty)
        assert w.filled == pytest.approx(got, abs=1e-9)
        assert w.avg_price == pytest.approx(avg, rel=1e-12)
        assert w.levels == used
        assert w.unknown == (got < walk_qty * (1 - 1e-12) or (used > 0 and not (
            (side == "buy" and w.last_price <= book.ask_ceiling)
            or (side == "sell" and w.last_price >= book.bid_floor))))
    mid = book.mid()
    if mid is not None:
        dep = book.depth_within_bps(bps / 10)
        lo, hi = mid * (1 - bps / 1e5), mid * (1 + bps / 1e5)
        assert dep["bid_qty"] == pytest.approx(sum(q for p, q in ref.bids.items() if p >= lo))
        assert dep["ask_qty"] == pytest.approx(sum(q for p, q in ref.asks.items() if p <= hi))
        bq = sum(q for _, q in ref.levels("bid", max(n, 1)))
        aq = sum(q for _, q in ref.levels("ask", max(n, 1)))
        assert book.imbalance(max(n, 1)) == pytest.approx((bq - aq) / (bq + aq))


def test_walk_by_hand():
    book = OrderBook("X")
    book.apply_snapshot(snap(1, [(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0), (102.0, 1.0), (104.0, 5.0)]))
    w = book.walk("buy", 2.5)
    assert (w.filled, w.levels, w.last_price, w.touch, w.mid) == (2.5, 3, 104.0, 101.0, 100.0)
    assert w.avg_price == pytest.approx((101 + 102 + 0.5 * 104) / 2.5)
    assert w.cost_bps == pytest.approx((w.avg_price - 100) / 100 * 1e4)
    assert not w.unknown
    w = book.walk("sell", 5.0)  # more than the book shows
    assert w.filled == 3.0 and w.unknown and w.levels == 2
    assert book.depth_within_bps(150)["bid_qty"] == 1.0  # 98.5 .. 101.5
    assert book.imbalance(1) == 0.0
    assert book.is_known("ask", 103.0) and not book.is_known("ask", 104.5)


# --------------------------------------------------------------------------- sequencing: spot


def test_spot_drops_diffs_before_the_snapshot_and_bridges():
    book = OrderBook("BTCUSDT")
    assert book.apply(diff(1, 5, [(10.0, 1.0)])) == "buffered"
    assert book.apply(diff(6, 8, [(10.0, 2.0)])) == "buffered"
    assert book.state == AWAITING_SNAPSHOT and not book.in_sync
    assert book.apply(diff(9, 12, [(10.0, 3.0)], [(11.0, 1.0)])) == "buffered"
    # snapshot at 10: the diff 9..12 bridges 11 and is replayed; the two older are dropped
    assert book.apply_snapshot(snap(10, [(10.0, 7.0), (9.0, 1.0)], [(11.0, 4.0)]))
    assert book.state == SYNCED and book.last_update_id == 12
    assert book.best_bid() == (10.0, 3.0) and book.best_ask() == (11.0, 1.0)
    assert book.apply(diff(5, 12)) == "dropped"
    assert book.apply(diff(13, 13, [(9.0, 0.0)])) == "applied"
    assert book.levels("bid", None) == [(10.0, 3.0)]
    assert book.counters.gaps == 0 and book.counters.replayed == 1


def test_spot_first_diff_after_snapshot_must_bridge():
    book = OrderBook("BTCUSDT")
    book.apply_snapshot(snap(10, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(3, 10)) == "dropped"  # u <= lastUpdateId
    assert book.apply(diff(12, 14)) == "gap"  # U > lastUpdateId + 1: something was missed
    assert not book.in_sync and book.counters.gaps == 1
    assert "12" in book.last_gap


def test_spot_gap_then_resync_from_a_snapshot_with_buffered_diffs():
    book = OrderBook("BTCUSDT")
    book.apply_snapshot(snap(10, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(11, 12)) == "applied"
    assert book.apply(diff(14, 15, [(1.0, 5.0)])) == "gap"
    assert book.apply(diff(16, 20, [(1.5, 1.0)])) == "buffered"
    assert book.apply(diff(21, 22, [(1.0, 0.0)])) == "buffered"
    # a snapshot older than what the ring holds cannot be bridged: rejected, book unchanged
    assert not book.apply_snapshot(snap(12, [(1.0, 9.0)], [(2.0, 1.0)]))
    assert book.state == AWAITING_SNAPSHOT and book.counters.snapshots_stale == 1
    assert book.apply_snapshot(snap(18, [(1.0, 4.0), (1.5, 1.0)], [(2.0, 1.0)]))
    assert book.state == SYNCED and book.last_update_id == 22
    assert book.levels("bid", None) == [(1.5, 1.0)]
    assert book.counters.resyncs == 1


def test_spot_overlapping_diff_applies():
    book = OrderBook("BTCUSDT")
    book.apply_snapshot(snap(10, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(11, 15)) == "applied"
    assert book.apply(diff(14, 18, [(1.0, 2.0)])) == "applied"  # U <= last + 1 <= u
    assert book.best_bid() == (1.0, 2.0)


# --------------------------------------------------------------------------- sequencing: USD-M


def test_usdm_pu_chain():
    book = OrderBook("BTCUSDT", futures=True)
    book.apply_snapshot(snap(100, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(90, 99, pu=89)) == "dropped"  # u < lastUpdateId
    assert book.apply(diff(95, 104, [(1.0, 2.0)], pu=94)) == "applied"  # U <= L <= u
    # ids jump (USD-M ids are not contiguous); pu is what chains them
    assert book.apply(diff(130, 140, [(1.0, 3.0)], pu=104)) == "applied"
    assert book.apply(diff(150, 160, pu=141)) == "gap"
    assert not book.in_sync and "pu 141" in book.last_gap and "140" in book.last_gap


def test_usdm_first_diff_uses_L_not_L_plus_1():
    book = OrderBook("BTCUSDT", futures=True)
    book.apply_snapshot(snap(100, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(100, 100, [(1.0, 2.0)], pu=99)) == "applied"  # u == L applies
    spot = OrderBook("BTCUSDT")
    spot.apply_snapshot(snap(100, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert spot.apply(diff(100, 100, [(1.0, 2.0)])) == "dropped"  # spot: u <= L is dropped


def test_usdm_first_diff_beyond_the_snapshot_is_a_gap():
    book = OrderBook("BTCUSDT", futures=True)
    book.apply_snapshot(snap(100, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(101, 110, pu=100)) == "gap"  # U > L: the snapshot is older than the stream


# --------------------------------------------------------------------------- rebuild from diffs


def test_partial_book_from_diffs_alone():
    book = OrderBook("BTCUSDT", futures=True, rebuild_from_diffs=True)
    assert book.apply(diff(10, 20, [(1.0, 1.0)], [(2.0, 1.0)], pu=5)) == "rebuilt"
    assert book.state == PARTIAL and book.in_sync and not book.complete
    assert book.apply(diff(21, 30, [(0.5, 1.0)], pu=20)) == "applied"
    assert book.is_known("bid", 0.5) and not book.is_known("bid", 0.75)
    w = book.walk("sell", 1.5)
    assert w.filled == 1.5 and w.unknown  # 0.75 may hold quantity the diffs never reported
    dep = book.depth_within_bps(10_000)
    assert dep["bid_qty"] == 2.0 and not dep["known"]
    # a gap restarts the partial book from the next diff
    assert book.apply(diff(40, 50, [(1.2, 1.0)], pu=35)) == "gap"
    assert book.state == PARTIAL and book.levels("bid", None) == [(1.2, 1.0)]
    assert book.counters.gaps == 1 and book.counters.resyncs == 1 and book.counters.rebuilds == 2
    # a snapshot bridged by the ring of recent diffs makes the book complete
    assert book.apply(diff(51, 60, [(1.1, 1.0)], pu=50)) == "applied"
    assert book.apply_snapshot(snap(55, [(1.2, 1.0), (0.9, 3.0)], [(2.0, 1.0)]))
    assert book.state == SYNCED and book.last_update_id == 60
    assert book.levels("bid", None) == [(1.2, 1.0), (1.1, 1.0), (0.9, 3.0)]


def test_crossed_book_is_out_of_sync():
    book = OrderBook("BTCUSDT")
    book.apply_snapshot(snap(10, [(1.0, 1.0)], [(2.0, 1.0)]))
    assert book.apply(diff(11, 11, [(2.5, 1.0)])) == "gap"
    assert book.counters.crossed == 1 and not book.in_sync


def test_bad_arguments():
    book = OrderBook("X")
    with pytest.raises(ValueError):
        book.levels("middle")
    with pytest.raises(ValueError):
        book.levels("bid", -1)
    with pytest.raises(ValueError):
        book.walk("hold", 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            book.walk("buy", bad)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            book.depth_within_bps(bad)
    assert book.best_bid() is None and book.mid() is None and book.imbalance(5) is None
    assert book.walk("buy", 1.0).unknown
