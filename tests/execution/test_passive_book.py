"""Passive orders with an L2 book attached: the queue models read the level at placement from
the book (behind the touch too), depth changes at a resting price drive them, and no passive
fill is judged while the book is out of sync."""

from __future__ import annotations

from exec_helpers import MS, SYM, engine, intent, kinds, quote, trade

from framework.market.book_feed import SymbolBook
from framework.market.depth import DepthSnapshot, DepthUpdate


def booked(model: str, rebuild: bool = True):
    eng, recs = engine(tick_size=0.1, passive={"ttl_s": 10, "queue": {"model": model}})
    sb = SymbolBook(SYM, rebuild_from_diffs=rebuild)
    eng.attach_book(sb)
    sb.apply(DepthSnapshot(1, 100, ((100.0, 5.0), (99.9, 3.0)), ((100.1, 2.0),), SYM), 1)
    eng.on_quote(quote(2, 100.0, 5.0, 100.1, 2.0))
    return eng, recs, sb


def depth(eng, sb, ts: int, first: int, last: int, bids=()) -> None:
    eng.before_depth(ts)
    sb.apply(DepthUpdate(ts, SYM, first, last, -1, ts // MS, 0, tuple(bids), ()), ts)
    eng.after_depth()


def place_behind(eng) -> None:
    eng.submit(intent("buy", 100.0, style="passive", limit_offset_ticks=1), 10 * MS)  # 99.9
    eng.on_tick(30 * MS)


def test_the_queue_ahead_behind_the_touch_comes_from_the_book():
    eng, recs, _ = booked("conservative")
    place_behind(eng)
    ack = kinds(recs, "ack")[-1]
    assert ack["placement"] == "behind" and ack["queue_ahead"] == 3.0


def test_a_decrement_of_our_level_moves_a_probabilistic_model_but_not_the_conservative_one():
    filled = {}
    for model in ("conservative", "power2"):
        eng, recs, sb = booked(model)
        place_behind(eng)
        depth(eng, sb, 40 * MS, 101, 101, bids=[(99.9, 1.0)])  # 2.0 left 99.9 with no print
        eng.on_trade(trade(50 * MS, 99.9, 1.5, "sell"))
        filled[model] = sum(f["qty"] for f in kinds(recs, "fill"))
    assert filled["conservative"] == 0.0  # 3.0 still ahead: the print does not reach us
    assert abs(filled["power2"] - 0.5) < 1e-9  # all of the drop was ahead of us (nobody behind)


def test_no_passive_fill_while_the_book_is_out_of_sync():
    eng, recs, sb = booked("quote_through", rebuild=False)
    place_behind(eng)
    depth(eng, sb, 40 * MS, 105, 105, bids=[(99.9, 1.0)])  # 101..104 lost: out of sync
    assert not sb.in_sync
    eng.on_trade(trade(50 * MS, 99.8, 5.0, "sell"))  # through our price
    eng.on_quote(quote(60 * MS, 99.7, 1.0, 99.8, 1.0))  # quoted through
    assert kinds(recs, "fill") == []
    depth(eng, sb, 70 * MS, 106, 106)  # still out of sync (no snapshot): nothing judged
    eng.on_trade(trade(80 * MS, 99.8, 5.0, "sell"))
    assert kinds(recs, "fill") == []
