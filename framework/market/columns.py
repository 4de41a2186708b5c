"""A block of market events as numpy columns, each event object built only when it is asked for.

A replay reads a recording a chunk of frames at a time. The fast path (``runtime/blocks.py``)
needs of most rows only their numbers (stamp, kind, symbol, bid/ask and sizes, price, size, side)
and visits few rows, so building a ``Quote`` or ``Trade`` for every frame would be work for
nothing. An ``EventBlock`` holds those numbers as columns and builds a row's event the first time
it is read (``block[i]``), then keeps it: the same row always gives the same object. Iterating a
block gives every event, so any reader of events can take one.

The frame decoder (``FrameDecoder.decode_columns`` in ``decode.py``) makes them from a chunk of
a recording; ``EventBlock.from_events`` from events already built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

import numpy as np

from .events import Quote, Trade

QUOTE, TRADE, OTHER = 0, 1, 2  # a row's kind; OTHER: any other event, built when the block was
_KIND_OF_TYPE = {Quote: QUOTE, Trade: TRADE}
_TS, _SYMBOL = attrgetter("ts_ns"), attrgetter("symbol")
_BOOK = attrgetter("bid", "bid_qty", "ask", "ask_qty")
_PRINT = attrgetter("price", "qty")
_MAKER = attrgetter("buyer_is_maker")


class EventBlock:
    """Events in receive order as columns (see the module doc).

    ``ts`` (int64), ``kind`` (int8: QUOTE, TRADE, OTHER), ``sym`` (int32, an index into
    ``symbols``, each row's event's symbol), ``book`` (float64, n x 4: bid, bid_qty, ask, ask_qty
    of quotes, 0 elsewhere), ``prints`` (float64, n x 2: price, qty of trades, 0 elsewhere),
    ``maker`` (bool: a trade's buyer_is_maker). ``block[i]`` is row i's event; ``block[a:b]``
    and ``take(rows)`` are blocks sharing the events already built."""

    __slots__ = ("ts", "kind", "sym", "symbols", "book", "prints", "maker", "_events", "_build", "_base")

    def __init__(self, ts: np.ndarray, kind: np.ndarray, sym: np.ndarray, symbols: list[str], book: np.ndarray,
                 prints: np.ndarray, maker: np.ndarray, events: list, build: Callable[[int], Any] | None,
                 base: range | list[int] | None = None):
        self.ts, self.kind, self.sym, self.symbols = ts, kind, sym, symbols
        self.book, self.prints, self.maker = book, prints, maker
        self._events = events  # per row of the block this was cut from: its event, or None until built
        self._build = build  # that row's event, from what the frame gave
        self._base = range(len(ts)) if base is None else base  # this block's rows in that one

    @classmethod
    def from_events(cls, events: list) -> EventBlock:
        """A block of events already built (the frame-by-frame readers, scenarios, tests)."""
        if type(events) is EventBlock:
            return events
        n = len(events)
        ts = np.fromiter(map(_TS, events), np.int64, n)
        kind = np.fromiter(map(_KIND_OF_TYPE.get, map(type, events), repeat(OTHER)), np.int8, n)
        names = list(map(_SYMBOL, events))
        symbols = list(dict.fromkeys(names))
        sym = np.fromiter(map({s: i for i, s in enumerate(symbols)}.__getitem__, names), np.int32, n)
        book = np.zeros((n, 4))
        prints = np.zeros((n, 2))
        maker = np.zeros(n, np.bool_)
        q = np.flatnonzero(kind == QUOTE)
        if len(q):
            got = map(events.__getitem__, q.tolist())
            book[q] = np.fromiter(chain.from_iterable(map(_BOOK, got)), np.float64, 4 * len(q)).reshape(-1, 4)
        t = np.flatnonzero(kind == TRADE)
        if len(t):
            trades = list(map(events.__getitem__, t.tolist()))
            prints[t] = np.fromiter(chain.from_iterable(map(_PRINT, trades)), np.float64, 2 * len(t)).reshape(-1, 2)
            maker[t] = np.fromiter(map(_MAKER, trades), np.bool_, len(t))
        return cls(ts, kind, sym, symbols, book, prints, maker, list(events), None)

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, i):
        if type(i) is slice:
            return self._cut(i, self._base[i])
        k = self._base[i]
        ev = self._events[k]
        if ev is None:
            ev = self._events[k] = self._build(k)
        return ev

    def __iter__(self) -> Iterator:
        return map(self.__getitem__, range(len(self.ts)))

    def __repr__(self) -> str:
        return f"EventBlock({len(self)} rows)"

    def take(self, rows: np.ndarray) -> EventBlock:
        """The rows ``rows`` (indices, in order) as a block."""
        base = self._base
        if type(base) is range and base.step == 1:  # a block as decoded, or a slice of one
            return self._cut(rows, (rows + base.start).tolist())
        return self._cut(rows, list(map(base.__getitem__, rows.tolist())))

    def symbol_of(self, i: int) -> str:
        return self.symbols[self.sym[i]]

    def _cut(self, rows, base) -> EventBlock:
        return EventBlock(self.ts[rows], self.kind[rows], self.sym[rows], self.symbols, self.book[rows],
                          self.prints[rows], self.maker[rows], self._events, self._build, base)


class BlockStream:
    """An iterator of events that also offers them a block at a time (``blocks``: lists of events
    or ``EventBlock``s): an event-by-event reader iterates it, the fast path takes the blocks.
    A reader does one or the other, from the start."""

    __slots__ = ("blocks", "_flat")

    def __init__(self, blocks: Iterable[list | EventBlock]):
        self.blocks = iter(blocks)
        self._flat: Iterator | None = None

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self._flat is None:
            self._flat = chain.from_iterable(self.blocks)
        return next(self._flat)
