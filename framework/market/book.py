"""A local L2 order book for one symbol, kept from Binance diff-depth events.

Sequencing (Binance's documented rules; ``L`` = the snapshot's ``lastUpdateId``, ``last`` =
the final id ``u`` of the last diff applied):

- spot: a diff with ``u <= last`` is old and dropped; it applies when
  ``U <= last + 1 <= u`` (after a snapshot this is the "first diff" rule, afterwards it means
  ``U == last + 1`` for a gap-free stream); ``U > last + 1`` is a gap.
- USD-M: the first diff after a snapshot is dropped while ``u < L`` and applies when
  ``U <= L <= u``; afterwards a diff applies when its ``pu == last``; ``u <= last`` is old and
  dropped; anything else is a gap.

On a gap the book is out of sync. It comes back either from a snapshot (live: fetch one over
REST; the book keeps a ring of recent diffs and replays those newer than the snapshot, as
Binance documents), or, when ``rebuild_from_diffs`` is set (replay without snapshots), by
starting again from the next diff alone: a *partial* book. A partial book holds exactly the
levels that diffs reported since the rebuild (a diff reports every level that changed, so
those quantities are exact); prices never reported may hold quantity the book cannot see.
A snapshot bounds what is known: every price from the touch to its deepest level. The book
therefore knows which price ranges it has observed (:meth:`OrderBook.is_known`), and a taker
walk says when it ran into unknown territory.

Data structures and costs (``n`` = levels on a side, ``k`` = levels a query touches): each
side is a dict price -> qty plus a sorted list of its prices. Setting or removing a level is
O(1) for the dict, O(log n) to find the position and an O(n) memmove to insert or delete
(a few microseconds for thousands of levels); best bid/ask O(1); ``levels(n)`` O(k);
``depth_within_bps`` O(log n + k); ``imbalance`` O(k); ``walk`` O(k).
"""

from __future__ import annotations

import bisect
from collections import deque

import msgspec

from .depth import DepthSnapshot, DepthUpdate, Level

# Book states.
EMPTY = "empty"  # nothing yet
AWAITING_SNAPSHOT = "awaiting_snapshot"  # out of sync; diffs are buffered until a snapshot
SYNCED = "synced"  # built from a snapshot, sequence unbroken since
PARTIAL = "partial"  # built from diffs alone, sequence unbroken since; unseen levels unknown
IN_SYNC_STATES = (SYNCED, PARTIAL)


class _Side:
    """One side: price -> qty, and the prices sorted ascending (best bid is the last)."""

    __slots__ = ("qty", "prices")

    def __init__(self) -> None:
        self.qty: dict[float, float] = {}
        self.prices: list[float] = []

    def set(self, price: float, qty: float) -> None:
        book = self.qty
        if qty > 0.0:
            if price not in book:
                bisect.insort(self.prices, price)
            book[price] = qty
        elif price in book:
            del book[price]
            prices = self.prices
            del prices[bisect.bisect_left(prices, price)]

    def load(self, levels) -> None:
        self.qty = {p: q for p, q in levels if q > 0.0}
        self.prices = sorted(self.qty)

    def __len__(self) -> int:
        return len(self.prices)


class Walk(msgspec.Struct, frozen=True):
    """What a taker of ``qty`` gets by walking the levels of one side at this moment."""

    side: str  # "buy" walks the asks, "sell" the bids
    qty: float  # asked
    filled: float  # available in the book (== qty unless the visible book ran out)
    avg_price: float  # volume-weighted; 0.0 when nothing filled
    last_price: float  # the worst price reached
    levels: int  # levels consumed (the last possibly in part)
    touch: float  # best price on the side walked
    mid: float
    cost_bps: float  # (avg_price - mid) / mid in bps, signed so that a cost is positive
    touch_cost_bps: float  # the same against the touch
    unknown: bool  # the walk went through prices the book has not observed


class SyncCounters(msgspec.Struct):
    diffs: int = 0  # diffs offered
    applied: int = 0  # applied as they arrived
    replayed: int = 0  # applied again from the ring of recent diffs on top of a snapshot
    dropped_old: int = 0  # already covered (u <= last, or before the snapshot)
    buffered: int = 0  # arrived while out of sync
    gaps: int = 0
    crossed: int = 0  # a diff left the book crossed: treated as a gap
    snapshots: int = 0  # snapshots offered
    snapshots_used: int = 0
    snapshots_stale: int = 0  # could not be bridged to the buffered diffs
    resyncs: int = 0  # returns to sync after a gap (from a snapshot or from diffs)
    rebuilds: int = 0  # partial books started from diffs alone

    def as_dict(self) -> dict:
        return msgspec.structs.asdict(self)


class OrderBook:
    """Local L2 book of one symbol. Feed it :class:`DepthUpdate` and :class:`DepthSnapshot`
    in arrival order with :meth:`apply` / :meth:`apply_snapshot`."""

    def __init__(self, symbol: str, *, futures: bool = False, rebuild_from_diffs: bool = False,
                 buffer_size: int = 1000) -> None:
        self.symbol = symbol
        self.futures = futures
        self.rebuild_from_diffs = rebuild_from_diffs
        self.bids = _Side()
        self.asks = _Side()
        self.state = EMPTY
        self.last_update_id = -1  # `u` of the last diff applied, or the snapshot's id
        self.counters = SyncCounters()
        self.last_gap: str = ""  # why the book last went out of sync
        self._after_snapshot = False  # the next diff must bridge the snapshot (USD-M rule)
        self._recent: deque[DepthUpdate] = deque(maxlen=buffer_size)
        # Coverage: every bid price >= bid_floor and every ask price <= ask_ceiling is known
        # (a snapshot's depth); None when only the reported levels are known (partial book).
        self.bid_floor: float | None = None
        self.ask_ceiling: float | None = None
        self._seen_bids: set[float] = set()  # prices reported by diffs since the book's base
        self._seen_asks: set[float] = set()

    # ------------------------------------------------------------------ state

    @property
    def in_sync(self) -> bool:
        """The update-id sequence is unbroken since the book's base (snapshot or rebuild)."""
        return self.state in IN_SYNC_STATES

    @property
    def complete(self) -> bool:
        """Built from a snapshot: every price within the snapshot's depth is known."""
        return self.state == SYNCED

    # ------------------------------------------------------------------ updates

    def apply(self, d: DepthUpdate) -> str:
        """Apply one diff. Returns what happened: ``applied``, ``dropped``, ``buffered``,
        ``gap`` (the book is now out of sync) or ``rebuilt`` (a partial book started)."""
        c = self.counters
        c.diffs += 1
        self._recent.append(d)
        if self.state not in IN_SYNC_STATES:
            if self.rebuild_from_diffs:
                return self._rebuild(d)
            c.buffered += 1
            self.state = AWAITING_SNAPSHOT
            return "buffered"
        verdict = self._sequence(d)
        if verdict == "dropped":
            c.dropped_old += 1
            return verdict
        if verdict == "gap":
            return self._gap(d, self._gap_text(d))
        self._levels(d)
        c.applied += 1
        if self._crossed():
            c.crossed += 1
            return self._gap(d, f"crossed book after update {d.final_id}")
        return "applied"

    def apply_snapshot(self, s: DepthSnapshot) -> bool:
        """Base the book on a snapshot plus the buffered diffs newer than it. Returns False
        (and leaves the book as it was) when the buffered diffs cannot be bridged to it."""
        c = self.counters
        c.snapshots += 1
        L = s.last_update_id
        newer = [d for d in self._recent if not self._before_snapshot(d, L)]
        if newer and not self._bridges(newer[0], L):
            c.snapshots_stale += 1
            return False
        if newer:  # the rest must chain
            prev = newer[0]
            for d in newer[1:]:
                if not self._chains(d, prev.final_id):
                    if d.final_id <= prev.final_id:
                        continue
                    c.snapshots_stale += 1
                    return False
                prev = d
        was_in_sync = self.in_sync
        self.bids.load(s.bids)
        self.asks.load(s.asks)
        self.bid_floor = self.bids.prices[0] if self.bids.prices else 0.0
        self.ask_ceiling = self.asks.prices[-1] if self.asks.prices else float("inf")
        self._seen_bids.clear()
        self._seen_asks.clear()
        self.last_update_id = L
        self._after_snapshot = True
        self.state = SYNCED
        c.snapshots_used += 1
        if not was_in_sync and c.gaps:
            c.resyncs += 1
        for d in newer:
            if self._sequence(d) == "applied":
                self._levels(d)
                c.replayed += 1
        return True

    # -- sequencing rules

    def _before_snapshot(self, d: DepthUpdate, L: int) -> bool:
        return d.final_id < L if self.futures else d.final_id <= L

    def _bridges(self, d: DepthUpdate, L: int) -> bool:
        if self.futures:
            return d.first_id <= L <= d.final_id
        return d.first_id <= L + 1 <= d.final_id

    def _chains(self, d: DepthUpdate, last: int) -> bool:
        if self.futures:
            return d.prev_final_id == last
        return d.first_id <= last + 1 <= d.final_id

    def _sequence(self, d: DepthUpdate) -> str:
        last = self.last_update_id
        if self._after_snapshot:
            if self._before_snapshot(d, last):
                return "dropped"
            if self._bridges(d, last):
                self._after_snapshot = False
                return "applied"
            return "gap"
        if self._chains(d, last):
            return "applied"
        if d.final_id <= last:
            return "dropped"
        return "gap"

    def _gap_text(self, d: DepthUpdate) -> str:
        pu = f" pu {d.prev_final_id}" if self.futures else ""
        return f"update U {d.first_id} u {d.final_id}{pu} does not follow {self.last_update_id}"

    def _gap(self, d: DepthUpdate, why: str) -> str:
        c = self.counters
        c.gaps += 1
        self.last_gap = why
        self.state = AWAITING_SNAPSHOT
        if self.rebuild_from_diffs:
            self._rebuild(d)
        return "gap"

    def _rebuild(self, d: DepthUpdate) -> str:
        c = self.counters
        if c.gaps:
            c.resyncs += 1
        c.rebuilds += 1
        self.bids = _Side()
        self.asks = _Side()
        self.bid_floor = self.ask_ceiling = None
        self._seen_bids.clear()
        self._seen_asks.clear()
        self._after_snapshot = False
        self.state = PARTIAL
        self._levels(d)
        c.applied += 1
        return "rebuilt"

    def _levels(self, d: DepthUpdate) -> None:
        self.last_update_id = d.final_id
        bset, aset = self.bids.set, self.asks.set
        for p, q in d.bids:
            bset(p, q)
        for p, q in d.asks:
            aset(p, q)
        self._seen_bids.update(p for p, _ in d.bids)
        self._seen_asks.update(p for p, _ in d.asks)

    def _crossed(self) -> bool:
        b, a = self.bids.prices, self.asks.prices
        return bool(b and a and b[-1] >= a[0])

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> Level | None:
        p = self.bids.prices
        return (p[-1], self.bids.qty[p[-1]]) if p else None

    def best_ask(self) -> Level | None:
        p = self.asks.prices
        return (p[0], self.asks.qty[p[0]]) if p else None

    def mid(self) -> float | None:
        b, a = self.bids.prices, self.asks.prices
        return (b[-1] + a[0]) * 0.5 if b and a else None

    def levels(self, side: str, n: int | None = None) -> list[Level]:
        """The best ``n`` levels (all when None) of ``"bid"`` or ``"ask"``, best first."""
        if n is not None and n < 0:
            raise ValueError(f"n {n}; expected a count >= 0")
        if side == "bid":
            prices, q = self.bids.prices, self.bids.qty
            pick = prices[::-1] if n is None else prices[max(len(prices) - n, 0):][::-1]
        elif side == "ask":
            prices, q = self.asks.prices, self.asks.qty
            pick = prices if n is None else prices[:n]
        else:
            raise ValueError(f"side {side!r}; expected 'bid' or 'ask'")
        return [(p, q[p]) for p in pick]

    def is_known(self, side: str, price: float) -> bool:
        """Whether the book has observed the quantity at ``price`` on ``side`` (possibly 0)."""
        if side == "bid":
            if self.bid_floor is not None and price >= self.bid_floor:
                return True
            return price in self._seen_bids
        if side == "ask":
            if self.ask_ceiling is not None and price <= self.ask_ceiling:
                return True
            return price in self._seen_asks
        raise ValueError(f"side {side!r}; expected 'bid' or 'ask'")

    def depth_within_bps(self, bps: float) -> dict:
        """Quantity and notional resting within ``bps`` of the mid on each side, and whether
        the whole band is within what the book has observed."""
        if not 0.0 <= bps < float("inf"):
            raise ValueError(f"bps {bps}; expected a finite number >= 0")
        mid = self.mid()
        if mid is None:
            return {"mid": None, "bid_qty": 0.0, "ask_qty": 0.0, "bid_notional": 0.0,
                    "ask_notional": 0.0, "known": False}
        lo, hi = mid * (1.0 - bps / 1e4), mid * (1.0 + bps / 1e4)
        bp, bq = self.bids.prices, self.bids.qty
        ap, aq = self.asks.prices, self.asks.qty
        bid_qty = bid_notional = ask_qty = ask_notional = 0.0
        for p in bp[bisect.bisect_left(bp, lo):]:
            q = bq[p]
            bid_qty += q
            bid_notional += p * q
        for p in ap[: bisect.bisect_right(ap, hi)]:
            q = aq[p]
            ask_qty += q
            ask_notional += p * q
        known = (self.bid_floor is not None and self.bid_floor <= lo
                 and self.ask_ceiling is not None and self.ask_ceiling >= hi)
        return {"mid": mid, "bid_qty": bid_qty, "ask_qty": ask_qty,
                "bid_notional": bid_notional, "ask_notional": ask_notional, "known": known}

    def imbalance(self, n: int) -> float | None:
        """(bid qty - ask qty) / (bid qty + ask qty) over the best ``n`` levels of each side,
        in [-1, 1]; None for an empty book."""
        bq = sum(q for _, q in self.levels("bid", n))
        aq = sum(q for _, q in self.levels("ask", n))
        tot = bq + aq
        return (bq - aq) / tot if tot > 0 else None

    def walk(self, side: str, qty: float) -> Walk:
        """Walk the book as a taker of ``qty``: ``"buy"`` consumes asks from the best up,
        ``"sell"`` bids from the best down."""
        if side == "buy":
            prices, book, sgn, name = self.asks.prices, self.asks.qty, 1.0, "ask"
            order = iter(prices)
        elif side == "sell":
            prices, book, sgn, name = self.bids.prices, self.bids.qty, -1.0, "bid"
            order = reversed(prices)
        else:
            raise ValueError(f"side {side!r}; expected 'buy' or 'sell'")
        if not 0.0 < qty < float("inf"):  # also false for NaN
            raise ValueError(f"qty {qty}; expected a finite number > 0")
        mid = self.mid() or 0.0
        touch = (prices[0] if sgn > 0 else prices[-1]) if prices else 0.0
        remaining, notional, n, last = qty, 0.0, 0, 0.0
        done = qty * 1e-12  # float residue of the subtractions: not worth another level
        for p in order:
            if remaining <= done:
                break
            take = min(remaining, book[p])
            notional += take * p
            remaining -= take
            n += 1
            last = p
        if remaining <= done:
            remaining = 0.0
        filled = qty - remaining
        avg = notional / filled if filled > 0 else 0.0
        # Unknown territory: a price between the touch and the last level consumed that the
        # book has not observed (a partial book observes single prices, not ranges), or a
        # walk that ran out of visible levels.
        unknown = remaining > 0.0 or (n > 0 and not self._range_known(name, touch, last, n))
        # + 0.0: no "-0.000" for a walk that stays at the touch
        cost = sgn * (avg - mid) / mid * 1e4 + 0.0 if filled > 0 and mid else 0.0
        tcost = sgn * (avg - touch) / touch * 1e4 + 0.0 if filled > 0 and touch else 0.0
        return Walk(side, qty, filled, avg, last, n, touch, mid, cost, tcost, unknown)

    def _range_known(self, side: str, touch: float, last: float, n: int) -> bool:
        if side == "ask":
            return self.ask_ceiling is not None and last <= self.ask_ceiling
        return self.bid_floor is not None and last >= self.bid_floor
