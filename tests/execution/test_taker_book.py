"""Takers against the local L2 book: levels walked best first, our consumption remembered per
level until the book shows it replenished, nothing judged on a book out of sync, and every fill
naming its model. A hypothesis property checks the walk against a brute-force reference."""

from __future__ import annotations

from exec_helpers import MS, SYM, engine, intent, kinds, quote
from hypothesis import example, given, settings
from hypothesis import strategies as st

from framework.market.book_feed import SymbolBook
from framework.market.depth import DepthSnapshot, DepthUpdate


def diff(ts: int, first: int, last: int, bids=(), asks=()) -> DepthUpdate:
    return DepthUpdate(ts, SYM, first, last, -1, ts // MS, 0, tuple(bids), tuple(asks))


def booked(asks, bids=((99.9, 5.0),), rebuild: bool = True, taker: dict | None = None):
    eng, recs = engine(taker={"impact": "walk", "walk_step_bps": 10, "walk_max_levels": 10, **(taker or {})})
    sb = SymbolBook(SYM, rebuild_from_diffs=rebuild)
    eng.attach_book(sb)
    sb.apply(DepthSnapshot(1, 100, tuple(bids), tuple(asks), SYM), 1)
    eng.on_quote(quote(2, bids[0][0], bids[0][1], asks[0][0], asks[0][1]))
    return eng, recs, sb


def depth(eng, sb, d: DepthUpdate) -> None:
    """What the pipeline does with a depth event."""
    eng.before_depth(d.recv_ns)
    sb.apply(d, d.recv_ns)
    eng.after_depth()


def fills(recs) -> list[tuple[float, float]]:
    return [(f["price"], round(f["qty"], 9)) for f in kinds(recs, "fill")]


def test_a_taker_walks_the_levels_and_our_consumption_lasts_until_replenished():
    eng, recs, sb = booked(asks=((100.0, 1.0), (100.1, 2.0), (100.2, 5.0)))
    eng.submit(intent("buy", 150.0), 10 * MS)  # 1.5 at the decision mid 99.95 -> 1.5008
    eng.on_tick(30 * MS)
    first = fills(recs)
    assert [p for p, _ in first] == [100.0, 100.1]
    assert all(f["model"] == "book" and f["liquidity"] == "taker" for f in kinds(recs, "fill"))
    # A second buy before any diff: 100.0 is used up, 100.1 has what the first left.
    eng.submit(intent("buy", 150.0), 40 * MS)
    eng.on_tick(60 * MS)
    second = fills(recs)[len(first):]
    assert second[0][0] == 100.1 and abs(second[0][1] - (2.0 - first[1][1])) < 1e-9
    # The book shows 100.0 thinner (others traded): still nothing there for us. 100.1 shows
    # more than when we took from it: replenished, all of it is ours to take again.
    depth(eng, sb, diff(70 * MS, 101, 101, asks=[(100.0, 0.4), (100.1, 3.0)]))
    n = len(fills(recs))
    eng.submit(intent("buy", 150.0), 80 * MS)
    eng.on_tick(100 * MS)
    third = fills(recs)[n:]
    assert third[0][0] == 100.1 and third[0][1] > 1.4


def test_impact_partial_takes_the_best_level_only():
    eng, recs, _ = booked(asks=((100.0, 1.0), (100.1, 2.0)), taker={"impact": "partial"})
    eng.submit(intent("buy", 150.0), 10 * MS)
    eng.on_tick(30 * MS)
    assert fills(recs) == [(100.0, 1.0)]
    assert kinds(recs, "cancel")[-1]["reason"] == "ioc_remainder"


def test_no_fill_is_judged_on_a_book_out_of_sync():
    eng, recs, sb = booked(asks=((100.0, 1.0),), rebuild=False)
    depth(eng, sb, diff(5 * MS, 101, 101, asks=[(100.0, 2.0)]))
    depth(eng, sb, diff(6 * MS, 105, 106, asks=[(100.0, 3.0)]))  # 102..104 lost: a gap
    assert not sb.in_sync and sb.resyncing
    eng.submit(intent("buy", 50.0), 10 * MS)
    eng.on_tick(30 * MS)
    assert fills(recs) == []
    assert kinds(recs, "cancel")[-1]["reason"] == "book_not_in_sync"


def test_without_a_book_the_top_of_book_model_judges_and_says_so():
    eng, recs = engine()
    eng.on_quote(quote(1, 99.9, 5.0, 100.0, 1.0))
    eng.submit(intent("buy", 50.0), 10 * MS)
    eng.on_tick(30 * MS)
    assert [f["model"] for f in kinds(recs, "fill")] == ["top"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.floats(0.001, 3.0)), min_size=1, max_size=12, unique_by=lambda x: x[0]),
       st.lists(st.floats(10.0, 400.0), min_size=1, max_size=4))
@example(levels=[(1, 1.5267721751454058), (2, 2.5327666414836645)], notionals=[196.0, 210.0, 10.0])  # a level
# taken to the last unit by two orders: what our sums leave of it is rounding, not quantity
def test_walk_matches_a_brute_force_reference(levels, notionals):
    asks = sorted((round(100.0 + 0.1 * k, 1), q) for k, q in levels)
    eng, recs, _ = booked(asks=tuple(asks), taker={"walk_step_bps": 1, "walk_max_levels": 30})
    mid = (99.9 + asks[0][0]) / 2
    left = dict(asks)
    want = []
    t = 10 * MS
    limit = asks[0][0] * (1 + 30 * 1e-4) + 1e-9  # the stylised walk's furthest price
    for notional in notionals:  # successive buys with no diff between: consumption accumulates
        eng.submit(intent("buy", notional), t)
        eng.on_tick(t + 20 * MS)
        qty = notional / mid
        for p, _ in asks:
            if qty <= 1e-12 * (notional / mid) or p > limit:
                break
            take = min(qty, left[p])
            if take > 0:
                want.append((p, take))
                left[p] -= take
                qty -= take
        t += 30 * MS
    got = [(f["price"], f["qty"]) for f in kinds(recs, "fill")]
    assert [p for p, _ in got] == [p for p, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= 1e-9 * max(1.0, b)
