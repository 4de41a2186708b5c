"""The replay fast path: the same pipeline, run a block of events at a time.

In a replay most events change nothing past the metrics: every guard of every machine's current
state stays false, no timer falls due, no risk guard flips and the paper engine has nothing to
do. The fast path finds those events in bulk and skips them:

1. A block of events, with the clock ticks the runtime would insert, becomes numpy columns
   ("rows"); the compiled kernel (``framework/state/kernel.py``) computes every metric after
   every row in one call.
2. Each layer screens itself, beside its event step, over many rows at once with numpy
   (``framework/spec/vector.py``): ``StateMachine.screen`` evaluates every guard and derived
   value of a machine's current state and its ``after:`` and ``for:`` timers; ``RiskGuard.screen``
   the risk guards (PnL, drawdown, position, order rate, stale data) and the risk machine;
   ``DecisionTable.varies_with`` says whether the decision can change on rows where no state
   does. A row is *flagged* when anything there could change. This module builds the rows, asks
   the screens, merges their flags and visits the rows; it reads the layers' state only through
   those methods and their public properties.
3. Flagged rows, clock ticks with an intent or a metrics sample due and feed events go through
   the scalar pipeline (``SymbolPipeline.react``) with the metric values of that row copied in.
   The paper engine also sees every row while orders rest in the book, and the rows after its
   next wake-up (an order arriving, a markout due) otherwise. Everything else is skipped; what
   the scalar path would have written on a skipped row (metric values, the last quote the engine
   saw, the risk guard's PnL high-water mark by ``RiskGuard.see_mids``, when ``for:`` holds
   started by ``StateMachine.catch_up_holds``) is caught up before anything reads it. After any
   change of state the screen is made again from the next row.

Skipping is exact, not approximate: on an unflagged row the scalar pipeline would change no
state and write no record. Whatever the screen cannot reproduce bit for bit (an expression the
numpy backend does not support) flags every row it could affect. The scalar pipeline stays the
reference: the tests run both paths on recordings and scenarios and compare the audit logs byte
for byte. ``execlab run --scalar`` runs the reference path.

A session of several symbols runs one *lane* per symbol (``_Lane``): its metric kernel, its
screens and its pipeline see only that symbol's rows of the block (the clock ticks, its quotes
and trades, the feed events addressed to it or to every symbol). The runner merges the rows the
lanes ask for in the block's order, which is the order ``Runtime.feed`` processes events in; a
row several lanes share (a tick, a feed event for every symbol) is visited by each in the
session's order of symbols, and the tick's metrics sample is written after all of them, as
``Runtime`` does. The layers of one symbol read nothing of another's, so a lane's skipped rows
stay skippable whatever the other lanes do.

It serves replays without hot reload or an event-by-event strategy; ``Runtime.can_run_blocks``
says when.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np

from ..execution.risk import STEADY_VALUES
from ..market.columns import OTHER as COLUMN_OTHER
from ..market.columns import TRADE as COLUMN_TRADE
from ..market.columns import EventBlock
from ..market.depth import DepthSnapshot, DepthUpdate
from ..market.events import FeedEvent, Quote, Tick, Trade
from ..state.engine import INVALIDATING_FEED_KINDS
from ..state.kernel import FEED, GAP, QUOTE, TICK, TRADE, MetricKernel
from .pipeline import Runtime
from .quiet import QuietSpan

BLOCK_ROWS = 4096
FIRST_SCREEN_ROWS = 2048  # after a change, screen this far ahead (changes come in bursts),
SCREEN_GROWTH = 4  # then further each time (a screen's cost is mostly per numpy call, not per row)

_NOT_PIPELINE = -1  # a quote or trade of another symbol: the runtime counts it, nothing else
_EVERY_LANE = -2  # a feed event naming no symbol of the session: every pipeline sees it
_NO_ROW = 1 << 62  # a lane asks for no more row of the block
DEPTH = 5  # a depth event: the kernel never sees it; processed in full (the book changes)
_KIND_OF_TYPE = {Quote: QUOTE, Trade: TRADE, FeedEvent: FEED, DepthUpdate: DEPTH, DepthSnapshot: DEPTH}


class _RowEvents:
    """Each row's event (None for a clock tick), built by the block when first read."""

    __slots__ = ("block", "index")

    def __init__(self, block: EventBlock, index: list[int]):
        self.block = block
        self.index = index  # row -> the event's place in the block, -1 for a tick

    def __getitem__(self, r: int) -> Any:
        i = self.index[r]
        return None if i < 0 else self.block[i]


def _event_kinds(events: EventBlock) -> np.ndarray:
    """The kernel's kind of each event of a block (QUOTE, TRADE, FEED, DEPTH)."""
    kind = np.full(len(events), QUOTE, np.int8)
    kind[events.kind == COLUMN_TRADE] = TRADE
    for i in np.flatnonzero(events.kind == COLUMN_OTHER).tolist():
        kind[i] = _KIND_OF_TYPE[type(events[i])]
    return kind


class _Rows:
    """One block as columns: events and the clock ticks before them, in processing order. The
    events' numbers come from the block's columns; an event object is built only for the rows
    that are read (``event[r]``)."""

    def __init__(self, events: EventBlock, seen: np.ndarray, ticks: np.ndarray, symbol: str, last_ts: int,
                 ev_kind: np.ndarray | None = None):
        n = len(events)
        # ``seen``: the latest stamp of the whole block before each event, which places the
        # clock's ``ticks`` (Clock.block_ticks): every tick at or before an event comes before it
        # (Runtime.feed). A lane's share of a block of several symbols (``BlockRunner._split``)
        # comes with its events' kinds, and every event is then the pipeline's.
        raw_ts = events.ts
        at = np.searchsorted(seen, ticks, "left")  # the event each tick comes before
        k = len(ticks)
        self.n = m = n + k
        ev_row = np.arange(n) + np.searchsorted(at, np.arange(n), "right")
        tick_row = at + np.arange(k)
        self.ev_row = ev_row
        if m == 0:
            return

        event_of_row = np.full(m, -1, np.int64)
        event_of_row[ev_row] = np.arange(n)
        self.event = _RowEvents(events, event_of_row.tolist())
        ts = np.empty(m, np.int64)
        ts[tick_row] = ticks
        ts[ev_row] = raw_ts
        # Each event's kind; quotes and trades of another symbol are not the pipeline's.
        if ev_kind is None:
            ev_kind = _event_kinds(events)
            if events.symbols != [symbol]:  # "" is only a connection's, never a quote's
                other = np.array([s != symbol for s in events.symbols], np.bool_)[events.sym]
                ev_kind[other & ((ev_kind == QUOTE) | (ev_kind == TRADE) | (ev_kind == DEPTH))] = _NOT_PIPELINE
        for i in np.flatnonzero(ev_kind == FEED).tolist():
            if events[i].kind in INVALIDATING_FEED_KINDS:
                ev_kind[i] = GAP
        kind = np.full(m, TICK, np.int8)
        kind[ev_row] = ev_kind
        quotes = np.flatnonzero(ev_kind == QUOTE)
        trades = np.flatnonzero(ev_kind == TRADE)
        q_rows = ev_row[quotes]
        t_rows = ev_row[trades]
        cols = {c: np.zeros(m) for c in ("bid", "bid_qty", "ask", "ask_qty", "price", "qty")}
        maker = np.zeros(m, np.bool_)
        if len(quotes):
            book = events.book[quotes]
            for i, c in enumerate(("bid", "bid_qty", "ask", "ask_qty")):
                cols[c][q_rows] = book[:, i]
        if len(trades):
            cols["price"][t_rows] = events.prints[trades, 0]
            cols["qty"][t_rows] = events.prints[trades, 1]
            maker[t_rows] = events.maker[trades]
        self.kind = kind
        self.tick_rows = tick_row
        self.tick_ts = ticks
        self.feed_rows = np.flatnonzero((kind == GAP) | (kind == FEED)).tolist()
        self.depth_rows = np.flatnonzero(kind == DEPTH)
        self.in_pipeline = kind != _NOT_PIPELINE
        # Pipeline time: late events are applied at the latest time seen (SymbolPipeline).
        pts = np.where(self.in_pipeline, ts, np.iinfo(np.int64).min)
        pts[0] = max(int(pts[0]), last_ts)
        self.ts = np.maximum.accumulate(pts)
        self.raw_ts = ts
        # the pipeline time of the last depth row at or before each row (-1: none in this block)
        self.depth_ts = np.maximum.accumulate(np.where(kind == DEPTH, self.ts, -1))
        self.cols = cols
        self.maker = maker
        # The engine's mid on each row: the last quote's (NaN before any in this block).
        last_q = np.where(kind == QUOTE, np.arange(m), -1)
        self.last_quote = np.maximum.accumulate(last_q)
        self.last_quote_list = self.last_quote.tolist()
        qmid = (cols["bid"] + cols["ask"]) * 0.5
        self.engine_mid = np.where(self.last_quote >= 0, qmid[np.maximum(self.last_quote, 0)], np.nan)

    def kernel_rows(self, symbol: str) -> np.ndarray:
        """Rows the metrics see: not other symbols' quotes, trades or feed events, not depth."""
        keep = self.in_pipeline & (self.kind != DEPTH)
        for r in self.feed_rows:
            s = self.event[r].symbol
            if s and s != symbol:
                keep[r] = False
        return np.flatnonzero(keep)


class _Screen:
    """Flagged rows of ``[start, end)`` for the state the pipeline was in when it was made; the
    machines' part of the flags (reused when only money changes), and the ``for:`` holds over
    those rows (each machine's ``HoldRun``s, for ``StateMachine.catch_up_holds``)."""

    __slots__ = ("start", "end", "flagged", "pos", "machine_flags", "holds")

    def __init__(self, start: int, end: int, flagged: list[int], machine_flags: Any, holds: list):
        if end <= start:  # the runner steps from screen to screen: an empty one would never end
            raise AssertionError(f"empty screen at row {start}")
        self.start, self.end, self.flagged, self.pos = start, end, flagged, 0
        self.machine_flags, self.holds = machine_flags, holds

    def machines_part(self, a: int, b: int) -> tuple[Any, list]:
        """The machine flags and holds of rows ``[a, b)`` (inside this screen)."""
        i, k = a - self.start, b - self.start
        flags = self.machine_flags if self.machine_flags is True else self.machine_flags[i:k]
        return flags, [(m, [h.part(i, k) for h in runs]) for m, runs in self.holds]

    def next_from(self, r: int) -> int:
        """The first flagged row at or after ``r`` in this screen, else ``end``."""
        f = self.flagged
        i = self.pos
        while i < len(f) and f[i] < r:
            i += 1
        self.pos = i
        return f[i] if i < len(f) else self.end


class _Lane:
    """One symbol's part of the fast path: its metric kernel, its screens, and the rows of the
    block in progress that its pipeline sees (clock ticks, its quotes and trades, the feed
    events addressed to it or to every symbol). ``BlockRunner`` merges the lanes' rows."""

    def __init__(self, runtime: Runtime, p: Any, stats: dict[str, int]):
        self.rt = runtime
        self.p = p
        for m in (*p.machines, p.risk.machine):
            m.evaluate_every_event()  # the screens below are this path's gate
        self.kernel = MetricKernel(runtime.session.metric_set.rolling)  # the book writes its own
        self.names = self.kernel.names
        self.col = {n: i for i, n in enumerate(self.names)}
        self.values_row = np.array([p.metrics.values[n] for n in self.names], dtype=np.float64)
        self.last_quote: Quote | None = p.engine.last_quote
        self.mid_lo = self.mid_hi = np.nan  # engine mids since the risk guard last saw one
        self.stats = stats  # shared by the lanes of a runner
        self.first_row_pending = True  # the first row sets the machines' clocks: always in full
        self.rows: _Rows | None = None  # the block in progress
        self.M = np.empty((0, len(self.names)))  # its metric values, one row per row
        self.chain: list[_Screen] = []  # its screens since the last change of state
        self.at = 0  # the chain's screen in use
        self.mids_from = 0  # rows before this one are in mid_lo / mid_hi
        self.screen_stop = 0  # rows the screen being made may cover (a timer can cut it short)
        self.machines_read_money = False
        self.reusable: list[_Screen] = []  # screens whose machine flags outlived a change of money
        self.chain_machines: tuple = ()  # what the machines read when the chain was started
        self.risk_rows: dict[str, np.ndarray] = {}  # the screen's risk values per row
        # the merge's place in the block: the next row to consider, the row asked for next (and
        # its row in the whole block), the engine's wake-up when it was asked
        self.r = self.want = self.want_global = 0
        self.wake: int | None = None
        self.kinds: list[int] = []
        self.times: list[int] = []
        self.global_row: Any = range(0)
        self.fi = 0
        self._compile()

    # -- what the layers read (the screens themselves are the layers') ------------------------
    def _compile(self) -> None:
        p = self.p
        read = frozenset().union(*(m.inputs_read for m in p.machines))
        risk_steady = {f"risk.{k}" for k in STEADY_VALUES}
        # machines reading PnL or order counts must be screened again after every fill and order
        self.machines_read_money = any(n.startswith("risk.") and n not in risk_steady for n in read)
        # The book's metrics read by the layers, but its age: that one the screen computes per row.
        ages = set(p.book_metrics.age_names)
        self.book_read = tuple(n for n in p.book_metrics.names
                               if f"metrics.{n}" in read | p.decision.inputs_read and n not in ages)
        # A decision reading per-row values (metrics, PnL) could change on any row.
        self.decision_varies = p.decision.varies_with({f"{m.spec.name}.state" for m in p.machines} | risk_steady)

    def _load_values_row(self) -> None:
        self.p.metrics.values.update(zip(self.names, self.values_row.tolist(), strict=True))

    def _quiet_tick(self, t: int) -> None:
        """One tick of a gap's quiet part through every layer (no intent, no sample is due)."""
        p = self.p
        one = np.zeros(1)
        k = self.kernel.run(np.full(1, TICK, np.int8), np.full(1, t, np.int64), one, one, one, one, one, one,
                            np.zeros(1, np.bool_))
        self.values_row = k[-1].copy()
        self._load_values_row()
        e = p.engine
        if self.last_quote is not None and e.last_quote is not self.last_quote:
            e.show_quote(self.last_quote)
        self._catch_up_peak(self.mids_from, e.money)
        p.last_ts = max(p.last_ts, t)
        p.events += 1
        self.stats["rows"] += 1
        self.stats["full"] += 1
        p.react(Tick(t), Tick, p.last_ts)

    # -- a block, row by row, as BlockRunner merges the lanes ------------------------------------
    def begin_block(self, rows: _Rows, global_row: Any) -> None:
        """Compute the metrics after each of ``rows`` and ask for the first row to visit;
        ``global_row[i]`` is row i's place in the whole block."""
        keep = rows.kernel_rows(self.p.symbol)
        c = rows.cols
        k = self.kernel.run(rows.kind[keep], rows.raw_ts[keep], c["bid"][keep], c["bid_qty"][keep], c["ask"][keep],
                            c["ask_qty"][keep], c["price"][keep], c["qty"][keep], rows.maker[keep])
        # Rows the metrics did not see keep the values of the row before.
        src = np.full(rows.n, -1, np.int64)
        src[keep] = np.arange(len(keep))
        src = np.maximum.accumulate(src)
        self.M = np.vstack([self.values_row[None, :], k])[src + 1]
        self.rows = rows
        self.kinds = rows.kind.tolist()  # Python lists: cheaper to index one row at a time
        self.times = rows.ts.tolist()
        self.global_row = global_row
        self.fi = 0
        self.depth_list = rows.depth_rows.tolist()
        self.di = 0
        self.chain = []
        self.reusable = []
        self.at = 0
        self.mids_from = 0
        self.r = 0
        self.ask()

    def ask(self) -> None:
        """The next row from ``r`` on that this lane must visit (``want``, ``rows.n`` when none is
        left in the block) and its place in the whole block (``want_global``)."""
        rows, r = self.rows, self.r
        n = rows.n
        wake = self.wake = self.p.engine.next_wakeup_ns()  # None: orders rest in the book, every row matters
        if r >= n:
            j = n
        elif wake is None or self.first_row_pending:
            j = r
        else:
            feeds = rows.feed_rows
            fi = self.fi
            while fi < len(feeds) and feeds[fi] < r:
                fi += 1
            self.fi = fi
            depths = self.depth_list
            di = self.di
            while di < len(depths) and depths[di] < r:
                di += 1
            self.di = di
            j = min(self._next_tick_row(r, n), feeds[fi] if fi < len(feeds) else n,
                    depths[di] if di < len(depths) else n,
                    int(np.searchsorted(rows.ts, wake, "right")),
                    self._next_flagged(r, n))
        self.want = j
        self.want_global = self.global_row[j] if j < n else _NO_ROW

    def visit(self) -> None:
        """The row asked for, through the layers it could change. The runner has set the clock
        and logged a feed event; it writes the metrics sample of a clock tick after every lane."""
        rt, p = self.rt, self.p
        j = self.want
        self.r = j + 1
        kj = self.kinds[j]
        if kj == _NOT_PIPELINE:
            return
        n = self.rows.n
        wake = self.wake
        ts = self.times[j]
        due = ()
        if kj == TICK:
            due = rt.intents.due(ts, p.symbol)
        if self.first_row_pending or kj in (GAP, FEED, DEPTH) or due or self._flagged(j, n):
            self.first_row_pending = False
            before = self._signature()
            self._full(j, kj, ts)
            for intent in due:
                p.handle_intent(intent, ts)
            if self._signature() != before:
                self._state_changed(machines=self._signature()[0] != before[0])
        elif (wake is None or ts > wake) and self._engine_only(j, kj, ts):
            self._state_changed(machines=self._signature()[0] != self.chain_machines)

    def end_block(self) -> None:
        """What the skipped rows of the block would have left behind."""
        rows, p = self.rows, self.p
        self._sync_holds(rows.n)
        self.values_row = self.M[-1].copy()
        p.events += int(np.count_nonzero(rows.in_pipeline))
        p.last_ts = int(rows.ts[-1])
        self._fold_mids(rows.n, p.engine.position)
        lq = int(rows.last_quote[-1])
        if lq >= 0:
            self.last_quote = rows.event[lq]
        self.stats["rows"] += rows.n

    def _next_tick_row(self, r: int, n: int) -> int:
        """The next clock tick from row ``r`` on with an intent or a metrics sample due."""
        rows = self.rows
        due_at = self.rt.intents.next_due_ns(self.p.symbol)
        need = self.rt.next_sample if due_at is None else min(due_at, self.rt.next_sample)
        i = int(np.searchsorted(rows.tick_rows, r, "left"))
        if due_at is not None:
            i = max(i, int(np.searchsorted(rows.tick_ts, need, "left")))
        return int(rows.tick_rows[i]) if i < len(rows.tick_rows) else n

    # -- one row through the scalar pipeline ----------------------------------------------------
    def _load_values(self, j: int) -> None:
        self.p.metrics.values.update(zip(self.names, self.M[j].tolist(), strict=True))

    def _show_engine_quote(self, j: int) -> None:
        lq = self.rows.last_quote_list[j] if j >= 0 else -1
        q = self.rows.event[lq] if lq >= 0 else self.last_quote
        if q is not None and self.p.engine.last_quote is not q:
            self.p.engine.show_quote(q)

    def _full(self, j: int, kj: int, ts: int) -> None:
        p = self.p
        self.stats["full"] += 1
        self._sync_holds(j)
        self._load_values(j)
        self._catch_up_peak(j, p.engine.money)
        p.last_ts = ts
        if kj == TICK:
            self._show_engine_quote(j)
            p.react(Tick(ts), Tick, ts)
            return
        ev = self.rows.event[j]
        if kj in (GAP, FEED):
            self._show_engine_quote(j)
            p.react(ev, FeedEvent, ts)
            return
        if kj == DEPTH:
            self._show_engine_quote(j)
            p.react(ev, type(ev), ts)
            return
        self._show_engine_quote(j - 1 if kj == QUOTE else j)
        p.react(ev, type(ev), ts)

    def _engine_only(self, j: int, kj: int, ts: int) -> bool:
        """A row while the engine has work: the engine sees it; the other layers only if it
        filled (returns whether it did)."""
        p = self.p
        engine = p.engine
        self.stats["engine"] += 1
        money = engine.money
        self._show_engine_quote(j - 1 if kj == QUOTE else j)
        if kj == QUOTE:
            engine.on_quote(self.rows.event[j])
        elif kj == TRADE:
            engine.on_trade(self.rows.event[j])
        else:
            engine.on_tick(ts)
        if engine.money is money:
            return False
        self._sync_holds(j)
        self._load_values(j)
        self._catch_up_peak(j, money)
        p.last_ts = ts
        p.after_engine(ts)
        return True

    # -- what skipped rows would have done -----------------------------------------------------
    def _extremes(self, b: int, pos: float) -> tuple[float, float]:
        """The lowest and highest engine mid the risk guard has not seen, over the rows before
        ``b`` (NaN, NaN when there are none, or when flat: then PnL does not depend on the mid).
        Reads only: a screen made ahead of the row in progress must not count mids to come."""
        lo, hi = self.mid_lo, self.mid_hi
        a = self.mids_from
        if b <= a or pos == 0.0:
            return lo, hi
        mids = self.rows.engine_mid[a:b]
        if self.rows.last_quote[b - 1] < 0 and self.last_quote is not None:
            mids = np.append(mids, self.last_quote.mid)
        if mids.size and not np.isnan(mids).all():
            for m in (float(np.nanmin(mids)), float(np.nanmax(mids))):
                if not (m >= lo):
                    lo = m
                if not (m <= hi):
                    hi = m
        return lo, hi

    def _fold_mids(self, b: int, pos: float) -> None:
        """Remember the engine mids of the rows before ``b`` that the risk guard did not see."""
        if b > self.mids_from:
            self.mid_lo, self.mid_hi = self._extremes(b, pos)
            self.mids_from = b

    def _catch_up_peak(self, j: int, money: tuple[float, float, float, float]) -> None:
        """Show the risk guard's PnL high-water mark the engine mids of the rows before ``j`` it
        did not see (``RiskGuard.see_mids``), with the engine's ``money`` over those rows."""
        self._fold_mids(j, money[0])
        self.mids_from = j + 1  # the guard sees row j itself
        lo, hi = self.mid_lo, self.mid_hi
        self.mid_lo = self.mid_hi = np.nan
        self.p.risk.see_mids(lo, hi, money)

    def catch_up(self) -> None:
        """Bring the objects the summary reads up to date with the skipped rows (the end of a
        run): the metrics, the engine's last quote, the PnL high-water mark. ``risk.values`` and
        the machines' derived values stay as the last row that went through the layers left them
        (evaluating again could fire a rule twice at one time)."""
        p = self.p
        if self.last_quote is not None and p.engine.last_quote is not self.last_quote:
            p.engine.show_quote(self.last_quote)
        p.metrics.values.update(zip(self.names, self.values_row.tolist(), strict=True))
        k = self.kernel
        m = p.metrics
        m.late_events, m.invalid_events, m.gaps = k.late_events, k.invalid_events, k.gaps
        m.quotes, m.trades = k.quotes, k.trades
        m.now_ns = p.last_ts
        if p.book is not None:
            p.book_metrics.age(p.book, p.last_ts)
        self._catch_up_peak(self.mids_from, p.engine.money)

    def _state_changed(self, machines: bool) -> None:
        """The screens were made for a state that is gone: screen again from the next row. When
        what the machines read is unchanged (a fill, an order), their flags are reused."""
        self.reusable = [] if machines or self.machines_read_money else self.chain[self.at:]
        self.chain = []
        self.at = 0

    def _signature(self) -> tuple:
        """What the screens depend on besides the rows: (what the machines read: states, timers,
        the risk flags; then money and orders, which only the risk limits read)."""
        p = self.p
        e = p.engine
        v = p.metrics.values  # the book's metrics the layers read change only on depth rows
        book = tuple(None if v[n] != v[n] else v[n] for n in self.book_read)
        machines = (tuple(m.transition_count for m in p.machines), p.risk.screen_key, book)
        return machines, e.money, e.orders_submitted

    # -- the screen -----------------------------------------------------------------------------
    def _screen_at(self, r: int, n: int) -> _Screen:
        """The screen covering row ``r``. Screens run back to back from the last change on."""
        chain = self.chain
        while self.at < len(chain) and chain[self.at].end <= r:
            self.at += 1
        if self.at == len(chain) or chain[self.at].start > r:
            self._sync_holds(r)
            chain.clear()
            self.at = 0
            chain.append(self._make_screen(r, min(n, r + FIRST_SCREEN_ROWS)))
            self.chain_machines = self._signature()[0]
        return chain[self.at]

    def _flagged(self, j: int, n: int) -> bool:
        return self._screen_at(j, n).next_from(j) == j

    def _next_flagged(self, r: int, n: int) -> int:
        s = self._screen_at(r, n)
        i = self.at
        while True:
            f = s.next_from(r)
            if f < s.end or s.end >= n:
                return f
            # nothing flagged: screen further ahead, further each time
            i += 1
            if i < len(self.chain):
                s = self.chain[i]
            else:
                self._sync_holds(s.end)
                s = self._make_screen(s.end, min(n, s.end + SCREEN_GROWTH * (s.end - s.start)))
                self.chain.append(s)

    def _sync_holds(self, j: int) -> None:
        """Set each ``for:`` hold as the scalar path would have it before row ``j``: skipped rows
        only start and reset holds, and the screen knows where."""
        for s in self.chain:
            if s.start <= j - 1 < s.end:
                for m, runs in s.holds:
                    m.catch_up_holds(runs, j - 1 - s.start)
                return

    def _make_screen(self, a: int, b: int) -> _Screen:
        self.stats["screens"] += 1
        old = next((s for s in self.reusable if s.start <= a < s.end), None)
        holds: list = []
        if old is not None:  # the machines' flags still hold: only the risk limits are new
            b = min(b, old.end)
            risk_flags = self._risk_flags(a, b)
            machine_flags, holds = old.machines_part(a, b)
        else:
            self.reusable = []
            self.screen_stop = b - a
            risk_flags = self._risk_flags(a, b)  # first: the machines may read its PnL per row
            machine_flags = True if risk_flags is True else self._machine_flags(a, b, holds)
            if self.screen_stop < b - a:  # a timer's value may change there: stop after it
                b = a + self.screen_stop
                risk_flags = risk_flags if risk_flags is True else risk_flags[:b - a]
                machine_flags, holds = _Screen(a, b, [], machine_flags, holds).machines_part(a, b)
        if risk_flags is True or machine_flags is True or self.decision_varies:
            rows = list(range(a, b))
        else:
            rows = (np.flatnonzero((risk_flags | machine_flags) & self.rows.in_pipeline[a:b]) + a).tolist()
        return _Screen(a, b, rows, machine_flags, holds)

    def _risk_flags(self, a: int, b: int) -> Any:
        """Rows where the risk guard's update could change anything (``RiskGuard.screen``; or
        True: every row, for what cannot be screened); keeps its account values per row, which
        the machines read as ``risk.*``."""
        rows, engine = self.rows, self.p.engine
        mid = rows.engine_mid[a:b]
        if self.last_quote is not None:
            mid = np.where(rows.last_quote[a:b] < 0, self.last_quote.mid, mid)
        metrics = {n: self.M[a:b, i] for n, i in self.col.items()}
        unseen = self._extremes(a, engine.position)  # rows before the screen the guard has not seen
        flags, self.risk_rows = self.p.risk.screen(rows.ts[a:b], metrics, mid, engine, unseen)
        return flags

    def _machine_flags(self, a: int, b: int, holds: list) -> Any:
        """Rows where a machine could change state (``StateMachine.screen``; or True: every row,
        for what cannot be screened), their ``for:`` holds added to ``holds``. Lowers
        ``screen_stop`` to just after a row where a cached timer's value may change."""
        p = self.p
        ts = self.rows.ts[a:b]
        inputs: dict[str, Any] = {f"metrics.{n}": self.M[a:b, i] for n, i in self.col.items()}
        for k, val in p.risk.values.items():
            inputs[f"risk.{k}"] = val
        inputs.update({f"risk.{k}": vec for k, vec in self.risk_rows.items()})
        for m in p.machines:
            inputs[f"{m.spec.name}.state"] = m.state
        for name in p.book_metrics.names:  # constant until the next depth row, but the age
            inputs[f"metrics.{name}"] = p.metrics.values[name]
        if p.book is not None and p.book_metrics.age_names:  # as SymbolBook.age_ms, row by row
            last = self.rows.depth_ts[a:b]
            before = p.book.last_ns  # the depth rows before ``a`` have all been applied
            if before is not None:
                last = np.where(last < 0, before, last)
            with np.errstate(invalid="ignore"):
                age = np.where(last < 0, np.inf, (ts - last) / 1_000_000)
            for name in p.book_metrics.age_names:
                inputs[f"metrics.{name}"] = age
        flags = np.zeros(b - a, np.bool_)
        for m in p.machines:  # in order: each publishes its derived values for the next ones
            s = m.screen(inputs, ts)
            self.screen_stop = min(self.screen_stop, s.rows)  # a timer's value may change there
            if s.holds:
                holds.append((m, s.holds))
            if s.flags is True:
                return True
            flags |= s.flags
        return flags


class BlockRunner:
    """Feeds a replay to a ``Runtime`` a block at a time; see the module doc. Each symbol of the
    session has a lane (``_Lane``: its metrics, its screens); the lanes' rows are visited in the
    order the runtime processes them event by event."""

    def __init__(self, runtime: Runtime, block_rows: int | None = None):
        if not runtime.can_run_blocks():
            raise ValueError("the block runner serves replays without hot reload or an event-by-event strategy")
        self.rt = runtime
        # Events per block (default: BLOCK_ROWS per symbol, so each lane's share is about one
        # symbol's block and a block's fixed costs, numpy calls and screens, stay as spread out)
        self.block_rows = block_rows or BLOCK_ROWS * len(runtime.pipelines)
        self.stats = {"rows": 0, "full": 0, "engine": 0, "screens": 0}
        self.lanes = [_Lane(runtime, p, self.stats) for p in runtime.pipelines.values()]  # the session's order
        self.lane_of = {lane.p.symbol: i for i, lane in enumerate(self.lanes)}
        # across a gap the runtime's proofs read the kernels' stamps, not the scalar metrics'
        runtime.quiet_spans = [QuietSpan(lane.p, lane.kernel.last_stamps) for lane in self.lanes]

    # -- the run --------------------------------------------------------------------------------
    def run(self, events: Iterable, stop: Callable[[], bool] | None = None, progress: Any = None) -> str:
        """Feed every event, a block at a time; returns why it stopped."""
        reason = "end of input"
        for chunk in self._chunks(events):
            finished = self.feed_block(chunk, stop)
            if progress is not None:
                progress.update(len(chunk))
            if not finished or (stop is not None and stop()):
                reason = "interrupted"
                break
        self.catch_up()
        return reason

    def _chunks(self, events: Iterable) -> Iterator[list | EventBlock]:
        """The events a block of at most ``block_rows`` at a time: the reader's own blocks when
        it offers them (``BlockStream``: a chunk of a recording decoded into columns), cut to
        size, else lists of events."""
        size = self.block_rows
        blocks = getattr(events, "blocks", None)
        if blocks is None:
            it = iter(events)
            yield from iter(lambda: list(islice(it, size)), [])
            return
        for block in blocks:
            for a in range(0, len(block), size):
                yield block[a:a + size]

    def catch_up(self) -> None:
        """Bring what the summary reads up to date with the skipped rows (the end of a run)."""
        for lane in self.lanes:
            lane.catch_up()

    def feed_block(self, events: list, stop: Callable[[], bool] | None = None) -> bool:
        """One block of events in time order (what ``Runtime.feed`` would do with each). A gap
        in the data is fed as blocks of at most ``block_rows`` clock ticks up to its quiet part,
        which the clock crosses as it does event by event (``Clock.run_ticks``), so memory and
        work stay bounded and ``stop`` is asked in between; returns False when it said stop."""
        if not len(events):
            return True
        events = EventBlock.from_events(events)
        rt, clock = self.rt, self.rt.clock
        if clock.first_ns is None:
            rt.start(int(events.ts[0]))
        budget = max(self.block_rows, 64)
        while len(events):
            limit = clock.next_tick + budget * clock.tick_ns  # ticks before this time fit in one block
            seen = np.maximum.accumulate(events.ts)
            q = clock.first_quiet_gap(seen)
            i = min(q, int(np.searchsorted(seen, limit, "left")))
            if i:
                self._feed_rows(events[:i])
                clock.saw_data(int(seen[i - 1]))
                events = events[i:]
            elif q == 0 and clock.is_quiet(clock.next_tick):
                if not clock.run_ticks(int(seen[0]), self._provably_quiet, self._quiet_tick, stop):
                    return False
            else:  # a long gap before the first event: a block of its ticks only
                end = clock.last_data_ns + clock.settle_ns if q == 0 else int(seen[0])
                self._feed_rows(EventBlock.from_events([]), until=min(end, limit - 1))
            if stop is not None and stop():
                return False
        return True

    def _provably_quiet(self, t0: int, t1: int) -> bool:
        for lane in self.lanes:  # the proofs read the metrics, as the skipped rows left them
            lane._load_values_row()
        return self.rt.provably_quiet(t0, t1)

    def _quiet_tick(self, t: int, quiet: bool) -> None:
        """A tick of the quiet part of a gap (the only ticks the clock runs here, ``quiet``)."""
        for lane in self.lanes:  # as Runtime._tick: every pipeline in turn
            lane._quiet_tick(t)

    def _feed_rows(self, events: EventBlock, until: int | None = None) -> None:
        rt = self.rt
        parts, latest = self._split(events, until)
        if not parts:
            return
        rt.events += len(events)
        for lane, rows, global_row in parts:
            lane.begin_block(rows, global_row)
        self._merge([lane for lane, _, _ in parts])
        for lane, _, _ in parts:
            lane.end_block()
        rt.clock.now_ns = max(rt.clock.now_ns, latest)

    def _split(self, events: EventBlock, until: int | None) -> tuple[list, int]:
        """Each lane's rows of a block (``_Rows``: its events and the clock ticks up to the last
        of them, or up to ``until`` in a block of no events) with their places in the whole
        block, and the block's latest stamp. The clock moves past the block's ticks."""
        n = len(events)
        seen = np.maximum.accumulate(events.ts)
        ticks = self.rt.clock.block_ticks(int(seen[-1]) if n else until)
        if not n and not len(ticks):
            return [], 0
        latest = int(seen[-1]) if n else int(ticks[-1])
        if len(self.lanes) == 1:  # one symbol: the block's rows are the lane's
            lane = self.lanes[0]
            rows = _Rows(events, seen, ticks, lane.p.symbol, lane.p.last_ts)
            return [(lane, rows, range(rows.n))], latest
        at = np.searchsorted(seen, ticks, "left")  # the event each tick comes before (as in _Rows)
        ev_global = np.arange(n) + np.searchsorted(at, np.arange(n), "right")
        tick_global = at + np.arange(len(ticks))
        # A quote or trade is its symbol's; a feed event too, or every symbol's when it names
        # none of them (Runtime.feed); another symbol's quote or trade is no lane's.
        lane_of_symbol = np.array([self.lane_of.get(s, -1) for s in events.symbols] + [-1], np.int64)
        lane = lane_of_symbol[events.sym]
        kind = _event_kinds(events)
        lane[(kind == FEED) & (lane < 0)] = _EVERY_LANE
        every = lane == _EVERY_LANE
        parts = []
        for i, ln in enumerate(self.lanes):
            idx = np.flatnonzero((lane == i) | every)
            rows = _Rows(events.take(idx), seen[idx], ticks, ln.p.symbol, ln.p.last_ts, kind[idx])
            if rows.n == 0:
                continue
            global_row = np.empty(rows.n, np.int64)
            global_row[rows.ev_row] = ev_global[idx]
            global_row[rows.tick_rows] = tick_global
            parts.append((ln, rows, global_row.tolist()))
        return parts, latest

    def _merge(self, lanes: list[_Lane]) -> None:
        """Visit the rows the lanes ask for in the order of the whole block. A row several lanes
        share (a clock tick, a feed event for every symbol) is visited by each in the session's
        order of symbols, as ``Runtime`` feeds its pipelines; a tick's metrics sample (every
        symbol's) is written once they all have."""
        rt = self.rt
        one = len(lanes) == 1
        while True:
            if one:
                visited = lanes
                if lanes[0].want_global == _NO_ROW:
                    return
            else:
                g = min([ln.want_global for ln in lanes])
                if g == _NO_ROW:
                    return
                visited = [ln for ln in lanes if ln.want_global == g]
            lead = visited[0]
            j = lead.want
            kj = lead.kinds[j]
            ts = lead.times[j]
            if kj == TICK:
                rt.clock.now_ns = ts
            elif kj == GAP or kj == FEED:
                rt.log_feed_event(lead.rows.event[j])
            for ln in visited:
                ln.visit()
            if kj == TICK and ts >= rt.next_sample:
                k = int(np.searchsorted(lead.rows.tick_rows, j, "left"))  # which tick of the block
                for ln in lanes:
                    ln._load_values(int(ln.rows.tick_rows[k]))
                    if ln.p.book is not None:
                        ln.p.book_metrics.age(ln.p.book, ts)
                rt.sample(ts)
            for ln in visited:
                ln.ask()


def run_blocks(runtime: Runtime, events: Iterable, stop: Callable[[], bool] | None = None,
               progress: Any = None) -> str:
    """Feed a finite iterable of events with the fast path; returns why it stopped."""
    return BlockRunner(runtime).run(events, stop, progress)
