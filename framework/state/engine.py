"""The state engine: rolling microstructure metrics per symbol, in event time.

``SymbolMetrics(metric_set)`` consumes one symbol's events and keeps ``values`` (one dict,
the same object for the engine's whole life) up to date after every event, so guards bound
to it once always read the current numbers. Definitions, empty-window values and the
timestamp and feed-gap policies are documented in ``docs/metrics.md``; in short:

- **Event time** is the largest ``ts_ns`` seen so far (``now_ns``). An event older than that
  is applied at ``now_ns`` (clamped) and counted in ``late_events``; equal stamps are normal.
- A window of ``W`` seconds at time ``t`` holds what happened in ``(t - W, t]``.
- Every event and every ``Tick`` evicts expired entries, so in a quiet market rates decay to 0
  and ages grow. Each window keeps only its own entries: memory is bounded by the windows.
- Feed events ``disconnect``, ``gap``, ``stall`` and ``reconnect`` (for this symbol or for the
  whole connection) make the book *unknown* until the next quote: mid, spread, microprice,
  imbalance and spread_to_median read NaN, the mid's path is cut (no return is computed across
  the gap, and the last mid stops being "in force"), ages keep growing from the last real
  quote and trade, and windowed counts keep what was really observed.

Cost per event is O(1) amortized (running sums over deques, monotonic deques for the range)
plus O(log n) for a rolling median (two heaps with lazy removal).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from heapq import heapify, heappop, heappush
from math import inf, log, nan, sqrt

from framework.market.events import FeedEvent, Quote, Tick, Trade

from ..spec.metrics import KINDS, MetricSet

INVALIDATING_FEED_KINDS = frozenset({"disconnect", "gap", "stall", "reconnect"})

_NS_PER_S = 1_000_000_000
_NEVER = 1 << 126  # a time after every event
_BPS = 1e4


class _QuoteWindow:
    """Quotes in the window: count, sum of squared log returns of the mid, crossed count."""

    __slots__ = ("w", "ws", "dq", "r2", "nz", "crossed", "rate", "vol", "cross", "v", "due")

    def __init__(self, w_ns: int, v: dict, rate: tuple, vol: tuple, cross: tuple):
        self.w = w_ns
        self.ws = w_ns / _NS_PER_S
        self.dq: deque = deque()
        self.r2 = 0.0
        self.nz = 0  # nonzero returns in the window: at 0 the sum is reset to exactly 0
        self.crossed = 0
        self.rate, self.vol, self.cross, self.v = rate, vol, cross, v
        self.due = _NEVER  # when the oldest entry leaves: before it, advance() alone is a no-op

    def quote(self, ts: int, r2: float, crossed: int) -> None:
        self.dq.append((ts, r2, crossed))
        if r2:
            self.r2 += r2
            self.nz += 1
        self.crossed += crossed
        self.advance(ts, True)

    def advance(self, now: int, changed: bool = False) -> None:
        dq = self.dq
        cut = now - self.w
        if dq and dq[0][0] <= cut:
            popleft = dq.popleft
            r2 = self.r2
            nz = self.nz
            crossed = self.crossed
            while dq and dq[0][0] <= cut:
                _, a, b = popleft()
                if a:
                    r2 -= a
                    nz -= 1
                crossed -= b
            if not nz:
                r2 = 0.0
            self.r2 = r2
            self.nz = nz
            self.crossed = crossed
        elif not changed:
            return
        v = self.v
        if self.rate:
            x = len(dq) / self.ws
            for n in self.rate:
                v[n] = x
        if self.vol:
            r2 = self.r2
            x = sqrt(r2) * _BPS if r2 > 0.0 else 0.0
            for n in self.vol:
                v[n] = x
        if self.cross:
            x = float(self.crossed)
            for n in self.cross:
                v[n] = x
        self.due = dq[0][0] + self.w if dq else _NEVER

    def __len__(self) -> int:
        return len(self.dq)


class _TradeWindow:
    """Trades in the window: count, base volume, quote volume, aggressive-buy base volume."""

    __slots__ = ("w", "ws", "dq", "qty", "notional", "buy", "rate", "vb", "vq", "br", "v", "due")

    def __init__(self, w_ns: int, v: dict, rate: tuple, vb: tuple, vq: tuple, br: tuple):
        self.w = w_ns
        self.ws = w_ns / _NS_PER_S
        self.dq: deque = deque()
        self.qty = self.notional = self.buy = 0.0
        self.rate, self.vb, self.vq, self.br, self.v = rate, vb, vq, br, v
        self.due = _NEVER  # when the oldest entry leaves: before it, advance() alone is a no-op

    def trade(self, ts: int, qty: float, notional: float, buy: float) -> None:
        self.dq.append((ts, qty, notional, buy))
        self.qty += qty
        self.notional += notional
        self.buy += buy
        self.advance(ts, True)

    def advance(self, now: int, changed: bool = False) -> None:
        dq = self.dq
        cut = now - self.w
        if dq and dq[0][0] <= cut:
            popleft = dq.popleft
            q = self.qty
            nt = self.notional
            b = self.buy
            while dq and dq[0][0] <= cut:
                _, a, c, d = popleft()
                q -= a
                nt -= c
                b -= d
            if not dq:
                q = nt = b = 0.0
            self.qty, self.notional, self.buy = q, nt, b
        elif not changed:
            return
        v = self.v
        ws = self.ws
        if self.rate:
            x = len(dq) / ws
            for n in self.rate:
                v[n] = x
        if self.vb:
            x = self.qty / ws if dq else 0.0
            for n in self.vb:
                v[n] = x
        if self.vq:
            x = self.notional / ws if dq else 0.0
            for n in self.vq:
                v[n] = x
        if self.br:
            q = self.qty
            if dq and q > 0.0:
                x = self.buy / q
                x = 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)
            else:
                x = nan
            for n in self.br:
                v[n] = x
        self.due = dq[0][0] + self.w if dq else _NEVER

    def __len__(self) -> int:
        return len(self.dq)


class _RangeWindow:
    """Max and min of the mid over the window, counting the mid in force at the window start.

    Each quote's mid is in force from its stamp until the next quote (or a feed gap). Closed
    segments sit in monotonic deques keyed by their end; the open one is ``cur``.
    """

    __slots__ = ("w", "hi", "lo", "cur", "names", "v", "due")

    def __init__(self, w_ns: int, v: dict, names: tuple):
        self.w = w_ns
        self.hi: deque = deque()
        self.lo: deque = deque()
        self.cur: float | None = None
        self.names, self.v = names, v
        self.due = _NEVER  # when the oldest entry leaves: before it, advance() alone is a no-op

    def close(self, ts: int) -> None:
        c = self.cur
        if c is None:
            return
        hi = self.hi
        while hi and hi[-1][1] <= c:
            hi.pop()
        hi.append((ts, c))
        lo = self.lo
        while lo and lo[-1][1] >= c:
            lo.pop()
        lo.append((ts, c))
        self.cur = None

    def quote(self, ts: int, mid: float) -> None:
        c = self.cur
        if c is not None:  # close() inlined: this is the hot path
            hi = self.hi
            while hi and hi[-1][1] <= c:
                hi.pop()
            hi.append((ts, c))
            lo = self.lo
            while lo and lo[-1][1] >= c:
                lo.pop()
            lo.append((ts, c))
        self.cur = mid
        self.advance(ts, True)

    def gap(self, ts: int) -> None:
        self.close(ts)
        self.advance(ts, True)

    def advance(self, now: int, changed: bool = False) -> None:
        cut = now - self.w
        hi = self.hi
        lo = self.lo
        if (hi and hi[0][0] <= cut) or (lo and lo[0][0] <= cut):
            while hi and hi[0][0] <= cut:
                hi.popleft()
            while lo and lo[0][0] <= cut:
                lo.popleft()
        elif not changed:
            return
        c = self.cur
        if c is None:
            if not hi:
                x = nan
            else:
                mn = lo[0][1]
                x = (hi[0][1] - mn) / mn * _BPS
        else:
            mx = hi[0][1] if hi and hi[0][1] > c else c
            mn = lo[0][1] if lo and lo[0][1] < c else c
            x = (mx - mn) / mn * _BPS
        for n in self.names:
            self.v[n] = x
        self.due = min(hi[0][0] if hi else _NEVER, lo[0][0] if lo else _NEVER) + self.w

    def __len__(self) -> int:
        return len(self.hi) + len(self.lo)


class _MedianWindow:
    """spread_bps now over the median spread_bps in the window (same sample rule as the range).

    The window's values sit in two heaps: ``lo`` (a max-heap, negated) holds the lower half and
    ``hi`` the upper half, ``lo`` one longer when the count is odd, so the median is read off
    the tops. A value leaving the window is only counted in ``gone`` and dropped when it reaches
    a top; when dropped values outnumber live ones the heaps are rebuilt from the live values,
    so memory stays bounded by the window. (A sorted list with positional lookups cost about
    three times as much per quote.)
    """

    __slots__ = ("w", "lo", "hi", "n_lo", "n_hi", "gone", "n_gone", "dq", "cur", "names", "v", "due")

    def __init__(self, w_ns: int, v: dict, names: tuple):
        self.w = w_ns
        self.lo: list[float] = []  # negated values: lo[0] is minus the largest of the lower half
        self.hi: list[float] = []
        self.n_lo = self.n_hi = 0  # live values in each heap
        self.gone: dict[float, int] = {}  # value -> removed instances still inside a heap
        self.n_gone = 0
        self.dq: deque = deque()
        self.cur: float | None = None
        self.names, self.v = names, v
        self.due = _NEVER  # when the oldest entry leaves: before it, advance() alone is a no-op

    # -- the two heaps --------------------------------------------------------------------
    def _prune(self) -> None:
        """Drop removed values from both tops."""
        gone = self.gone
        if not gone:
            return
        lo = self.lo
        while lo and -lo[0] in gone:
            x = -heappop(lo)
            self._forget(x)
        hi = self.hi
        while hi and hi[0] in gone:
            x = heappop(hi)
            self._forget(x)

    def _forget(self, x: float) -> None:
        c = self.gone[x] - 1
        if c:
            self.gone[x] = c
        else:
            del self.gone[x]
        self.n_gone -= 1

    def _balance(self) -> None:
        self._prune()
        if self.n_lo > self.n_hi + 1:
            heappush(self.hi, -heappop(self.lo))
            self.n_lo -= 1
            self.n_hi += 1
            self._prune()
        elif self.n_lo < self.n_hi:
            heappush(self.lo, -heappop(self.hi))
            self.n_hi -= 1
            self.n_lo += 1
            self._prune()

    def _add(self, x: float) -> None:
        if self.n_lo and x <= -self.lo[0]:
            heappush(self.lo, -x)
            self.n_lo += 1
        elif self.n_hi and x >= self.hi[0]:
            heappush(self.hi, x)
            self.n_hi += 1
        elif self.n_lo <= self.n_hi:
            heappush(self.lo, -x)
            self.n_lo += 1
        else:
            heappush(self.hi, x)
            self.n_hi += 1
        self._balance()

    def _remove(self, x: float) -> None:
        # Every live value of lo is <= every live value of hi, so the side is known by value.
        self.gone[x] = self.gone.get(x, 0) + 1
        self.n_gone += 1
        if self.n_lo and x <= -self.lo[0]:
            self.n_lo -= 1
        else:
            self.n_hi -= 1
        if self.n_gone > 64 and self.n_gone > self.n_lo + self.n_hi:
            self._rebuild()
        else:
            self._balance()

    def _rebuild(self) -> None:
        live = sorted(x for _, x in self.dq)
        if self.cur is not None:
            live.append(self.cur)
            live.sort()
        h = (len(live) + 1) >> 1
        self.lo = [-x for x in live[:h]]
        heapify(self.lo)
        self.hi = live[h:]
        heapify(self.hi)
        self.n_lo, self.n_hi = h, len(live) - h
        self.gone = {}
        self.n_gone = 0

    # -- the window -----------------------------------------------------------------------
    def quote(self, ts: int, s: float) -> None:
        if self.cur is not None:
            self.dq.append((ts, self.cur))
        self.cur = s
        self._add(s)
        self.advance(ts, True)

    def gap(self, ts: int) -> None:
        if self.cur is not None:
            self.dq.append((ts, self.cur))
            self.cur = None
        self.advance(ts, True)

    def advance(self, now: int, changed: bool = False) -> None:
        dq = self.dq
        cut = now - self.w
        if dq and dq[0][0] <= cut:
            popleft = dq.popleft
            remove = self._remove
            while dq and dq[0][0] <= cut:
                remove(popleft()[1])
        elif not changed:
            return
        c = self.cur
        x = nan
        if c is not None:
            # (lo top + hi top) / 2 for an even count: the same operands, in the same order, as
            # the two middle values of the sorted window
            med = -self.lo[0] if (self.n_lo + self.n_hi) & 1 else (-self.lo[0] + self.hi[0]) * 0.5
            if med > 0.0:
                x = c / med
        for n in self.names:
            self.v[n] = x
        self.due = self.dq[0][0] + self.w if self.dq else _NEVER

    def __len__(self) -> int:
        return len(self.dq) + self.n_lo + self.n_hi


class _Derived:
    """A metric computed from another one (``of``) sampled on a fixed event-time cadence.

    The first event of each ``sample_s`` period of event time (now // sample) takes one sample:
    the source's value after that event, skipped when it is not finite (a book in a gap, an age
    before the first quote). ``rolling_quantile`` keeps the samples stamped in (now - W, now] in
    arrival order and sorted, and reads the quantile by linear interpolation between the two
    nearest ranks; ``ewma`` folds each sample in with weight ``alpha``. Both read NaN until
    ``min_samples`` samples (the minimum history) are held, so a baseline exists only once it
    has seen enough of the market, then grows up to its full window. Memory is bounded by the
    window's samples, whatever the event rate.
    """

    __slots__ = ("name", "src", "sample", "bucket", "min", "quantile", "w", "q", "dq", "sorted",
                 "alpha", "ewma", "count", "v", "next_due")

    def __init__(self, spec, v: dict):
        self.name = spec.name
        self.src = spec.of
        self.sample = spec.sample_ns
        self.bucket = -(1 << 62)
        self.min = spec.min_samples
        self.quantile = spec.kind == "rolling_quantile"
        self.w = spec.window_ns
        self.q = spec.quantile
        self.dq: deque = deque()
        self.sorted: list[float] = []
        self.alpha = spec.alpha
        self.ewma = nan
        self.count = 0
        self.v = v
        # The first event time at which advancing can change anything: the next sample period
        # starts, or the oldest held sample leaves the window. Event time never goes back, so
        # before it an advance is a no-op and is skipped (see due_at).
        self.next_due = -(1 << 63)

    def advance(self, now: int) -> None:
        if now < self.next_due:
            return
        self._advance(now)
        self.next_due = self.due_at()

    def due_at(self) -> int:
        """When the next advance can change something: the start of the next sample period
        (``now // sample`` differs from the current one), or when the oldest held sample
        leaves (its stamp <= now - W)."""
        due = (self.bucket + 1) * self.sample
        if self.quantile and self.dq:
            expiry = self.dq[0][0] + self.w
            if expiry < due:
                due = expiry
        return due

    def _advance(self, now: int) -> None:
        """One step at ``now``, whether or not it is due: the reference the skipping is checked
        against."""
        b = now // self.sample
        took = False
        x = 0.0
        if b != self.bucket:
            self.bucket = b
            x = self.v[self.src]
            took = -inf < x < inf
        if self.quantile:
            s = self.sorted
            if took:
                self.dq.append((now, x))
                insort(s, x)
            dq = self.dq
            cut = now - self.w
            changed = took
            while dq and dq[0][0] <= cut:
                del s[bisect_left(s, dq.popleft()[1])]
                changed = True
            if changed:
                n = len(s)
                self.v[self.name] = quantile_of_sorted(s, n, self.q) if n >= self.min else nan
        elif took:
            e = self.ewma
            self.ewma = e = x if self.count == 0 else e + self.alpha * (x - e)
            self.count += 1
            self.v[self.name] = e if self.count >= self.min else nan

    def __len__(self) -> int:
        return len(self.dq)


def quantile_of_sorted(s, n: int, q: float) -> float:
    """The q-quantile of the sorted values s[:n], interpolated linearly between the nearest
    ranks (numpy's default method); the kernel repeats these operations in this order."""
    h = q * (n - 1)
    i = int(h)
    x = s[i]
    if i + 1 < n:
        f = h - i
        if f > 0.0:
            x = x + (s[i + 1] - x) * f
    return x


def _group(metric_set: MetricSet, kinds: tuple[str, ...]) -> dict[int, dict[str, list[str]]]:
    """window_ns -> kind -> names, for the given windowed kinds."""
    out: dict[int, dict[str, list[str]]] = {}
    for m in metric_set:
        if m.kind in kinds:
            out.setdefault(m.window_ns, {k: [] for k in kinds})[m.kind].append(m.name)
    return out


class SymbolMetrics:
    """Rolling metrics of one symbol. Feed it events in (roughly) time order.

    ``values`` maps every declared metric name to its current float value; it is the same dict
    object for the engine's whole life and is updated in place after each event.

    ``symbol`` (optional) filters feed events: those naming another symbol are ignored, those
    with ``symbol == ""`` (the whole connection) apply. Quotes and trades are not filtered.
    """

    engine = "reference engine"  # the live path may run the compiled kernel instead (kernel.py)

    def __init__(self, metric_set: MetricSet, symbol: str = ""):
        self.metric_set = metric_set
        self.symbol = symbol
        self.values: dict[str, float] = metric_set.initial_values()
        self.now_ns: int | None = None
        self.late_events = 0  # events stamped before now_ns, applied at now_ns
        self.invalid_events = 0  # quotes/trades with non-finite or non-positive numbers
        self.gaps = 0  # invalidating feed events applied
        self.quotes = 0
        self.trades = 0
        self._now = -(1 << 62)
        self._qts: int | None = None
        self._tts: int | None = None
        self._prev_mid: float | None = None
        v = self.values

        def names(kind: str) -> tuple[str, ...]:
            return tuple(m.name for m in metric_set if m.kind == kind)

        self._mid = names("mid")
        self._spread = names("spread")
        self._spread_bps = names("spread_bps")
        self._micro = names("microprice")
        self._imb = names("imbalance")
        self._book_names = self._mid + self._spread + self._spread_bps + self._micro + self._imb
        self._qage = names("quote_age")
        self._tage = names("trade_age")
        q = _group(metric_set, ("quote_rate", "realized_vol", "crossed_count"))
        self._qw = tuple(_QuoteWindow(w, v, tuple(d["quote_rate"]), tuple(d["realized_vol"]),
                                      tuple(d["crossed_count"])) for w, d in q.items())
        t = _group(metric_set, ("trade_rate", "volume_base_rate", "volume_quote_rate", "buy_ratio"))
        self._tw = tuple(_TradeWindow(w, v, tuple(d["trade_rate"]), tuple(d["volume_base_rate"]),
                                      tuple(d["volume_quote_rate"]), tuple(d["buy_ratio"]))
                         for w, d in t.items())
        r = _group(metric_set, ("mid_move",))
        self._rw = tuple(_RangeWindow(w, v, tuple(d["mid_move"])) for w, d in r.items())
        m = _group(metric_set, ("spread_to_median",))
        self._mw = tuple(_MedianWindow(w, v, tuple(d["spread_to_median"])) for w, d in m.items())
        self._need_r2 = any(s.vol for s in self._qw)
        self._derived = tuple(_Derived(m, v) for m in metric_set if KINDS[m.kind].derived)
        self._derived_due = -(1 << 63) if self._derived else _NEVER  # the earliest next_due
        self._all = self._qw + self._tw + self._rw + self._mw
        self._non_quote = self._tw
        self._non_trade = self._qw + self._rw + self._mw
        self._dispatch = {Quote: self.on_quote, Trade: self.on_trade, Tick: self.on_tick,
                          FeedEvent: self.on_feed}

    def warm_up(self) -> None:
        """Nothing to load (the compiled kernel's ``warm_up`` loads its code)."""

    # -- events ---------------------------------------------------------------------------

    def on_event(self, ev) -> None:
        """Any market event: Quote, Trade, FeedEvent or Tick."""
        if type(ev) is Tick:
            self.on_tick(ev.ts_ns)
        else:
            self._dispatch[type(ev)](ev)

    def on_quote(self, q: Quote) -> None:
        ts = q.ts_ns
        if ts < self._now:
            ts = self._now
            self.late_events += 1
        else:
            self._now = ts
        self.now_ns = ts
        bid = q.bid
        ask = q.ask
        bq = q.bid_qty
        aq = q.ask_qty
        if not (0.0 < bid < inf and 0.0 < ask < inf and 0.0 <= bq < inf and 0.0 <= aq < inf):
            self.invalid_events += 1
            self._advance(ts)
            return
        self.quotes += 1
        self._qts = ts
        v = self.values
        mid = (bid + ask) * 0.5
        spread = ask - bid
        sbps = spread / mid * _BPS
        for n in self._mid:
            v[n] = mid
        for n in self._spread:
            v[n] = spread
        for n in self._spread_bps:
            v[n] = sbps
        if self._micro or self._imb:
            depth = bq + aq
            if depth > 0.0:
                micro = (bid * aq + ask * bq) / depth
                imb = (bq - aq) / depth
            else:
                micro = mid
                imb = nan
            for n in self._micro:
                v[n] = micro
            for n in self._imb:
                v[n] = imb
        prev = self._prev_mid
        self._prev_mid = mid
        if self._need_r2 and prev is not None:
            r = log(mid / prev)
            r2 = r * r
        else:
            r2 = 0.0
        crossed = 1 if bid >= ask else 0
        for s in self._qw:
            s.quote(ts, r2, crossed)
        for s in self._rw:
            s.quote(ts, mid)
        for s in self._mw:
            s.quote(ts, sbps)
        for s in self._tw:
            if ts >= s.due:
                s.advance(ts)
        for n in self._qage:
            v[n] = 0.0
        if self._tage:
            x = (ts - self._tts) * 1e-6 if self._tts is not None else inf
            for n in self._tage:
                v[n] = x
        if ts >= self._derived_due:
            self._advance_derived(ts)

    def on_trade(self, t: Trade) -> None:
        ts = t.ts_ns
        if ts < self._now:
            ts = self._now
            self.late_events += 1
        else:
            self._now = ts
        self.now_ns = ts
        price = t.price
        qty = t.qty
        if not (0.0 < price < inf and 0.0 < qty < inf):
            self.invalid_events += 1
            self._advance(ts)
            return
        self.trades += 1
        self._tts = ts
        buy = 0.0 if t.buyer_is_maker else qty
        notional = price * qty
        for s in self._tw:
            s.trade(ts, qty, notional, buy)
        for s in self._non_trade:
            if ts >= s.due:
                s.advance(ts)
        v = self.values
        for n in self._tage:
            v[n] = 0.0
        if self._qage:
            x = (ts - self._qts) * 1e-6 if self._qts is not None else inf
            for n in self._qage:
                v[n] = x
        if ts >= self._derived_due:
            self._advance_derived(ts)

    def on_tick(self, ts_ns: int) -> None:
        """Advance event time to ``ts_ns`` (no-op if not later than now): evict, age."""
        if ts_ns <= self._now:
            return
        self._now = ts_ns
        self.now_ns = ts_ns
        self._advance(ts_ns)

    def on_feed(self, ev: FeedEvent) -> None:
        if ev.symbol and self.symbol and ev.symbol != self.symbol:
            return
        ts = ev.ts_ns
        if ts < self._now:
            ts = self._now
            self.late_events += 1
        else:
            self._now = ts
        self.now_ns = ts
        if ev.kind in INVALIDATING_FEED_KINDS:
            self.gaps += 1
            self._prev_mid = None
            v = self.values
            for n in self._book_names:
                v[n] = nan
            for s in self._rw:
                s.gap(ts)
            for s in self._mw:
                s.gap(ts)
        self._advance(ts)

    def _advance(self, ts: int) -> None:
        for s in self._all:
            if ts >= s.due:
                s.advance(ts)
        v = self.values
        if self._qage and self._qts is not None:
            x = (ts - self._qts) * 1e-6
            for n in self._qage:
                v[n] = x
        if self._tage and self._tts is not None:
            x = (ts - self._tts) * 1e-6
            for n in self._tage:
                v[n] = x
        if ts >= self._derived_due:
            self._advance_derived(ts)

    def _advance_derived(self, ts: int) -> None:
        """Advance the baselines that are due (most events fall inside a sample period and
        leave them alone) and note when the next one is."""
        due = _NEVER
        for d in self._derived:
            if ts >= d.next_due:
                d.advance(ts)
            if d.next_due < due:
                due = d.next_due
        self._derived_due = due

    # -- introspection ----------------------------------------------------------------------

    def last_stamps(self) -> tuple[int | None, int | None]:
        """The times of the last valid quote and trade (None before any): the ages at any later
        time follow from them."""
        return self._qts, self._tts

    def buffered(self) -> int:
        """Entries held by all windows (bounded by the events inside the windows)."""
        return sum(len(s) for s in self._all) + sum(len(d) for d in self._derived)

    def watch_slot(self, owner: str) -> None:
        """Cells checked as the metrics are computed (``KernelMetrics.watch_slot``): the
        reference engine has none, its watchers check their cells themselves."""
        return None

    def stats(self) -> dict[str, int]:
        return {"quotes": self.quotes, "trades": self.trades, "late_events": self.late_events,
                "invalid_events": self.invalid_events, "gaps": self.gaps}


class MultiSymbolMetrics:
    """One :class:`SymbolMetrics` per symbol, created on first use.

    Quotes, trades and feed events naming a symbol go to that symbol; feed events with
    ``symbol == ""`` and ticks go to every symbol. ``for_symbol(s).values`` is stable: bind
    guards to it before the first event if needed.
    """

    def __init__(self, metric_set: MetricSet, symbols=()):
        self.metric_set = metric_set
        self.symbols: dict[str, SymbolMetrics] = {}
        for s in symbols:
            self.for_symbol(s)

    def for_symbol(self, symbol: str) -> SymbolMetrics:
        sm = self.symbols.get(symbol)
        if sm is None:
            sm = self.symbols[symbol] = SymbolMetrics(self.metric_set, symbol)
        return sm

    def values(self, symbol: str) -> dict[str, float]:
        return self.for_symbol(symbol).values

    def on_event(self, ev) -> None:
        tp = type(ev)
        if tp is Quote:
            sm = self.symbols.get(ev.symbol) or self.for_symbol(ev.symbol)
            sm.on_quote(ev)
        elif tp is Trade:
            sm = self.symbols.get(ev.symbol) or self.for_symbol(ev.symbol)
            sm.on_trade(ev)
        elif tp is Tick:
            for sm in self.symbols.values():
                sm.on_tick(ev.ts_ns)
        elif tp is FeedEvent:
            if ev.symbol:
                self.for_symbol(ev.symbol).on_feed(ev)
            else:
                for sm in self.symbols.values():
                    sm.on_feed(ev)
        else:
            raise TypeError(f"not a market event: {ev!r}")

    def on_tick(self, ts_ns: int) -> None:
        for sm in self.symbols.values():
            sm.on_tick(ts_ns)
