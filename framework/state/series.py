"""Metric time series: the engine's values sampled at fixed event-time boundaries.

A sample at boundary ``B`` (a multiple of ``every_ns`` since the epoch) shows the metrics after
every event stamped at or before ``B`` and a clock tick at ``B``: exactly what a guard reading
``values`` at event time ``B`` would see. Boundaries run from the first one at or after the
first event to the last one at or before the last event, including boundaries in quiet stretches.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator

import numpy as np

from ..market.book_feed import SymbolBook
from ..market.depth import DepthSnapshot, DepthUpdate
from ..spec.metrics import MetricSet
from .book_metrics import BookMetrics
from .engine import MultiSymbolMetrics

QUANTILES = (("p1", 0.01), ("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75),
             ("p95", 0.95), ("p99", 0.99), ("max", 1.0))

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|s|m|h)?\s*$")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def parse_duration_ns(text: str) -> int:
    """'1s', '250ms', '0.5', '2m' -> nanoseconds (a bare number is seconds). ValueError if bad."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; expected a number with a unit such as "
                         "250ms, 1s or 1m")
    return round(float(m.group(1)) * _UNIT_NS[m.group(2) or "s"])


def iso_ms(ts_ns: int) -> str:
    """ISO-8601 UTC with milliseconds: 2024-08-08T23:54:15.000Z."""
    s, rest = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{rest // 1_000_000:03d}Z"


def sample(events: Iterable, metric_set: MetricSet, every_ns: int,
           engine: MultiSymbolMetrics | None = None, depth: bool = False) -> Iterator[tuple[int, str, list[float]]]:
    """Yield ``(boundary_ts_ns, symbol, [value per metric in declaration order])``.

    One row per symbol seen so far at each boundary, symbols in order of first appearance.
    With ``depth``, depth events build a local book per symbol (from the diffs, and the
    recording's snapshot) and the set's book metrics read it; otherwise they stay NaN.
    """
    if every_ns <= 0:
        raise ValueError("the sampling interval must be positive")
    mm = engine or MultiSymbolMetrics(metric_set)
    names = metric_set.names
    nxt: int | None = None
    last = None
    on_event = mm.on_event
    symbols = mm.symbols
    books: dict[str, tuple[SymbolBook, BookMetrics]] = {}

    def tick(t: int) -> None:
        mm.on_tick(t)
        for sb, bm in books.values():
            bm.age(sb, t)

    for ev in events:
        ts = ev.ts_ns
        t = type(ev)
        book_event = t is DepthUpdate or t is DepthSnapshot
        if nxt is None and not book_event:  # the series starts with the market's first event
            nxt = -(-ts // every_ns) * every_ns
        if nxt is not None and nxt < ts:
            while nxt < ts:
                tick(nxt)
                for sym, sm in symbols.items():
                    v = sm.values
                    yield nxt, sym, [v[n] for n in names]
                nxt += every_ns
        if book_event:
            if depth:
                sb_bm = books.get(ev.symbol)
                if sb_bm is None:
                    sb_bm = books[ev.symbol] = (SymbolBook(ev.symbol, rebuild_from_diffs=True),
                                                BookMetrics(metric_set, mm.for_symbol(ev.symbol).values))
                    sb_bm[1].start()
                sb_bm[0].apply(ev, max(ts, last or ts))
                sb_bm[1].update(sb_bm[0])
            continue
        on_event(ev)
        if last is None or ts > last:
            last = ts
    if nxt is not None and last is not None:
        while nxt <= last:
            tick(nxt)
            for sym, sm in symbols.items():
                v = sm.values
                yield nxt, sym, [v[n] for n in names]
            nxt += every_ns


def describe(rows: Iterable[tuple[int, str, list[float]]],
             metric_set: MetricSet) -> dict[str, dict[str, dict[str, float | int]]]:
    """Per symbol, per metric: ``n`` finite samples, ``nan`` and ``inf`` counts, and quantiles
    p1 p5 p25 p50 p75 p95 p99 max over the finite samples (NaN when there are none)."""
    by_symbol: dict[str, list[list[float]]] = {}
    for _, sym, vals in rows:
        by_symbol.setdefault(sym, []).append(vals)
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    qs = [q for _, q in QUANTILES]
    for sym, table in by_symbol.items():
        arr = np.asarray(table, dtype=float).reshape(len(table), len(metric_set))
        per: dict[str, dict[str, float | int]] = {}
        for j, name in enumerate(metric_set.names):
            col = arr[:, j]
            finite = col[np.isfinite(col)]
            d: dict[str, float | int] = {"n": int(finite.size), "nan": int(np.isnan(col).sum()),
                                         "inf": int(np.isinf(col).sum())}
            if finite.size:
                vals = np.quantile(finite, qs)
                d.update({k: float(x) for (k, _), x in zip(QUANTILES, vals, strict=True)})
            else:
                d.update({k: float("nan") for k, _ in QUANTILES})
            per[name] = d
        out[sym] = per
    return out
