"""Replay a recording's depth frames through an :class:`~framework.market.book.OrderBook`.

Gives the book of one symbol at a moment, the sequencing figures (diffs applied, gaps,
resyncs, time in sync) and a check against the recording's own ``bookTicker`` frames: each
time a book ticker arrives while the book is in sync at an update id at least as new as the
ticker's, the book's best bid/ask are compared with it.

A REST snapshot in a recording names no symbol: it is given to the book when depth of only
one symbol has been seen so far, else it is counted as unattributed and not used.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import msgspec

from .book import OrderBook
from .decode import FrameDecoder
from .depth import DepthError, DepthSnapshot, DepthUpdate, decode_depth
from .events import Quote
from .replay import read_frames

MAX_GAPS_KEPT = 20


class TickerCheck(msgspec.Struct):
    """Book vs the recording's book tickers (see the module docstring).

    Two comparisons. *By arrival*: a ticker arriving while the book is in sync at an update id
    at least as new as the ticker's (the book may be newer: the touch may have moved since).
    *By update id*: after each diff applied in sync, at final id ``u``, the book against the
    latest ticker with an id ``<= u`` wherever it arrived; a book ticker is pushed on every
    change of the best price or quantity, so these must agree unless ticker frames are
    missing."""

    tickers: int = 0  # book tickers of the symbol
    compared: int = 0  # book in sync and at least as new as the ticker
    prices_agree: int = 0  # best bid and ask prices equal
    all_agree: int = 0  # prices and quantities equal
    same_id: int = 0  # compared with the book exactly at the ticker's update id
    same_id_all_agree: int = 0
    ticker_ahead: int = 0  # the ticker is newer than the book: not comparable
    out_of_sync: int = 0  # the book was not in sync: not comparable
    by_id_compared: int = 0  # book built from a snapshot
    by_id_prices_agree: int = 0
    by_id_all_agree: int = 0
    by_id_partial: int = 0  # book built from diffs alone: unseen levels may be missing
    by_id_partial_prices_agree: int = 0


class BookReplay(msgspec.Struct):
    symbol: str = ""
    futures: bool = False
    frames: int = 0
    depth_updates: int = 0
    snapshots: int = 0
    snapshots_unattributed: int = 0
    errors: dict[str, int] = msgspec.field(default_factory=dict)  # malformed depth, by reason
    other_symbols: list[str] = msgspec.field(default_factory=list)
    first_ns: int = 0  # first depth frame of the symbol
    last_ns: int = 0  # last frame read
    in_sync_ns: int = 0
    gaps: list[tuple[int, str]] = msgspec.field(default_factory=list)  # (recv_ns, why)
    ticker: TickerCheck = msgspec.field(default_factory=TickerCheck)

    @property
    def in_sync_fraction(self) -> float:
        span = self.last_ns - self.first_ns
        return self.in_sync_ns / span if span > 0 else 0.0


def replay_book(path: str | Path, symbol: str | None = None, *, at_ns: int | None = None,
                rebuild_from_diffs: bool = True, buffer_size: int = 1000,
                ) -> tuple[OrderBook | None, BookReplay]:
    """The book of ``symbol`` (default: the first symbol with depth) after the frames with a
    receive time ``<= at_ns`` (default: all), and the figures of the replay.

    Raises ValueError for a file that is not a recording (as :func:`read_frames`)."""
    want = symbol.upper() if symbol else None
    rep = BookReplay(symbol=want or "")
    quotes = FrameDecoder()
    book: OrderBook | None = None
    pending: DepthSnapshot | None = None  # a snapshot seen before the symbol's first diff
    depth_symbols: set[str] = set()
    prev_ns: int | None = None  # time of the previous depth event of the symbol
    errors = rep.errors
    tk = rep.ticker
    tickers: list[tuple] = []  # (update id, bid, bid qty, ask, ask qty) of the symbol's tickers
    states: list[tuple] = []  # the same after each diff applied in sync
    for ns, raw in read_frames(path):
        if at_ns is not None and ns > at_ns:
            break
        rep.frames += 1
        rep.last_ns = ns
        item = decode_depth(raw, ns)
        if item is None:
            if book is None:
                continue
            ev = quotes.decode(raw, ns)
            if type(ev) is Quote and ev.symbol == book.symbol:
                _check_ticker(book, ev, tk)
                tickers.append((ev.update_id, ev.bid, ev.bid_qty, ev.ask, ev.ask_qty))
            continue
        if type(item) is DepthError:
            if want is None or item.symbol in ("", want):
                errors[item.reason] = errors.get(item.reason, 0) + 1
            continue
        if type(item) is DepthSnapshot:
            rep.snapshots += 1
            ours = want or (book.symbol if book else None)  # None only before any depth
            if item.symbol:
                depth_symbols.add(item.symbol)
                if ours is not None and item.symbol != ours:
                    continue  # another symbol's
            elif depth_symbols - {ours}:  # a bare REST snapshot while others have depth
                rep.snapshots_unattributed += 1
                continue
            if book is None:
                pending = item
                continue
            before = book.in_sync
            book.apply_snapshot(item)
            prev_ns = _account(rep, prev_ns, ns, before)
            continue
        d: DepthUpdate = item
        depth_symbols.add(d.symbol)
        if want is None:
            want = rep.symbol = d.symbol
        if d.symbol != want:
            continue
        if book is None:
            book = OrderBook(want, futures=d.futures, rebuild_from_diffs=rebuild_from_diffs,
                             buffer_size=buffer_size)
            rep.futures = d.futures
            rep.first_ns = ns
            if pending is not None and pending.symbol in ("", want):
                book.apply_snapshot(pending)
        rep.depth_updates += 1
        before = book.in_sync
        gaps = book.counters.gaps
        book.apply(d)
        if book.counters.gaps > gaps and len(rep.gaps) < MAX_GAPS_KEPT:
            rep.gaps.append((ns, book.last_gap))
        prev_ns = _account(rep, prev_ns, ns, before)
        if book.in_sync:
            b, a = book.best_bid(), book.best_ask()
            if b is not None and a is not None:
                states.append((book.last_update_id, b[0], b[1], a[0], a[1], book.complete))
    _check_by_id(states, tickers, tk)
    if book is not None and prev_ns is not None and book.in_sync:
        rep.in_sync_ns += rep.last_ns - prev_ns
    rep.other_symbols = sorted(depth_symbols - {want or ""})
    return book, rep


def _account(rep: BookReplay, prev_ns: int | None, ns: int, was_in_sync: bool) -> int:
    """Adds the time since the previous depth event if the book was in sync over it."""
    if prev_ns is not None and was_in_sync:
        rep.in_sync_ns += ns - prev_ns
    return ns


def _check_ticker(book: OrderBook, q: Quote, tk: TickerCheck) -> None:
    tk.tickers += 1
    if not book.in_sync:
        tk.out_of_sync += 1
        return
    if book.last_update_id < q.update_id:
        tk.ticker_ahead += 1
        return
    tk.compared += 1
    b, a = book.best_bid(), book.best_ask()
    if b is None or a is None:
        return
    prices = b[0] == q.bid and a[0] == q.ask
    both = prices and b[1] == q.bid_qty and a[1] == q.ask_qty
    tk.prices_agree += prices
    tk.all_agree += both
    if book.last_update_id == q.update_id:
        tk.same_id += 1
        tk.same_id_all_agree += both


def _check_by_id(states: list[tuple], tickers: list[tuple], tk: TickerCheck) -> None:
    tickers.sort(key=lambda t: t[0])
    ids = [t[0] for t in tickers]
    for st in states:
        j = bisect.bisect_right(ids, st[0]) - 1
        if j < 0:
            continue
        t = tickers[j]
        prices = st[1] == t[1] and st[3] == t[3]
        if not st[5]:
            tk.by_id_partial += 1
            tk.by_id_partial_prices_agree += prices
            continue
        tk.by_id_compared += 1
        tk.by_id_prices_agree += prices
        tk.by_id_all_agree += prices and st[2] == t[2] and st[4] == t[4]
