"""Depth in the event stream: frames -> depth events, depth events -> one local book per symbol.

``DepthFrameDecoder`` is the market decoder plus Binance's diff-depth streams and REST
snapshots: a session with ``market.depth: true`` reads its recording (or live feed) with it, so
``DepthUpdate`` and ``DepthSnapshot`` events flow next to trades and quotes, in arrival order.
A snapshot names no symbol (the REST answer does not say); one recorded under
``<symbol>@depth@snapshot`` is that symbol's, a bare one is given to the only symbol the session
trades or, failing that, the only symbol whose diffs the input carried so far; otherwise it is
counted (``ignored["unattributed snapshot"]``) and not used: the book then keeps building from
the diffs alone.

``SymbolBook`` keeps one symbol's :class:`~framework.market.book.OrderBook` and says what
happened to its health on each depth event, as feed incidents for the log:

- ``book_gap``: a sequence gap or a crossed book (the book is out of sync);
- ``book_sync``: the book is in sync again (from a snapshot and the buffered diffs, or, in a
  replay, rebuilt from the diffs alone: a *partial* book whose unseen levels are unknown);
- ``book_stale``: a depth frame after more than ``stale_ms`` without one (``gap_ms`` says how
  long); between the two the machines read ``book_age_ms`` growing.

The sequencing rules (spot ``U``/``u``, USD-M ``pu``) are the book's own (book.py); which rule
applies is told by the first depth event (a USD-M diff carries ``pu``, a USD-M snapshot ``E``).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from .book import OrderBook
from .decode import FrameDecoder
from .depth import DepthError, DepthSnapshot, DepthUpdate, decode_depth
from .events import FeedEvent
from .replay import detect_format, read_frames

DEFAULT_STALE_MS = 1000.0  # spot depth comes every 100 ms, USD-M @0ms far more often
NS_PER_MS = 1_000_000


class DepthFrameDecoder(FrameDecoder):
    """A :class:`FrameDecoder` that also gives depth events (see the module doc)."""

    def __init__(self, symbols: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.session_symbols = tuple(symbols)
        self.depth_symbols: list[str] = []  # symbols whose diffs were seen, first seen first

    def decode(self, raw, recv_ns: int):
        ev = FrameDecoder.decode(self, raw, recv_ns)
        if ev is not None:
            return ev
        d = decode_depth(raw, recv_ns)
        if d is None:
            return None  # an ack, or another stream we skip: already counted
        t = type(d)
        events = self.counters.events
        if t is DepthUpdate:
            if d.symbol not in self.depth_symbols and len(self.depth_symbols) < 1000:
                self.depth_symbols.append(d.symbol)
            events["depth"] = events.get("depth", 0) + 1
            return d
        if t is DepthSnapshot:
            sym = d.symbol or self._attribute()
            if not sym:
                self._ignore("unattributed snapshot")
                return None
            events["depth_snapshot"] = events.get("depth_snapshot", 0) + 1
            return d if d.symbol else msgspec.structs.replace(d, symbol=sym)
        assert t is DepthError
        return self._malformed(raw, recv_ns, f"depth {d.reason}", d.symbol)

    def skips_stream(self, kind: str) -> bool:
        """Depth streams are this decoder's: never skipped unparsed (``decode_bytes``)."""
        return not kind.startswith("depth") and FrameDecoder.skips_stream(self, kind)

    def _attribute(self) -> str:
        if len(self.session_symbols) == 1:
            return self.session_symbols[0]
        if len(self.depth_symbols) == 1:
            return self.depth_symbols[0]
        return ""


class SymbolBook:
    """One symbol's local book fed by depth events; ``apply`` returns the feed incidents."""

    def __init__(self, symbol: str, *, rebuild_from_diffs: bool, buffer_size: int = 1000,
                 stale_ms: float = DEFAULT_STALE_MS) -> None:
        self.symbol = symbol
        self.rebuild_from_diffs = rebuild_from_diffs
        self.buffer_size = buffer_size
        self.stale_ns = int(stale_ms * NS_PER_MS)
        self.book: OrderBook | None = None  # made at the first depth event (spot or USD-M rules)
        self.last_ns: int | None = None  # receive time of the last depth event
        self.version = 0  # depth events applied: the book's values may have changed

    @property
    def in_sync(self) -> bool:
        return self.book is not None and self.book.in_sync

    @property
    def gaps(self) -> int:
        return self.book.counters.gaps if self.book is not None else 0

    @property
    def resyncing(self) -> bool:
        """Out of sync after a gap, waiting to be back (a snapshot, or the next diff)."""
        return self.book is not None and not self.book.in_sync and self.book.counters.gaps > 0

    def _made(self, futures: bool) -> OrderBook:
        if self.book is None:
            self.book = OrderBook(self.symbol, futures=futures, rebuild_from_diffs=self.rebuild_from_diffs,
                                  buffer_size=self.buffer_size)
        return self.book

    def apply(self, ev: DepthUpdate | DepthSnapshot, ts: int) -> list[FeedEvent]:
        """Apply one depth event at pipeline time ``ts``; the health incidents it caused."""
        out: list[FeedEvent] = []
        if self.last_ns is not None and ts - self.last_ns > self.stale_ns:
            gap = (ts - self.last_ns) / NS_PER_MS
            out.append(FeedEvent(ts, "book_stale", self.symbol, f"no depth for {gap:.0f} ms", gap))
        self.last_ns = ts
        self.version += 1
        if type(ev) is DepthUpdate:
            book = self._made(ev.futures)
            was = book.in_sync
            gaps = book.counters.gaps
            book.apply(ev)
            if book.counters.gaps != gaps:
                out.append(FeedEvent(ts, "book_gap", self.symbol, book.last_gap))
                was = False
        else:
            book = self._made(ev.event_time_ms > 0)
            was = book.in_sync
            if not book.apply_snapshot(ev):
                return out  # not bridgeable: counted (snapshots_stale); the book stays as it was
            if was:
                return out
        if book.in_sync and not was:
            how = "complete, from a snapshot" if book.complete else "partial, from the diffs alone"
            out.append(FeedEvent(ts, "book_sync", self.symbol, f"{how}, at update {book.last_update_id}"))
        return out

    def age_ms(self, ts: int) -> float:
        return (ts - self.last_ns) / NS_PER_MS if self.last_ns is not None else float("inf")


DEPTH_PROBE_FRAMES = 20_000  # frames read to tell whether a recording carries depth


def carries_depth(path: str | Path) -> bool:
    """Whether a frames recording carries diff-depth frames or a depth snapshot among its first
    ``DEPTH_PROBE_FRAMES`` frames (Binance CSV dumps never do)."""
    try:
        if not Path(path).is_file() or detect_format(path) != "frames":
            return False  # not a file: whoever opens it says so
    except (ValueError, OSError):
        return False
    for i, (_, raw) in enumerate(read_frames(path)):
        if "@depth" in raw or '"depthUpdate"' in raw or '"lastUpdateId"' in raw:
            return True
        if i >= DEPTH_PROBE_FRAMES:
            break
    return False
