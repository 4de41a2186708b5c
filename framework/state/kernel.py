"""The state engine as one compiled kernel: a block of events at a time for the replay fast
path, one event at a time for the live path.

Replay decodes a block of one symbol's market events into numpy columns and calls
``MetricKernel.run`` once per block instead of calling ``SymbolMetrics`` once per event; the
result is a matrix with one row of metric values per event. The live path calls
``MetricKernel.step`` per event through ``KernelMetrics`` (``SymbolMetrics``' interface): the
same compiled code on a block of one event, reached through an address table so a call costs
about a microsecond (see ``_step`` in ``kernel_numba``). ``SymbolMetrics``
(``framework/state/engine.py``) is the reference, and every row must be bit for bit the
``values`` dict it holds after the same event. So the kernel repeats its float operations in
the same order: running sums added and subtracted in the same sequence, the same ``log``,
``sqrt``, ``* 0.5`` and ``/ ws``, the same clipping, NaN and inf rules, the resets to exactly
0.0, the late-event clamping and the feed-gap invalidation.

State lives in numpy arrays owned by ``MetricKernel`` and passed to one compiled function
(helpers taking arrays would pay reference counting on every call). Windows are grouped as in
``SymbolMetrics`` (one per window length and family) and are ring buffers of timestamps and
payloads, in one flat pool per family, each ring with its own power-of-two capacity. The
kernel never allocates: before touching the state for an event it checks that every ring the
event may append to has room; if one is full it returns that event's index, and Python doubles
that ring and resumes there. A ring's capacity is at most twice the most its window held.

The rolling median keeps its window's values in two heaps, like ``SymbolMetrics``: the lower
half negated in one min-heap, the upper half in another. Values leave the window in arrival
order, so heap entries carry their arrival number and an entry is gone exactly when its number
is below the window's first live one: a removal only updates the live count of the heap that
holds the entry (each ring entry records its side), and gone entries are dropped when they
reach a top or when a full heap is compacted. The heaps are rebalanced once per event, before
the median is read; any correct median gives the same bits.

The compiled functions are ``kernel_numba``'s (the one copy of the arithmetic), the slots and
columns they share with this module ``kernel_layout``'s. A process runs them from the module
``kernel_aot`` compiled ahead of time from that source when it finds one with the current key
(it then never imports numba), else through numba's JIT.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..market.events import FeedEvent, Quote, Tick, Trade
from ..spec.metrics import KINDS, MetricSet
from . import kernel_aot
from .engine import _NS_PER_S, INVALIDATING_FEED_KINDS, SymbolMetrics
from .kernel_layout import (
    _ARMED,
    _BOOK,
    _CAP,
    _CNT,
    _DALPHA,
    _DBUCKET,
    _DCAP,
    _DISQ,
    _DMIN,
    _DNEXT,
    _DOFF,
    _DQUANT,
    _DSAMP,
    _DSRC,
    _DW,
    _FAM_Q,
    _FAM_R,
    _FAM_T,
    _GAPS,
    _HAS_Q,
    _HAS_T,
    _HEAD,
    _INVALID,
    _LATE,
    _MSHI,
    _MSLO,
    _MW,
    _N_BOOK,
    _NEED_R2,
    _NO_TIME,
    _NOW,
    _OFF,
    _QTS,
    _QUOTE_KINDS,
    _QUOTES,
    _QW,
    _QWS,
    _RW,
    _TRADE_KINDS,
    _TRADES,
    _TTS,
    _TW,
    _TWS,
    FEED,
    GAP,
    N_SI,
    QUOTE,
    TICK,
    TRADE,
)

INITIAL_CAPACITY = 16  # entries per ring at start; a power of two, doubled when full
WATCH_SLOTS = 4  # watch slots at start (a machine each); more are made as they are claimed
MAX_WATCH_SLOTS = 62  # one bit each in an int64


def _compiled_functions():
    """The kernel's two entry points: from the ahead-of-time compiled module when one was built
    from this source with this numba and Python (no numba import, nothing to load on the first
    call), else numba's JIT (compiled, or loaded from numba's cache, on the first call)."""
    aot = kernel_aot.load()
    if aot is not None:
        return aot.run, aot.step
    from .kernel_numba import _run, _step
    return _run, _step


_run, _step = _compiled_functions()


def _ready(fn) -> bool:
    """Whether calling ``fn`` runs machine code already in this process: always for the
    ahead-of-time module's functions, after the first call for a JIT dispatcher."""
    return bool(getattr(fn, "signatures", True))


# The table's slots: ``_run``'s arrays in its argument order after ``start``, then the watched
# cells' (``arm``); each slot is three int64s: address, first and second dimension (0 for 1-D).
_RUN_ORDER = ("kind", "ts", "bid", "bid_qty", "ask", "ask_qty", "price", "qty", "bim", "out",
              "si", "sf", "wv", "colsrc", "qm", "qf", "qts", "qr2", "qcr", "tm", "tf", "tts", "tq",
              "tn", "tb", "rm", "rw", "rcur", "rts", "rv", "mm", "mts", "mv", "mside", "mh", "dm", "df",
              "dts", "dval", "dsort", "need")
_TABLE_ORDER = (*_RUN_ORDER, "wn", "wcol", "wlo", "whi")

_TABLE_DTYPES = {name: np.dtype(dt) for names, dt in (
    (("kind",), np.int8), (("bim", "mside"), np.bool_),
    (("ts", "si", "colsrc", "qm", "qts", "qcr", "tm", "tts", "rm", "rw", "rts", "mm", "mts", "dm", "dts", "need",
      "wn", "wcol"),
     np.int64),
    (("bid", "bid_qty", "ask", "ask_qty", "price", "qty", "out", "sf", "wv", "qf", "qr2", "tf", "tq", "tn", "tb",
      "rcur", "rv", "mv", "mh", "df", "dval", "dsort", "wlo", "whi"), np.float64)) for name in names}


# -- Python side -----------------------------------------------------------------------------------

def _group(metric_set: MetricSet, kinds: tuple[str, ...]) -> list[int]:
    """Window lengths (ns) of the given kinds, in first-declared order: one window per
    (window_ns, family), as ``SymbolMetrics`` groups them."""
    out: list[int] = []
    for m in metric_set:
        if m.kind in kinds and m.window_ns not in out:
            out.append(m.window_ns)
    return out


def _pool(n_rings: int, extra_cols: int, dtypes: tuple) -> tuple[np.ndarray, list[np.ndarray]]:
    """Ring metadata (offset, capacity, head, count, extra columns) and empty ring columns."""
    meta = np.zeros((n_rings, 4 + extra_cols), dtype=np.int64)
    meta[:, _CAP] = INITIAL_CAPACITY
    meta[:, _OFF] = np.arange(n_rings, dtype=np.int64) * INITIAL_CAPACITY
    size = max(n_rings * INITIAL_CAPACITY, 1)
    return meta, [np.zeros(size, dtype=dt) for dt in dtypes]


def _grown(meta: np.ndarray, r: int, cols: list[np.ndarray]) -> list[np.ndarray]:
    """A pool's ring columns with ring r's capacity doubled and every ring unrolled to start
    at its new offset (``meta`` is updated)."""
    cap = meta[:, _CAP].copy()
    cap[r] *= 2
    off = np.zeros_like(cap)
    off[1:] = np.cumsum(cap)[:-1]
    new = [np.zeros(int(cap.sum()), dtype=a.dtype) for a in cols]
    for j in range(meta.shape[0]):
        o, c, h, n = (int(x) for x in meta[j, :4])
        src = o + ((h + np.arange(n)) & (c - 1))
        for a, b in zip(cols, new, strict=True):
            b[off[j]:off[j] + n] = a[src]
    meta[:, _OFF] = off
    meta[:, _CAP] = cap
    meta[:, _HEAD] = 0
    return new


def _heaps(mm: np.ndarray, old: np.ndarray | None = None, heaps: np.ndarray | None = None):
    """The median windows' heap pool for the layout in ``mm`` (8 floats per ring entry),
    holding the heaps of ``heaps`` laid out by ``old`` when given."""
    new = np.zeros(max(8 * int(mm[:, _CAP].sum()), 1), dtype=np.float64)
    if heaps is not None:
        for j in range(mm.shape[0]):
            o, c = 8 * int(old[j, _OFF]), 4 * int(old[j, _CAP])
            d, e = 8 * int(mm[j, _OFF]), 4 * int(mm[j, _CAP])
            m = 2 * int(old[j, _MSLO])
            new[d:d + m] = heaps[o:o + m]
            m = 2 * int(old[j, _MSHI])
            new[d + e:d + e + m] = heaps[o + c:o + c + m]
    return new


class _CompileNotice:
    """Says so on stderr when the first call compiles the kernel (seconds, once per install:
    numba caches the machine code beside ``kernel_numba``) rather than loading it from the cache."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.started = time.perf_counter()
        cache_file = getattr(getattr(fn, "_cache", None), "_cache_file", None)
        index = getattr(cache_file, "_index_path", None)
        self.announced = not (index and os.path.isfile(index))
        if self.announced:
            print("compiling the metric kernel (first replay only; cached for later runs)...", file=sys.stderr, flush=True)

    def done(self) -> None:
        recompiled = sum(self.fn.stats.cache_misses.values()) > 0
        if self.announced or recompiled:
            print(f"metric kernel {'compiled' if self.announced else 'recompiled (its source changed)'} in "
                  f"{time.perf_counter() - self.started:.1f} s; `python -m framework.state.kernel_build` compiles "
                  "it ahead of time, so runs start without numba", file=sys.stderr, flush=True)


class MetricKernel:
    """One symbol's rolling metrics, computed a block of events at a time.

    ``run`` continues from the state the previous call left; row i of its result is
    ``SymbolMetrics.values`` after event i, in the column order of ``names``.
    """

    def __init__(self, metric_set: MetricSet):
        self.metric_set = metric_set
        self.names: tuple[str, ...] = metric_set.names
        qw = _group(metric_set, _QUOTE_KINDS)
        tw = _group(metric_set, _TRADE_KINDS)
        rwin = _group(metric_set, ("mid_move",))
        mwin = _group(metric_set, ("spread_to_median",))
        derived = [m for m in metric_set if KINDS[m.kind].derived]
        tbase = _N_BOOK + 3 * len(qw)
        rbase = tbase + 4 * len(tw)
        mbase = rbase + len(rwin)
        dbase = mbase + len(mwin)
        colsrc = []
        for m in metric_set:
            if m.kind in _BOOK:
                colsrc.append(_BOOK[m.kind])
            elif m.kind in _QUOTE_KINDS:
                colsrc.append(_N_BOOK + 3 * qw.index(m.window_ns) + _QUOTE_KINDS.index(m.kind))
            elif m.kind in _TRADE_KINDS:
                colsrc.append(tbase + 4 * tw.index(m.window_ns) + _TRADE_KINDS.index(m.kind))
            elif m.kind == "mid_move":
                colsrc.append(rbase + rwin.index(m.window_ns))
            elif m.kind == "spread_to_median":
                colsrc.append(mbase + mwin.index(m.window_ns))
            elif KINDS[m.kind].derived:
                colsrc.append(dbase + derived.index(m))
            else:
                raise ValueError(f"metric {m.name!r}: no kernel for kind {m.kind!r}")
        self._colsrc = np.array(colsrc, dtype=np.int64)

        # Every slot starts at its kind's empty value, like SymbolMetrics.values.
        wv = np.zeros(dbase + len(derived), dtype=np.float64)
        for kind, s in _BOOK.items():
            wv[s] = KINDS[kind].empty
        for j in range(len(tw)):
            wv[tbase + 4 * j + 3] = KINDS["buy_ratio"].empty
        wv[rbase:] = np.nan  # mid_move, spread_to_median and the derived kinds
        self._wv = wv
        self._init_derived(metric_set, derived, colsrc)

        self._si = np.zeros(N_SI, dtype=np.int64)
        self._si[_NOW] = _NO_TIME
        self._si[_NEED_R2] = any(m.kind == "realized_vol" for m in metric_set)
        self._sf = np.zeros(1, dtype=np.float64)
        self._need = np.zeros(2, dtype=np.int64)

        self._qm, self._qcols = _pool(len(qw), 3, (np.int64, np.float64, np.int64))
        self._qm[:, _QW] = qw
        self._qf = np.zeros((len(qw), 2), dtype=np.float64)
        self._qf[:, _QWS] = [w / _NS_PER_S for w in qw]
        self._tm, self._tcols = _pool(len(tw), 1, (np.int64, np.float64, np.float64, np.float64))
        self._tm[:, _TW] = tw
        self._tf = np.zeros((len(tw), 4), dtype=np.float64)
        self._tf[:, _TWS] = [w / _NS_PER_S for w in tw]
        self._rm, self._rcols = _pool(2 * len(rwin), 0, (np.int64, np.float64))
        self._rw = np.zeros((len(rwin), 2), dtype=np.int64)
        self._rw[:, _RW] = rwin
        self._rcur = np.zeros(len(rwin), dtype=np.float64)
        self._mm, self._mcols = _pool(len(mwin), 7, (np.int64, np.float64, np.bool_))
        self._mm[:, _MW] = mwin
        self._mh = _heaps(self._mm)

        # One event's columns and its row of values, for ``step``; the address table is built on
        # the first ``step`` and after every growth.
        self._one = {"kind": np.zeros(1, np.int8), "ts": np.zeros(1, np.int64),
                     **{c: np.zeros(1, np.float64) for c in ("bid", "bid_qty", "ask", "ask_qty", "price", "qty")},
                     "bim": np.zeros(1, np.bool_), "out": np.zeros((1, len(self.names)), np.float64)}
        self.row = self._one["out"][0]
        self._table: np.ndarray | None = None
        self._watch_arrays(WATCH_SLOTS)

    def last_stamps(self) -> tuple[int | None, int | None]:
        """As ``SymbolMetrics.last_stamps``: the last valid quote's and trade's times."""
        si = self._si
        return (int(si[_QTS]) if si[_HAS_Q] else None, int(si[_TTS]) if si[_HAS_T] else None)

    # -- counters (same meaning as SymbolMetrics) ------------------------------------------

    @property
    def late_events(self) -> int:
        return int(self._si[_LATE])

    @property
    def invalid_events(self) -> int:
        return int(self._si[_INVALID])

    @property
    def gaps(self) -> int:
        return int(self._si[_GAPS])

    @property
    def quotes(self) -> int:
        return int(self._si[_QUOTES])

    @property
    def trades(self) -> int:
        return int(self._si[_TRADES])

    # -- events ------------------------------------------------------------------------------

    def run(self, kind, ts, bid, bid_qty, ask, ask_qty, price, qty, buyer_is_maker) -> np.ndarray:
        """Apply n events in order (columns of length n) and return float64[n, len(names)]:
        row i holds the metric values after event i."""
        # Contiguous, writeable columns of the exact dtypes: one compiled signature for all.
        kind = np.require(kind, np.int8, "CW")
        ts = np.require(ts, np.int64, "CW")
        bid, bid_qty, ask, ask_qty, price, qty = (
            np.require(a, np.float64, "CW") for a in (bid, bid_qty, ask, ask_qty, price, qty))
        bim = np.require(buyer_is_maker, np.bool_, "CW")
        out = np.empty((len(kind), len(self.names)), dtype=np.float64)
        self._si[_ARMED] = 0  # cells are checked one event at a time (``step``) only
        start = 0
        notice = None if _ready(_run) else _CompileNotice(_run)
        while True:
            start = _run(start, kind, ts, bid, bid_qty, ask, ask_qty, price, qty, bim, out,
                         self._si, self._sf, self._wv, self._colsrc,
                         self._qm, self._qf, *self._qcols, self._tm, self._tf, *self._tcols,
                         self._rm, self._rw, self._rcur, *self._rcols,
                         self._mm, *self._mcols, self._mh,
                         self._dm, self._df, *self._dcols, self._need)
            if notice is not None:
                notice.done()
                notice = None
            if start < 0:
                return out
            self._grow(int(self._need[0]), int(self._need[1]))

    def step(self, kind: int, ts: int, bid: float, bid_qty: float, ask: float, ask_qty: float, price: float,
             qty: float, buyer_is_maker: bool) -> np.ndarray:
        """Apply one event and return ``row``: the metric values after it, in the order of
        ``names`` (the same array every time, overwritten by the next event). The same state as
        ``run``: blocks and single events may follow each other."""
        notice = None if _ready(_step) else _CompileNotice(_step)
        while _step(self.table(), kind, ts, bid, bid_qty, ask, ask_qty, price, qty, buyer_is_maker) >= 0:
            self._grow(int(self._need[0]), int(self._need[1]))
        if notice is not None:
            notice.done()
        return self.row

    # -- watched cells: whether values stayed in given intervals (the machines' gates) ----------

    @property
    def armed(self) -> int:
        """The watch slots (bit s: slot s) whose cells held every value after each event
        ``step`` applied since they were armed."""
        return int(self._si[_ARMED])

    def arm(self, slot: int, columns: list[int], lo: list[float], hi: list[float]) -> int:
        """Watch slot ``slot``: value column ``columns[j]`` must stay in ``[lo[j], hi[j]]`` (NaN
        bounds: stay NaN). No columns: the slot is disarmed. Returns the armed slots. The same
        ``columns`` list object as the slot's last (a gate's own, never changed) is not written
        again: a gate re-arms its slot with new bounds on every box it builds."""
        if slot >= len(self._wn):
            self._watch_arrays(min(max(2 * len(self._wn), slot + 1), MAX_WATCH_SLOTS))
        n = len(columns)
        if n:
            if self._wsrc[slot] is not columns:
                self._wn[slot] = n
                self._wcol[slot, :n] = columns
                self._wsrc[slot] = columns
            self._wlo[slot, :n] = lo
            self._whi[slot, :n] = hi
            armed = int(self._si[_ARMED]) | 1 << slot
        else:
            armed = int(self._si[_ARMED]) & ~(1 << slot)
        self._si[_ARMED] = armed
        return armed

    def _watch_arrays(self, slots: int) -> None:
        """Room for ``slots`` watch slots of up to one cell per value column each."""
        if slots > MAX_WATCH_SLOTS:
            raise ValueError(f"metric kernel: at most {MAX_WATCH_SLOTS} watch slots")
        width = max(len(self.names), 1)
        old = [getattr(self, a, None) for a in ("_wn", "_wcol", "_wlo", "_whi")]
        self._wn = np.zeros(slots, np.int64)
        self._wcol = np.zeros((slots, width), np.int64)
        self._wlo = np.zeros((slots, width), np.float64)
        self._whi = np.zeros((slots, width), np.float64)
        if old[0] is not None:
            for new, prev in zip((self._wn, self._wcol, self._wlo, self._whi), old, strict=True):
                new[:len(prev)] = prev
        sources = getattr(self, "_wsrc", [])
        self._wsrc: list[list[int] | None] = sources + [None] * (slots - len(sources))  # ``arm``'s columns, as given
        if self._table is not None:
            self._table = self._address_table()

    def __getstate__(self) -> dict:
        """A copy (deepcopy, pickle) gets arrays of its own: its address table is built again, and
        ``row`` is a view of its own ``out``."""
        state = dict(self.__dict__)
        state["_table"] = None
        del state["row"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.row = self._one["out"][0]

    def table(self) -> np.ndarray:
        """The address table of the current state for ``_step`` (valid until the next growth;
        ``step`` and ``run`` grow rings)."""
        if self._table is None:
            self._table = self._address_table()
        return self._table

    def one_event_arrays(self) -> dict[str, np.ndarray]:
        """Every array of ``_step``'s table by its name in ``_TABLE_ORDER``: the state, one
        event's columns and row (what ``step`` runs on) and the watched cells."""
        q, t, r, m, d = self._qcols, self._tcols, self._rcols, self._mcols, self._dcols
        return {**self._one, "si": self._si, "sf": self._sf, "wv": self._wv, "colsrc": self._colsrc,
                "qm": self._qm, "qf": self._qf, "qts": q[0], "qr2": q[1], "qcr": q[2],
                "tm": self._tm, "tf": self._tf, "tts": t[0], "tq": t[1], "tn": t[2], "tb": t[3],
                "rm": self._rm, "rw": self._rw, "rcur": self._rcur, "rts": r[0], "rv": r[1],
                "mm": self._mm, "mts": m[0], "mv": m[1], "mside": m[2], "mh": self._mh,
                "dm": self._dm, "df": self._df, "dts": d[0], "dval": d[1], "dsort": d[2], "need": self._need,
                "wn": self._wn, "wcol": self._wcol, "wlo": self._wlo, "whi": self._whi}

    def _address_table(self) -> np.ndarray:
        """``_step``'s table: the address and shape of each of its arrays (``_TABLE_ORDER``).
        Every array it points at is held by this object, and replaced only by ``_grow``, which
        builds the table again."""
        arrays = self.one_event_arrays()
        table = np.zeros(3 * len(_TABLE_ORDER), dtype=np.int64)
        for s, name in enumerate(_TABLE_ORDER):
            a = arrays[name]
            if not (a.flags.c_contiguous and a.flags.writeable and a.dtype == _TABLE_DTYPES[name]):
                raise TypeError(f"metric kernel: {name} is not a contiguous {_TABLE_DTYPES[name]} array")
            table[3 * s] = a.ctypes.data
            table[3 * s + 1] = a.shape[0]
            table[3 * s + 2] = a.shape[1] if a.ndim == 2 else 0
        return table

    def _init_derived(self, metric_set: MetricSet, derived: list, colsrc: list[int]) -> None:
        """The derived metrics' state; a rolling quantile's ring and sorted copy hold as many
        samples as its window can (one per sample period), so they never grow."""
        names = list(metric_set.names)
        dm = np.zeros((len(derived), 12), dtype=np.int64)
        df = np.zeros((len(derived), 3), dtype=np.float64)
        off = 0
        for j, m in enumerate(derived):
            dm[j, _DISQ] = m.kind == "rolling_quantile"
            dm[j, _DSRC] = colsrc[names.index(m.of)]
            dm[j, _DSAMP] = m.sample_ns
            dm[j, _DW] = m.window_ns
            dm[j, _DMIN] = m.min_samples
            dm[j, _DBUCKET] = -(1 << 62)
            dm[j, _DNEXT] = -(1 << 63)
            cap = m.window_ns // m.sample_ns + 3 if dm[j, _DISQ] else 0
            dm[j, _DOFF] = off
            dm[j, _DCAP] = cap
            off += cap
            df[j, _DQUANT] = m.quantile or 0.0
            df[j, _DALPHA] = m.alpha
        self._dm, self._df = dm, df
        size = max(off, 1)
        self._dcols = [np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.float64),
                       np.zeros(size, dtype=np.float64)]

    def _grow(self, family: int, ring: int) -> None:
        if family == _FAM_Q:
            self._qcols = _grown(self._qm, ring, self._qcols)
        elif family == _FAM_T:
            self._tcols = _grown(self._tm, ring, self._tcols)
        elif family == _FAM_R:
            self._rcols = _grown(self._rm, ring, self._rcols)
        else:
            old = self._mm.copy()
            self._mcols = _grown(self._mm, ring, self._mcols)
            self._mh = _heaps(self._mm, old, self._mh)
        if self._table is not None:
            self._table = self._address_table()

    def values_now(self) -> dict[str, float]:
        """The current values (after the last event), like ``SymbolMetrics.values``."""
        wv = self._wv
        return {n: float(wv[s]) for n, s in zip(self.names, self._colsrc, strict=True)}

    # -- introspection -------------------------------------------------------------------------

    def buffered(self) -> dict[str, list[int]]:
        """Entries held by each ring, per family: quote, trade, range (two deques per window)
        and median windows."""
        return {f: [int(x) for x in meta[:, _CNT]] for f, meta in self._metas().items()}

    def capacities(self) -> dict[str, list[int]]:
        """Entries allocated for each ring, in the same layout as ``buffered``: at most twice
        the most the ring ever held, and at least ``INITIAL_CAPACITY``. (A median window's
        heaps take four times its ring's capacity: two heaps of two floats per entry.)"""
        return {f: [int(x) for x in meta[:, _CAP]] for f, meta in self._metas().items()}

    def _metas(self) -> dict[str, np.ndarray]:
        return {"quote": self._qm, "trade": self._tm, "range": self._rm, "median": self._mm}


class KernelMetrics:
    """``SymbolMetrics``' interface, computed by the compiled kernel one event at a time: the
    live path's metrics when the kernel has every kind of the metric set (``supports``).

    ``values`` holds every metric of the set (the same dict for the object's whole life, in the
    set's order); the kernel writes the rolling kinds after each event, the book's kinds are
    ``BookMetrics``'. Counters, ``now_ns`` and ``last_stamps`` mean what they mean on
    ``SymbolMetrics``; ``SymbolMetrics`` stays the reference it is tested against.
    """

    engine = "compiled kernel"

    def __init__(self, metric_set: MetricSet, symbol: str = ""):
        self.metric_set = metric_set
        self.symbol = symbol
        self.values: dict[str, float] = metric_set.initial_values()
        self._kernel = MetricKernel(metric_set.rolling)  # private: its table must stay ours
        self._names = self._kernel.names
        self._row = self._kernel.row
        self._table = self._kernel.table()
        self._step = _step if _ready(_step) else self._first_step
        self.armed = 0  # the kernel's armed watch slots after the last event (``watch_slot``)
        self._slots: dict[str, int] = {}

    @staticmethod
    def supports(metric_set: MetricSet) -> bool:
        """Whether the kernel computes every rolling kind of ``metric_set``."""
        rolling = metric_set.rolling
        names = set(rolling.names)
        return all(m.kind in _BOOK or m.kind in _QUOTE_KINDS or m.kind in _TRADE_KINDS
                   or m.kind in ("mid_move", "spread_to_median")
                   or (KINDS[m.kind].derived and m.of in names)  # a baseline of a book metric: no
                   for m in rolling)

    # -- events ---------------------------------------------------------------------------

    def on_event(self, ev) -> None:
        """Any market event: Quote, Trade, FeedEvent or Tick."""
        t = type(ev)
        if t is Quote:
            self.on_quote(ev)
        elif t is Trade:
            self.on_trade(ev)
        elif t is Tick:
            self.on_tick(ev.ts_ns)
        elif t is FeedEvent:
            self.on_feed(ev)
        else:
            raise TypeError(f"not a market event: {ev!r}")

    def __getstate__(self) -> dict:
        """A copy has a kernel of its own (see ``MetricKernel.__getstate__``): its table and row
        are taken from that one."""
        state = dict(self.__dict__)
        for name in ("_table", "_row", "_step"):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._row = self._kernel.row
        self._table = self._kernel.table()
        self._step = _step if _ready(_step) else self._first_step

    def warm_up(self) -> None:
        """Load the compiled step now (or compile it, the first time after an install) instead of
        on the first event: about half a second."""
        if self._step is not _step:
            self._first_step(self._table, TICK, _NO_TIME, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)  # a no-op tick

    # Each calls ``_step`` itself (a Python wrapper costs as much again as the call): a negative
    # answer means applied (``~answer``: the armed watch slots); else a ring was full and nothing
    # was applied, ``_room`` grows it and retries.

    def on_quote(self, q: Quote) -> None:
        r = self._step(self._table, QUOTE, q.ts_ns, q.bid, q.bid_qty, q.ask, q.ask_qty, 0.0, 0.0, False)
        if r >= 0:
            r = self._room(QUOTE, q.ts_ns, q.bid, q.bid_qty, q.ask, q.ask_qty, 0.0, 0.0, False)
        self.armed = ~r
        self.values.update(zip(self._names, self._row.tolist(), strict=True))

    def on_trade(self, t: Trade) -> None:
        r = self._step(self._table, TRADE, t.ts_ns, 0.0, 0.0, 0.0, 0.0, t.price, t.qty, t.buyer_is_maker)
        if r >= 0:
            r = self._room(TRADE, t.ts_ns, 0.0, 0.0, 0.0, 0.0, t.price, t.qty, t.buyer_is_maker)
        self.armed = ~r
        self.values.update(zip(self._names, self._row.tolist(), strict=True))

    def on_tick(self, ts_ns: int) -> None:
        """Advance event time to ``ts_ns`` (no-op if not later than now): evict, age."""
        self._apply(TICK, ts_ns)

    def on_feed(self, ev: FeedEvent) -> None:
        if ev.symbol and self.symbol and ev.symbol != self.symbol:
            return
        self._apply(GAP if ev.kind in INVALIDATING_FEED_KINDS else FEED, ev.ts_ns)

    def _apply(self, kind: int, ts: int) -> None:
        r = self._step(self._table, kind, ts, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
        if r >= 0:
            r = self._room(kind, ts, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
        self.armed = ~r
        self.values.update(zip(self._names, self._row.tolist(), strict=True))

    def _room(self, *event) -> int:
        """The event found a ring full: apply it through the kernel's ``step``, which grows the
        ring, and take its new address table. Answers as ``_step``."""
        self._kernel.step(*event)
        self._table = self._kernel.table()
        return ~self._kernel.armed

    def _first_step(self, *args) -> int:
        """The first call in this process: the kernel's ``step`` says so when it compiles."""
        self._kernel.step(*args[1:])
        self._step = _step
        return ~self._kernel.armed

    # -- watched cells (the machines' gates) ------------------------------------------------

    def watch_slot(self, owner: str) -> WatchSlot | None:
        """``owner``'s slot of cells the kernel checks after each event (the same slot for the
        same owner: a machine rebuilt by a hot reload takes its predecessor's); None when every
        slot is taken."""
        slot = self._slots.get(owner, len(self._slots))
        if slot >= MAX_WATCH_SLOTS:
            return None
        self._slots[owner] = slot
        k = self._kernel
        self.armed = k.arm(slot, [], [], [])
        if k.table() is not self._table:  # the slots grew: new arrays, a new table
            self._table = k.table()
        return WatchSlot(self, slot)

    # -- counters and clock (read from the kernel's state; the replay fast path sets them
    # when it catches a pipeline up) ---------------------------------------------------------

    @property
    def now_ns(self) -> int | None:
        """Event time (the largest stamp applied), None before the first event."""
        now = int(self._kernel._si[_NOW])
        return None if now == _NO_TIME else now

    @now_ns.setter
    def now_ns(self, ts: int | None) -> None:
        self._kernel._si[_NOW] = _NO_TIME if ts is None else ts

    def last_stamps(self) -> tuple[int | None, int | None]:
        return self._kernel.last_stamps()

    def stats(self) -> dict[str, int]:
        return {"quotes": self.quotes, "trades": self.trades, "late_events": self.late_events,
                "invalid_events": self.invalid_events, "gaps": self.gaps}


class WatchSlot:
    """One owner's cells in a kernel: while every value the kernel computes stays in its cell,
    the bit ``bit`` of ``metrics.armed`` stays set. ``values`` and ``columns``: the values dict
    the cells are of and the keys the kernel computes (others stay with the owner)."""

    __slots__ = ("metrics", "slot", "bit", "values", "columns")

    def __init__(self, metrics: KernelMetrics, slot: int):
        self.metrics = metrics
        self.slot = slot
        self.bit = 1 << slot
        self.values = metrics.values
        self.columns = {name: i for i, name in enumerate(metrics._names)}

    def arm(self, columns: list[int], lo: list[float], hi: list[float]) -> int:
        """Watch these cells from now on (replacing the last ones); returns the bit, or 0 when
        there are none (the slot is then disarmed)."""
        m = self.metrics
        m.armed = m._kernel.arm(self.slot, columns, lo, hi)
        return self.bit if columns else 0


def _counter(slot: int) -> property:
    def get(self) -> int:
        return int(self._kernel._si[slot])

    def put(self, n: int) -> None:
        self._kernel._si[slot] = n
    return property(get, put)


for _name, _slot in (("late_events", _LATE), ("invalid_events", _INVALID), ("gaps", _GAPS),
                     ("quotes", _QUOTES), ("trades", _TRADES)):
    setattr(KernelMetrics, _name, _counter(_slot))


def live_metrics(metric_set: MetricSet, symbol: str = "") -> KernelMetrics | SymbolMetrics:
    """One symbol's metrics for the event-by-event path: the compiled kernel when it has every
    kind of the set, else the reference engine (``.engine`` says which)."""
    if KernelMetrics.supports(metric_set):
        return KernelMetrics(metric_set, symbol)
    return SymbolMetrics(metric_set, symbol)

