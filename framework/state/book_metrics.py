"""The book's metrics (``machines/metrics.yaml`` kinds ``book_*``), read from a symbol's local
L2 book and written into the same ``values`` dict the machines read as ``metrics.NAME``.

They change only when a depth event is applied (``update``), except ``book_age`` which grows
with time (``age``): the state engine's rolling metrics never see depth, and these never see
trades or quotes. Values (docs/metrics.md):

- ``book_depth`` (``bps``, ``side``): base quantity resting within ``bps`` of the book's mid
  on one side; ``book_imbalance`` (``levels``): (bid - ask) / (bid + ask) quantity over the best
  ``levels`` of each side. NaN while the book is not in sync (nothing is judged on it).
- ``book_in_sync``, ``book_resyncing``: 1 or 0; ``book_gaps``: gaps so far; ``book_age``: ms
  since the last depth event, +inf before the first.
"""

from __future__ import annotations

import math

from ..market.book_feed import SymbolBook
from ..spec.metrics import MetricSet

NAN = math.nan


class BookMetrics:
    """Writes a metric set's book kinds into ``values`` (nothing when it declares none)."""

    def __init__(self, metric_set: MetricSet, values: dict[str, float]) -> None:
        self.values = values
        specs = metric_set.book
        self._depth = [(m.name, m.bps, m.side) for m in specs if m.kind == "book_depth"]
        self._imb = [(m.name, m.levels) for m in specs if m.kind == "book_imbalance"]
        self._sync = [m.name for m in specs if m.kind == "book_in_sync"]
        self._resync = [m.name for m in specs if m.kind == "book_resyncing"]
        self._gaps = [m.name for m in specs if m.kind == "book_gaps"]
        self.age_names = tuple(m.name for m in specs if m.kind == "book_age")
        self.names = tuple(m.name for m in specs)

    def start(self) -> None:
        """A session with depth, before its first depth event: no book yet, not in sync."""
        v = self.values
        for n in self._sync + self._resync + self._gaps:
            v[n] = 0.0
        for n in self.age_names:
            v[n] = math.inf

    def update(self, sb: SymbolBook) -> None:
        """After a depth event was applied."""
        v = self.values
        book = sb.book
        in_sync = book is not None and book.in_sync
        for n in self._sync:
            v[n] = 1.0 if in_sync else 0.0
        for n in self._resync:
            v[n] = 1.0 if sb.resyncing else 0.0
        for n in self._gaps:
            v[n] = float(sb.gaps)
        if not in_sync:
            for n, _, _ in self._depth:
                v[n] = NAN
            for n, _ in self._imb:
                v[n] = NAN
            return
        bands: dict[float, dict] = {}
        for n, bps, side in self._depth:
            band = bands.get(bps)
            if band is None:
                band = bands[bps] = book.depth_within_bps(bps)
            v[n] = band["bid_qty" if side == "bid" else "ask_qty"] if band["mid"] is not None else NAN
        for n, levels in self._imb:
            x = book.imbalance(levels)
            v[n] = NAN if x is None else x

    def age(self, sb: SymbolBook, ts: int) -> None:
        """``book_age`` at pipeline time ``ts``."""
        if self.age_names:
            a = sb.age_ms(ts)
            for n in self.age_names:
                self.values[n] = a
