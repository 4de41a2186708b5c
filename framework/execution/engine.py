"""The paper execution engine: simulated orders against the live BBO and trade prints.

One engine per symbol. The runtime feeds it every market event of its symbol (``on_quote``,
``on_trade``) and every clock tick (``on_tick``), and submits intents with ``submit``. Nothing
here reads the wall clock: every time is event time ``ts_ns``; latency jitter is drawn from a
seeded generator. The fill model (docs/execution.md) in one paragraph:

- At creation an order's quantity and limit price are rounded to the exchange's lot step and
  tick, or the order is refused naming the filter (``filters.py``, Binance exchangeInfo).
- An order reaches the exchange at decision time + latency and is judged against the last
  quote with ``ts_ns <= arrival`` (events at the arrival instant count as before it).
- A taker order fills at the arrival touch up to the displayed size (less whatever our own
  earlier taker orders already took from that same quote), never better. The rest is cancelled
  (``partial``) or filled at successively worse prices (``walk``).
- A passive order that would cross at arrival is rejected (post-only). Otherwise it rests with
  an estimated queue ahead: the displayed size when it joins the touch, 0 when it improves it,
  unknown when it is behind the touch (set to the displayed size when the touch comes to it).
  The queue shrinks by prints at our price whose aggressor is on the other side, and by the
  share of unexplained drops of the level that the queue model (``queue.py``) puts ahead of us.
  We fill from prints at our price once the queue is consumed, or from prints through our price
  (at our price). Shadow queue models judge the same orders without moving the position.
- Scheduled things (arrivals, cancels, TTL expiries, markout horizons) due at time X happen
  before the first event with ``ts_ns > X`` is applied. Records carry the time X itself.

Per-event cost: a handful of attribute checks when nothing is open and no markout is pending;
otherwise O(open orders + markouts due).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from framework.market.events import Quote, Trade

from ..spec import records
from .config import ExecutionConfig
from .filters import SymbolRules, check_order, load_rules, resolve_rules
from .latency import LatencyModel
from .queue import QUOTE_THROUGH, QueuePosition

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
_FAR = 1 << 62

Emit = Callable[[dict], Any]


def _r(x: float | None, nd: int = 6) -> float | None:
    """Round a derived float (bps, ms, usd) for records; prices and sizes are kept exact."""
    return None if x is None else round(x, nd)


def _hkey(h: float) -> str:
    return f"{h:g}s"


class _Fill:
    __slots__ = ("order", "ts_ns", "price", "qty", "markouts")

    def __init__(self, order: _Order, ts_ns: int, price: float, qty: float, n_h: int):
        self.order = order
        self.ts_ns = ts_ns
        self.price = price
        self.qty = qty
        self.markouts: list[float | None] = [None] * n_h


class _Order:
    __slots__ = (
        "id", "intent_id", "side", "sgn", "qty", "style", "price", "labels", "decision_ts",
        "decision_mid", "arrival_ts", "ack_latency_ns", "ttl_ns", "expire_at", "cancel_at",
        "cancel_reason", "cancel_requested_ts", "state", "final", "final_reason", "final_ts",
        "filled", "notional", "fees", "first_fill_ts", "complete_ts", "arrival_mid",
        "qpos", "shadows", "shadowing", "vol_at", "vol_through",
        "through_seen", "placement", "fills", "mk_pending", "plausible", "implausible", "eps",
        "seq", "how_qty",
    )

    def __init__(self) -> None:
        self.state = "pending"  # pending -> resting -> done
        self.final = ""  # filled | cancelled | rejected (when done)
        self.final_reason = ""
        self.final_ts = 0
        self.filled = 0.0
        self.notional = 0.0
        self.fees = 0.0
        self.first_fill_ts: int | None = None
        self.complete_ts: int | None = None
        self.arrival_mid: float | None = None
        self.cancel_at: int | None = None
        self.cancel_reason = ""
        self.cancel_requested_ts: int | None = None
        self.expire_at: int | None = None
        self.qpos: QueuePosition | None = None  # the acting queue model's position (passive)
        self.shadows: list[_Shadow] = []  # the other queue models on the same order
        self.shadowing = False  # some shadow still rests (keeps the order from being finalised)
        self.vol_at = 0.0
        self.vol_through = 0.0
        self.through_seen = False
        self.placement = ""
        self.fills: list[_Fill] = []
        self.mk_pending = 0
        self.plausible = 0
        self.implausible = 0
        self.how_qty: dict[str, float] = {}

    @property
    def remaining(self) -> float:
        return max(self.qty - self.filled, 0.0)

    @property
    def queue(self) -> float | None:
        """Estimated quantity ahead under the acting queue model (None: unknown, or not passive)."""
        return None if self.qpos is None else self.qpos.front

    @property
    def queue0(self) -> float | None:
        return None if self.qpos is None else self.qpos.front0


class _Shadow:
    """One shadow queue model's view of a passive order: its own queue position and fills.
    Shadows move no position and write no fill records; they are reported per order."""

    __slots__ = ("pos", "filled", "notional", "fills", "live")

    def __init__(self, pos: QueuePosition):
        self.pos = pos
        self.filled = 0.0
        self.notional = 0.0
        self.fills: list[_Fill] = []
        self.live = True


class _Agg:
    """Running sums for one aggregation bucket (all orders, or one label value)."""

    __slots__ = (
        "orders", "rejected", "cancelled", "with_fill", "fills", "complete", "qty_ordered", "qty_filled",
        "notional_ordered", "notional_filled", "fees", "lat_sum", "lat_n", "ttff_sum", "ttff_n",
        "ttf_sum", "ttf_n", "slip_dec_w", "slip_arr_w", "slip_w", "mk_sum", "mk_w", "mk_n",
        "mk_unres", "plausible", "implausible",
    )

    def __init__(self, n_h: int):
        for k in self.__slots__:
            setattr(self, k, 0)
        self.mk_sum = [0.0] * n_h
        self.mk_w = [0.0] * n_h
        self.mk_n = [0] * n_h
        self.mk_unres = [0] * n_h

    def copy(self) -> _Agg:
        c = _Agg.__new__(_Agg)
        for k in self.__slots__:
            v = getattr(self, k)
            setattr(c, k, list(v) if isinstance(v, list) else v)
        return c

    def add(self, o: _Order, decision_notional: float) -> None:
        self.orders += 1
        if o.final == "rejected":
            self.rejected += 1
        elif o.final == "cancelled":
            self.cancelled += 1
        self.qty_ordered += o.qty
        self.notional_ordered += decision_notional
        if o.arrival_mid is not None:
            self.lat_sum += (o.arrival_ts - o.decision_ts) / NS_PER_MS
            self.lat_n += 1
        self.fills += len(o.fills)
        if o.filled > 0:
            self.with_fill += 1
            self.qty_filled += o.filled
            self.notional_filled += o.notional
            self.fees += o.fees
            self.ttff_sum += (o.first_fill_ts - o.decision_ts) / NS_PER_MS
            self.ttff_n += 1
            avg = o.notional / o.filled
            self.slip_dec_w += _slip_bps(o.sgn, avg, o.decision_mid) * o.notional
            self.slip_arr_w += _slip_bps(o.sgn, avg, o.arrival_mid) * o.notional
            self.slip_w += o.notional
        if o.complete_ts is not None:
            self.complete += 1
            self.ttf_sum += (o.complete_ts - o.decision_ts) / NS_PER_MS
            self.ttf_n += 1
        for f in o.fills:
            w = f.price * f.qty
            for i, m in enumerate(f.markouts):
                if m is None:
                    self.mk_unres[i] += 1
                else:
                    self.mk_sum[i] += m * w
                    self.mk_w[i] += w
                    self.mk_n[i] += 1
        self.plausible += o.plausible
        self.implausible += o.implausible

    def report(self, horizons: tuple[float, ...]) -> dict:
        def mean(s: float, n: float) -> float | None:
            return _r(s / n) if n else None

        return {
            "orders": self.orders,
            "rejected": self.rejected,
            "cancelled": self.cancelled,
            "orders_with_fill": self.with_fill,
            "fills": self.fills,
            "orders_complete": self.complete,
            "qty_ordered": _r(self.qty_ordered, 10),
            "qty_filled": _r(self.qty_filled, 10),
            "fill_ratio": _r(self.qty_filled / self.qty_ordered) if self.qty_ordered else None,
            "notional_ordered_usd": _r(self.notional_ordered),
            "notional_filled_usd": _r(self.notional_filled),
            "fees_usd": _r(self.fees),
            "latency_ms_mean": mean(self.lat_sum, self.lat_n),
            "time_to_first_fill_ms_mean": mean(self.ttff_sum, self.ttff_n),
            "time_to_fill_ms_mean": mean(self.ttf_sum, self.ttf_n),
            "slippage_decision_bps": mean(self.slip_dec_w, self.slip_w),
            "slippage_arrival_bps": mean(self.slip_arr_w, self.slip_w),
            "markout_bps": {_hkey(h): mean(self.mk_sum[i], self.mk_w[i]) for i, h in enumerate(horizons)},
            "markout_resolved_fills": {_hkey(h): self.mk_n[i] for i, h in enumerate(horizons)},
            "markout_unresolved_fills": {_hkey(h): self.mk_unres[i] for i, h in enumerate(horizons)},
            "passive_fills_plausible": self.plausible,
            "passive_fills_implausible": self.implausible,
        }


def _slip_bps(sgn: int, price: float, mid: float | None) -> float:
    """Cost of trading at ``price`` against ``mid`` in bps; positive = cost."""
    if not mid:
        return 0.0
    return sgn * (price - mid) / mid * 1e4


def _markout_bps(sgn: int, fill_price: float, mid: float) -> float:
    """Move of the mid after a fill relative to the fill price; positive = favourable."""
    return sgn * (mid - fill_price) / fill_price * 1e4


class PaperEngine:
    """Paper orders for one symbol; see the module docstring and docs/execution.md."""

    def __init__(self, symbol: str, cfg: ExecutionConfig | None, emit: Emit, seed: int | str = 0):
        self.symbol = symbol
        self.cfg = cfg = cfg or ExecutionConfig()
        self._emit = emit
        self._latency = LatencyModel(cfg.latency, random.Random(f"paper-latency:{seed}:{symbol}"))
        self._queue_models = cfg.passive.queue_models()  # the acting model first, then the shadows
        self._shadowed: list[_Order] = []  # orders with a shadow still resting, in arrival order
        self._quote_through = any(m.fill_on_quote_through for m in self._queue_models)
        self._levels_from_book = False  # True once on_level feeds the queue models
        self._level_source: Callable[[str, float], float | None] | None = None  # the book's level at a price
        self._tick = cfg.tick_size
        self._tick_dp = max(0, -Decimal(repr(cfg.tick_size)).normalize().as_tuple().exponent)
        self._maker = cfg.fees.maker_bps / 1e4
        self._taker = cfg.fees.taker_bps / 1e4
        self._horizons = tuple(cfg.markout_horizons_s)
        self._h_ns = tuple(int(round(h * NS_PER_S)) for h in self._horizons)
        self._mk: list[deque] = [deque() for _ in self._horizons]
        self._mk_count = 0
        self._q: Quote | None = None
        self._taken_q: Quote | None = None  # the quote our takers consumed displayed size from
        self._taken_bid = 0.0
        self._taken_ask = 0.0
        self._book: Any = None  # the symbol's SymbolBook when the session has depth (attach_book)
        self._level_seen: dict[tuple[int, float], float | None] = {}  # (sgn, price) -> book qty fed to the queues
        self._consumed: dict[tuple[int, float], list[float]] = {}  # (sgn, price) -> [taken, book qty then]
        self._fill_model = "top"  # which model judges the fill being made: "top" or "book"
        self._pending: list[tuple[int, int, _Order]] = []  # heap of (arrival_ts, seq, order)
        self._resting: list[_Order] = []  # in arrival order
        self._deadline = _FAR  # earliest cancel/expiry among resting orders
        self._orders: dict[str, _Order] = {}  # not yet finalised (open, or markouts pending)
        self._seq = 0
        self.submit_times: deque[int] = deque(maxlen=4096)  # decision ts of recent submits
        # position and PnL (quote currency, assumed USD)
        self._pos = 0.0
        self._avg = 0.0
        self._realized = 0.0
        self._fees = 0.0
        self.money = (0.0, 0.0, 0.0, 0.0)  # (position, avg_price, realized_pnl, fees_paid), a new tuple per fill
        # aggregates of finalised orders
        n_h = len(self._horizons)
        self._all = _Agg(n_h)
        self._by: dict[str, dict[str, _Agg]] = {}
        self._rejects: dict[str, int] = {}
        self._cancels: dict[str, int] = {}
        self._n_plausible = 0  # over every passive fill so far, open orders included
        self._n_implausible = 0
        self._rules: SymbolRules | None = None  # the exchange's filters, resolved at the first order
        self._rules_resolved = False
        if cfg.exchange_rules.enabled and cfg.exchange_rules.file:
            load_rules(cfg.exchange_rules.file)  # a missing or broken file stops the run at its start

    # ---------------------------------------------------------------- public state

    @property
    def position(self) -> float:
        """Signed base quantity (positive = long)."""
        return self._pos

    @property
    def avg_price(self) -> float:
        """Average entry price of the open position (0.0 when flat)."""
        return self._avg

    @property
    def realized_pnl(self) -> float:
        """Realized trading PnL in quote currency, before fees (average-cost accounting)."""
        return self._realized

    def unrealized_pnl(self, mid: float | None) -> float:
        if mid is None or self._pos == 0.0:
            return 0.0
        return self._pos * (mid - self._avg)

    @property
    def fees_paid(self) -> float:
        return self._fees

    @property
    def orders_submitted(self) -> int:
        """Orders submitted so far (``submit``), refused ones included."""
        return self._seq

    @property
    def last_quote(self) -> Quote | None:
        return self._q

    @property
    def mid(self) -> float | None:
        q = self._q
        return None if q is None else (q.bid + q.ask) * 0.5

    @property
    def open_orders(self) -> list[dict]:
        """Snapshot of the orders not yet done (pending arrival or resting)."""
        return [self._snapshot(o) for o in self._orders.values() if o.state != "done"]

    def open_qty(self, side: str) -> float:
        """Remaining quantity of the open orders on ``side`` ('buy' or 'sell')."""
        return sum(o.remaining for o in self._orders.values() if o.state != "done" and o.side == side)

    @property
    def idle(self) -> bool:
        return not (self._pending or self._resting or self._mk_count or self._shadowed)

    # ---------------------------------------------------------------- market events

    def on_quote(self, q: Quote) -> None:
        if self._pending or self._resting or self._mk_count or self._shadowed:
            self._advance(q.ts_ns)
            self._q = q
            if self._resting or self._shadowed:
                self._queue_on_quote(q)
        else:
            self._q = q

    def next_wakeup_ns(self) -> int | None:
        """The event time after which this engine next has something to do by itself (an order
        arriving, a cancel or expiry, a markout falling due), or None while orders rest in the
        book: those react to every quote and trade."""
        if self._resting or self._shadowed:
            return None
        t = self._pending[0][0] if self._pending else _FAR
        for dq in self._mk:
            if dq and dq[0][0] < t:
                t = dq[0][0]
        return t

    def show_quote(self, q: Quote) -> None:
        """Catch the engine up with the last quote while nothing is due (``next_wakeup_ns``): all
        ``on_quote`` does then. The replay fast path shows the engine only the quote in force
        when it is next needed."""
        self._q = q

    def on_trade(self, t: Trade) -> None:
        if self._pending or self._resting or self._mk_count or self._shadowed:
            self._advance(t.ts_ns)
            if self._resting or self._shadowed:
                self._queue_on_trade(t)

    def on_tick(self, ts_ns: int) -> None:
        if self._pending or self._resting or self._mk_count or self._shadowed:
            self._advance(ts_ns)

    def set_latency_load(self, load: Callable[[], float]) -> None:
        """The market's load when a message is sent (``latency.load_slowdown`` bound to the
        metrics by the pipeline); see ``LatencyModel.set_load``."""
        self._latency.set_load(load)

    def set_level_source(self, lookup: Callable[[str, float], float | None]) -> None:
        """Read the level quantity at placement from an L2 book: ``lookup(side, price)`` gives
        the quantity at ``price`` on 'bid' or 'ask' (0.0 for an empty level), or None when the
        book cannot tell (out of sync, a price never seen). Changes then come by ``on_level``."""
        self._level_source = lookup
        self._levels_from_book = True

    def on_level(self, side: str, price: float, qty: float, ts_ns: int | None = None) -> None:
        """The quantity now at ``price`` on ``side`` ('bid' or 'ask') of an L2 book in sync, as of
        ``ts_ns`` (what is due before it is applied first). Once called, levels come only from
        here: the queue models stop reading the top of book."""
        self._levels_from_book = True
        if ts_ns is not None and (self._pending or self._resting or self._mk_count or self._shadowed):
            self._advance(ts_ns)
        sgn = 1 if side == "bid" else -1
        for o in self._resting:
            if o.sgn == sgn and abs(o.price - price) <= o.eps:
                o.qpos.on_level(qty, self._own_ahead(o) if o.qpos.front is None else 0.0)
        for k in range(len(self._queue_models) - 1):
            for o in self._shadowed:
                sh = o.shadows[k]
                if sh.live and o.sgn == sgn and abs(o.price - price) <= o.eps:
                    sh.pos.on_level(qty, self._own_ahead(o, k + 1) if sh.pos.front is None else 0.0)

    # ---------------------------------------------------------------- orders

    def submit(self, intent: Any, ts_ns: int, labels: dict[str, str] | None = None) -> str:
        """Send an order for ``intent`` decided at ``ts_ns``; returns its order id."""
        if intent.side not in ("buy", "sell") or intent.style not in ("take", "passive"):
            raise ValueError(f"intent side {intent.side!r} / style {intent.style!r}; "
                             "expected side buy|sell and style take|passive")
        self._seq += 1
        o = _Order()
        o.seq = self._seq
        o.id = f"{self.symbol}-{self._seq}"
        o.intent_id = str(getattr(intent, "intent_id", "") or "")
        o.side = intent.side
        o.sgn = 1 if intent.side == "buy" else -1
        o.style = intent.style
        o.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        o.decision_ts = ts_ns
        q = self._q
        self._resolve_rules(q)
        o.eps = self._tick * 1e-3
        notional = float(intent.notional_usd)
        o.decision_mid = None if q is None else (q.bid + q.ask) * 0.5
        o.qty = notional / o.decision_mid if o.decision_mid and notional > 0 else 0.0
        o.price = None
        if o.style == "passive" and q is not None:
            o.price = self._passive_price(o.sgn, q, intent)
        qty_requested = o.qty
        refused = self._apply_rules(o) if q is not None and o.qty > 0 else None
        ttl = getattr(intent, "ttl_s", None)
        ttl = self.cfg.passive.ttl_s if ttl is None else ttl
        o.ttl_ns = int(round(ttl * NS_PER_S))
        o.arrival_ts = ts_ns
        self.submit_times.append(ts_ns)
        self._emit(records.order(
            ts_ns, self.symbol, order_id=o.id,
            intent_id=o.intent_id, side=o.side, qty=o.qty, notional_usd=notional,
            style=o.style, limit_price=o.price, ttl_s=ttl if o.style == "passive" else None,
            decision_mid=o.decision_mid,
            decision_bid=None if q is None else q.bid, decision_ask=None if q is None else q.ask,
            labels=dict(o.labels), qty_requested=qty_requested,
            rules=None if self._rules is None else self._rules.source,
        ))
        self._orders[o.id] = o
        if refused is not None:  # the exchange's filters refuse it (a lot rounded to 0 included)
            o.ack_latency_ns = 0
            self._reject(o, ts_ns, "filter_failure", refused=refused)
            return o.id
        if q is None or o.qty <= 0 or (o.price is not None and o.price <= 0):
            o.arrival_ts = ts_ns
            o.ack_latency_ns = 0
            self._reject(o, ts_ns, "no_market_data" if q is None else "invalid_qty")
            return o.id
        entry_ns, o.ack_latency_ns = self._latency.order(ts_ns)
        o.arrival_ts = ts_ns + entry_ns
        heapq.heappush(self._pending, (o.arrival_ts, o.seq, o))
        return o.id

    def _resolve_rules(self, q: Quote | None) -> None:
        """Find the symbol's exchange rules once, at the first order with a quote (the quotes
        tell the market when it is ``auto``); their tick replaces ``tick_size``."""
        if self._rules_resolved or q is None:
            return
        self._rules_resolved = True
        c = self.cfg.exchange_rules
        self._rules = resolve_rules(self.symbol, c.enabled, c.market, c.file, self.cfg.tick_size,
                                    c.assume, q.event_time_ms)
        if self._rules is not None and self._rules.tick_size > 0:
            self._tick = self._rules.tick_size
            self._tick_dp = max(0, -Decimal(repr(self._tick)).normalize().as_tuple().exponent)

    def _apply_rules(self, o: _Order) -> Any:
        """Round the order's quantity and limit price as the exchange requires; returns the
        check when a filter refuses the order, else None."""
        if self._rules is None:
            return None
        c = check_order(self._rules, o.style, o.side, o.qty, o.price, o.decision_mid)
        o.qty, o.price = c.qty, c.price
        return c if c.filter is not None else None

    def cancel(self, order_id: str, ts_ns: int, reason: str = "requested") -> bool:
        """Request a cancel at ``ts_ns``; it takes effect at the exchange one latency later
        (fills can still happen until then). False if the order is unknown or already done."""
        o = self._orders.get(order_id)
        if o is None or o.state == "done" or o.cancel_requested_ts is not None:
            return False
        o.cancel_requested_ts = ts_ns
        o.cancel_at = ts_ns + self._latency.cancel(ts_ns)
        o.cancel_reason = reason
        if o.state == "resting":
            self._set_deadline()
        return True

    def cancel_all(self, ts_ns: int, reason: str = "requested") -> int:
        """Request a cancel of every open order; returns how many were requested."""
        ids = [o.id for o in self._orders.values() if o.state != "done"]
        return sum(self.cancel(i, ts_ns, reason) for i in ids)

    def close(self, ts_ns: int) -> None:
        """End of session: open orders are cancelled at ``ts_ns`` (reason session_end, no
        latency), and every order is finalised; markouts not yet resolved stay unresolved."""
        self._advance(ts_ns + 1)
        for o in list(self._orders.values()):
            if o.state != "done":
                if o.state == "pending":
                    o.ack_latency_ns = 0
                    o.arrival_ts = max(o.arrival_ts, o.decision_ts)
                self._finish(o, ts_ns, "cancelled", "session_end")
        self._pending.clear()
        self._resting.clear()
        for o in self._shadowed:
            for sh in o.shadows:
                sh.live = False
            o.shadowing = False
        self._shadowed.clear()
        for dq in self._mk:
            dq.clear()
        self._mk_count = 0
        for o in list(self._orders.values()):
            o.mk_pending = 0
            self._finalise(o, ts_ns)

    # ---------------------------------------------------------------- internals: scheduling

    def _advance(self, ts: int) -> None:
        """Apply everything scheduled strictly before ``ts``, using the market as of then."""
        pending = self._pending
        while pending and pending[0][0] < ts:
            _, _, o = heapq.heappop(pending)
            self._end_due(o.arrival_ts)  # an order gone before this one arrives is not ahead of it
            self._arrive(o)
        self._end_due(ts)
        if self._mk_count:
            mid = self.mid
            for i, dq in enumerate(self._mk):
                while dq and dq[0][0] < ts:
                    _, f = dq.popleft()
                    self._mk_count -= 1
                    f.markouts[i] = _markout_bps(f.order.sgn, f.price, mid)
                    o = f.order
                    o.mk_pending -= 1
                    if o.mk_pending == 0 and o.state == "done" and not o.shadowing:
                        self._finalise(o, f.ts_ns + self._h_ns[i])

    def _end_due(self, ts: int) -> None:
        """Cancels and TTL expiries of resting orders (acting and shadows) due strictly before ``ts``."""
        if (self._resting or self._shadowed) and self._deadline < ts:
            for o in list(self._resting):
                c, e = o.cancel_at, o.expire_at
                if c is not None and c < ts and (e is None or c <= e):
                    self._finish(o, c, "cancelled", o.cancel_reason, requested=o.cancel_requested_ts)
                elif e is not None and e < ts:
                    self._finish(o, e, "cancelled", "ttl")
            for o in list(self._shadowed):  # shadows end when the order's cancel or expiry falls due
                c, e = o.cancel_at, o.expire_at
                end = c if c is not None and (e is None or c <= e) else e
                if end is not None and end < ts:
                    self._end_shadows(o, end)
            self._set_deadline()

    def _set_deadline(self) -> None:
        """The earliest cancel or expiry among resting orders (skip the scan until then)."""
        d = _FAR
        for orders in (self._resting, self._shadowed):
            for o in orders:
                if o.cancel_at is not None and o.cancel_at < d:
                    d = o.cancel_at
                if o.expire_at is not None and o.expire_at < d:
                    d = o.expire_at
        self._deadline = d

    def _arrive(self, o: _Order) -> None:
        q = self._q
        a = o.arrival_ts
        o.arrival_mid = (q.bid + q.ask) * 0.5
        if o.style == "take":
            self._ack(o, q)
            if self._book is not None:
                self._take_book(o)
            else:
                self._take(o, q)
            return
        crosses = o.price >= q.ask - o.eps if o.sgn > 0 else o.price <= q.bid + o.eps
        if crosses:
            self._reject(o, a, "post_only_would_cross", q)
            return
        touch, disp = (q.bid, q.bid_qty) if o.sgn > 0 else (q.ask, q.ask_qty)
        d = (o.price - touch) * o.sgn  # > 0: better than the touch
        if abs(d) <= o.eps:
            o.placement = "join"
            level: float | None = disp  # top of book: the displayed size is the level
        elif d > 0:
            o.placement = "improve"
            level = 0.0  # a new level: nobody else there
        else:
            o.placement = "behind"
            level = None  # not visible without depth
        if self._level_source is not None:
            level = self._level_source("bid" if o.sgn > 0 else "ask", o.price)
            self._level_seen[(o.sgn, o.price)] = level
        models = self._queue_models
        o.qpos = models[0].position(o.side, o.price, o.eps)
        o.qpos.place(level, self._own_ahead(o))
        self._ack(o, q)
        if o.cancel_at is not None and o.cancel_at <= a:
            self._finish(o, a, "cancelled", o.cancel_reason, requested=o.cancel_requested_ts)
            return
        o.expire_at = a + o.ttl_ns
        o.state = "resting"
        self._resting.append(o)
        if len(models) > 1:
            for k, m in enumerate(models[1:], 1):
                sh = _Shadow(m.position(o.side, o.price, o.eps))
                sh.pos.place(level, self._own_ahead(o, k))
                o.shadows.append(sh)
            o.shadowing = True
            self._shadowed.append(o)
        self._set_deadline()

    def _own_ahead(self, o: _Order, model: int = 0) -> float:
        """Our own earlier orders resting at ``o``'s price under queue model ``model`` (0 acts)."""
        if model == 0:
            return sum(x.remaining for x in self._resting
                       if x is not o and x.sgn == o.sgn and abs(x.price - o.price) <= o.eps)
        k = model - 1
        return sum(x.qty - x.shadows[k].filled for x in self._shadowed
                   if x is not o and x.shadows[k].live and x.sgn == o.sgn and abs(x.price - o.price) <= o.eps)

    def _ack(self, o: _Order, q: Quote) -> None:
        self._emit(records.ack(
            o.arrival_ts, self.symbol, order_id=o.id,
            arrival_bid=q.bid, arrival_ask=q.ask, arrival_bid_qty=q.bid_qty,
            arrival_ask_qty=q.ask_qty, arrival_mid=o.arrival_mid,
            latency_ms=_r((o.arrival_ts - o.decision_ts) / NS_PER_MS),
            ack_latency_ms=_r(o.ack_latency_ns / NS_PER_MS),
            ack_ts_ns=o.arrival_ts + o.ack_latency_ns,
            placement=o.placement or None, queue_ahead=o.queue,
        ))

    # ---------------------------------------------------------------- internals: fill model

    def _take(self, o: _Order, q: Quote) -> None:
        if self._taken_q is not q:
            self._taken_q, self._taken_bid, self._taken_ask = q, 0.0, 0.0
        if o.sgn > 0:
            touch, disp = q.ask, q.ask_qty
            avail = max(disp - self._taken_ask, 0.0)
        else:
            touch, disp = q.bid, q.bid_qty
            avail = max(disp - self._taken_bid, 0.0)
        a = o.arrival_ts
        f = min(o.qty, avail)
        if f > 0:
            self._fill(o, a, touch, f, "touch", "taker", None)
            if o.sgn > 0:
                self._taken_ask += f
            else:
                self._taken_bid += f
        tk = self.cfg.taker
        if tk.impact == "walk" and disp > 0:
            k = 0
            while o.remaining > 1e-12 * o.qty and k < tk.walk_max_levels:
                k += 1
                px = self._walk_price(o.sgn, touch, k)
                self._fill(o, a, px, min(o.remaining, disp), "walk", "taker", None)
        if o.state != "done":
            reason = "ioc_no_liquidity" if o.filled == 0 else "ioc_remainder"
            self._finish(o, a, "cancelled", reason)

    # -- takers against the local L2 book (sessions with depth) --------------------------------

    def attach_book(self, book: Any) -> None:
        """Judge takers against ``book`` (a ``SymbolBook``: its ``book`` is the local L2 book,
        None before the first depth event) instead of the top of book."""
        self._book = book
        if book is not None:  # passive orders: the queue models read their level from the book too
            self.set_level_source(self._book_level)

    def _book_level(self, side: str, price: float) -> float | None:
        """The quantity at ``price`` on ``side`` of the attached book (0.0: known empty), or None
        when the book cannot tell: not in sync, or a price it has never observed."""
        book = self._book.book
        if book is None or not book.in_sync or not book.is_known(side, price):
            return None
        return (book.bids if side == "bid" else book.asks).qty.get(price, 0.0)

    def _passive_blocked(self) -> bool:
        """With a book attached, no passive fill is judged while it is not in sync."""
        return self._book is not None and not self._book.in_sync

    def before_depth(self, ts_ns: int) -> None:
        """A depth event at ``ts_ns`` is about to change the book: what is due before it is
        judged on the book as it still is."""
        if self._pending or self._resting or self._mk_count or self._shadowed:
            self._advance(ts_ns)

    def after_depth(self) -> None:
        """The book changed: the queue models of resting orders see the new quantity at their
        price when it changed (``on_level``); our taker consumption at a level lasts until the
        book shows more quantity there than when we last looked (replenished), or the level empties."""
        if self._resting or self._shadowed:
            self._levels_to_queues()
        if not self._consumed:
            return
        book = self._book.book
        for key in list(self._consumed):
            sgn, px = key
            now = (book.asks if sgn > 0 else book.bids).qty.get(px, 0.0)
            used = self._consumed[key]
            if now <= 0.0 or now > used[1]:
                del self._consumed[key]
            else:
                used[1] = now

    def _take_book(self, o: _Order) -> None:
        """Walk the book's levels from the best, each less what our earlier takers consumed
        there; ``impact: partial`` takes the best level only, ``walk`` every level up to the
        stylised walk's furthest price (``walk_max_levels`` steps of ``walk_step_bps``). No fill
        is judged against a book that is not in sync."""
        a = o.arrival_ts
        book = self._book.book
        if book is None or not book.in_sync:
            self._finish(o, a, "cancelled", "book_not_in_sync")
            return
        side = book.asks if o.sgn > 0 else book.bids
        prices = side.prices if o.sgn > 0 else reversed(side.prices)
        tk = self.cfg.taker
        limit = None
        consumed = self._consumed
        self._fill_model = "book"
        try:
            for px in prices:
                if o.state == "done":
                    break
                if limit is None:  # the first level: the book's touch
                    limit = self._walk_price(o.sgn, px, tk.walk_max_levels) if tk.impact == "walk" else px
                elif (px - limit) * o.sgn > o.eps:
                    break
                shown = side.qty[px]
                used = consumed.get((o.sgn, px))
                avail = shown - used[0] if used is not None else shown
                if avail <= shown * 1e-9:  # taken; what is left is the rounding of our sums
                    continue
                f = min(o.remaining, avail)
                if used is None:
                    consumed[(o.sgn, px)] = [f, shown]
                else:
                    used[0] += f
                    used[1] = shown
                self._fill(o, a, px, f, "book", "taker", None)
        finally:
            self._fill_model = "top"
        if o.state != "done":
            reason = "ioc_no_liquidity" if o.filled == 0 else "ioc_remainder"
            self._finish(o, a, "cancelled", reason)

    def _levels_to_queues(self) -> None:
        """Feed ``on_level`` at each price where orders rest (acting or shadow) whose book
        quantity differs from what the queue models last saw there."""
        seen = self._level_seen
        keys = {(o.sgn, o.price) for o in self._resting}
        keys.update((o.sgn, o.price) for o in self._shadowed)
        for key in list(seen):
            if key not in keys:
                del seen[key]
        for sgn, px in sorted(keys):
            side = "bid" if sgn > 0 else "ask"
            now = self._book_level(side, px)
            if (sgn, px) not in seen or seen[(sgn, px)] != now:
                seen[(sgn, px)] = now
                self.on_level(side, px, now)

    def _walk_price(self, sgn: int, touch: float, k: int) -> float:
        raw = touch * (1.0 + sgn * k * self.cfg.taker.walk_step_bps / 1e4)
        n = raw / self._tick
        n = math.ceil(n - 1e-9) if sgn > 0 else math.floor(n + 1e-9)
        return round(n * self._tick, self._tick_dp)

    def _passive_price(self, sgn: int, q: Quote, intent: Any) -> float:
        touch = q.bid if sgn > 0 else q.ask
        bps = getattr(intent, "limit_offset_bps", None)
        if bps is not None:
            raw = touch * (1.0 - sgn * bps / 1e4)
            n = raw / self._tick
            # round away from the spread: never more aggressive than asked
            n = math.floor(n + 1e-9) if sgn > 0 else math.ceil(n - 1e-9)
        else:
            ticks = getattr(intent, "limit_offset_ticks", None) or 0
            n = round(touch / self._tick) - sgn * int(ticks)
        return round(n * self._tick, self._tick_dp)

    def _queue_on_trade(self, t: Trade) -> None:
        if self._passive_blocked():
            return
        aggressor = "sell" if t.buyer_is_maker else "buy"
        budget = t.qty  # one print's volume is shared by our orders, in arrival order
        for o in list(self._resting):
            pos = o.qpos
            where = pos.classify(t.price, aggressor)
            if where < 0:
                continue
            if where == 0:
                o.vol_at += t.qty
            else:
                o.vol_through += t.qty
                o.through_seen = True
            before = pos.front
            avail, how = pos.on_trade(t.price, t.qty, aggressor)
            if how is None:
                continue  # behind the touch when placed and never at it since: unknown queue
            f = min(o.remaining, avail, budget)
            if f > 0:
                budget -= f
                self._fill(o, t.ts_ns, o.price, f, how, "maker", before)
        for k in range(len(self._queue_models) - 1):
            budget = t.qty  # each model shares the print among its own view of our orders
            for o in list(self._shadowed):
                sh = o.shadows[k]
                if not sh.live:
                    continue
                avail, how = sh.pos.on_trade(t.price, t.qty, aggressor)
                f = min(o.qty - sh.filled, avail, budget)
                if how is not None and f > 0:
                    budget -= f
                    self._shadow_fill(o, sh, t.ts_ns, f)

    def _top_level(self, o: _Order, q: Quote) -> float | None:
        """The level quantity at ``o``'s price as the top of book shows it: the displayed size
        when it is the touch, 0 when the touch is beyond it (nobody else left there), else unknown."""
        touch, disp = (q.bid, q.bid_qty) if o.sgn > 0 else (q.ask, q.ask_qty)
        d = (o.price - touch) * o.sgn
        if abs(d) <= o.eps:
            return disp
        return 0.0 if d > 0 else None

    def _queue_on_quote(self, q: Quote) -> None:
        if not self._levels_from_book:
            for o in self._resting:
                pos = o.qpos
                level = self._top_level(o, q)
                pos.on_level(level, self._own_ahead(o) if pos.front is None and level else 0.0)
            for k in range(len(self._queue_models) - 1):
                for o in self._shadowed:
                    sh = o.shadows[k]
                    if sh.live:
                        level = self._top_level(o, q)
                        sh.pos.on_level(level, self._own_ahead(o, k + 1) if sh.pos.front is None and level else 0.0)
        if self._quote_through:
            self._fill_quoted_through(q)

    def _fill_quoted_through(self, q: Quote) -> None:
        """Models with fill_on_quote_through: the opposite side quoted at or through our price
        fills the remainder at our price."""
        if self._passive_blocked():
            return
        for o in list(self._resting):
            if o.qpos.quoted_through(q.bid, q.ask):
                before = o.qpos.front
                o.qpos.front = 0.0
                self._fill(o, q.ts_ns, o.price, o.remaining, QUOTE_THROUGH, "maker", before)
        for k in range(len(self._queue_models) - 1):
            for o in list(self._shadowed):
                sh = o.shadows[k]
                if sh.live and sh.pos.quoted_through(q.bid, q.ask):
                    sh.pos.front = 0.0
                    self._shadow_fill(o, sh, q.ts_ns, o.qty - sh.filled)

    # ---------------------------------------------------------------- internals: bookkeeping

    def _fill(self, o: _Order, ts: int, px: float, qty: float, how: str, liq: str,
              queue_before: float | None) -> None:
        fee = px * qty * (self._maker if liq == "maker" else self._taker)
        self._apply(o.sgn, qty, px)
        self._fees += fee
        self.money = (self._pos, self._avg, self._realized, self._fees)
        o.filled += qty
        if o.qty - o.filled <= 1e-12 * o.qty:
            o.filled = o.qty
        o.notional += px * qty
        o.fees += fee
        o.how_qty[how] = o.how_qty.get(how, 0.0) + qty
        if o.first_fill_ts is None:
            o.first_fill_ts = ts
        plausible = None
        if liq == "maker":
            need = o.filled + ((o.queue0 or 0.0) if how == "queue_consumed" and not o.through_seen else 0.0)
            plausible = o.vol_at + o.vol_through >= need - 1e-9 * max(need, 1.0)
            if plausible:
                o.plausible += 1
                self._n_plausible += 1
            else:
                o.implausible += 1
                self._n_implausible += 1
        f = _Fill(o, ts, px, qty, len(self._h_ns))
        o.fills.append(f)
        for i, h in enumerate(self._h_ns):
            self._mk[i].append((ts + h, f))
        self._mk_count += len(self._h_ns)
        o.mk_pending += len(self._h_ns)
        done = o.filled >= o.qty
        self._emit(records.fill(
            ts, self.symbol, order_id=o.id, side=o.side,
            price=px, qty=qty, how=how, liquidity=liq, fee_usd=fee,
            queue_at_placement=o.queue0, queue_at_fill=queue_before,
            filled_qty=o.filled, remaining_qty=o.remaining, done=done,
            plausible=plausible, position=self._pos, mid=self.mid, model=self._fill_model,
        ))
        if done:
            o.complete_ts = ts
            self._finish(o, ts, "filled", "")

    def _shadow_fill(self, o: _Order, sh: _Shadow, ts: int, qty: float) -> None:
        """A fill under a shadow queue model: counted for that model's fill ratio and markouts only."""
        sh.filled += qty
        if o.qty - sh.filled <= 1e-12 * o.qty:
            sh.filled = o.qty
        sh.notional += o.price * qty
        f = _Fill(o, ts, o.price, qty, len(self._h_ns))
        sh.fills.append(f)
        for i, h in enumerate(self._h_ns):
            self._mk[i].append((ts + h, f))
        self._mk_count += len(self._h_ns)
        o.mk_pending += len(self._h_ns)
        if sh.filled >= o.qty:
            sh.live = False
            if not any(x.live for x in o.shadows):
                self._end_shadows(o, ts)

    def _end_shadows(self, o: _Order, ts: int) -> None:
        """The order's shadows stop resting (its cancel or expiry, or all filled)."""
        for sh in o.shadows:
            sh.live = False
        if o.shadowing:
            o.shadowing = False
            self._shadowed.remove(o)
            if o.state == "done" and o.mk_pending == 0:
                self._finalise(o, ts)

    def _apply(self, sgn: int, qty: float, px: float) -> None:
        """Average-cost position accounting."""
        pos = self._pos
        if pos == 0.0 or (pos > 0) == (sgn > 0):
            new = pos + sgn * qty
            self._avg = (self._avg * abs(pos) + px * qty) / abs(new)
            self._pos = new
            return
        close = min(qty, abs(pos))
        self._realized += close * (px - self._avg) * (1.0 if pos > 0 else -1.0)
        new = pos + sgn * qty
        if abs(new) <= 1e-12 * max(abs(pos), qty):
            self._pos, self._avg = 0.0, 0.0
        elif (new > 0) != (pos > 0):
            self._pos, self._avg = new, px  # flipped: the rest opens at this price
        else:
            self._pos = new

    def _reject(self, o: _Order, ts: int, reason: str, q: Quote | None = None, refused: Any = None) -> None:
        if refused is not None:
            rec = records.order_reject_filter(ts, self.symbol, order_id=o.id, intent_id=o.intent_id,
                                              filter=refused.filter, detail=refused.detail)
        elif q is None:
            rec = records.order_reject(ts, self.symbol, order_id=o.id, intent_id=o.intent_id, reason=reason)
        else:
            rec = records.order_reject_at(ts, self.symbol, order_id=o.id, intent_id=o.intent_id, reason=reason,
                                          arrival_bid=q.bid, arrival_ask=q.ask, limit_price=o.price,
                                          latency_ms=_r((o.arrival_ts - o.decision_ts) / NS_PER_MS))
        self._emit(rec)
        self._rejects[reason] = self._rejects.get(reason, 0) + 1
        o.state = "done"
        o.final, o.final_reason, o.final_ts = "rejected", reason, ts
        self._finalise(o, ts)

    def _finish(self, o: _Order, ts: int, final: str, reason: str, requested: int | None = None) -> None:
        if o.state == "resting":
            self._resting.remove(o)
        o.state = "done"
        o.final, o.final_reason, o.final_ts = final, reason, ts
        if final == "cancelled":
            self._cancels[reason] = self._cancels.get(reason, 0) + 1
            self._emit(records.cancel(
                ts, self.symbol, order_id=o.id,
                reason=reason, requested_ts_ns=requested, filled_qty=o.filled,
                remaining_qty=o.remaining, queue_ahead=o.queue, mid=self.mid,
            ))
        if o.mk_pending == 0 and not o.shadowing:
            self._finalise(o, ts)

    def _finalise(self, o: _Order, ts: int) -> None:
        """Fold a done order whose markouts are all resolved into the aggregates; emit its result."""
        if self._orders.pop(o.id, None) is None:
            return
        m = self._metrics(o)
        self._emit(records.order_result(ts, self.symbol, **m))
        self._fold(self._all, self._by, o)
        o.fills = []  # drop references

    def _fold(self, all_: _Agg, by: dict[str, dict[str, _Agg]], o: _Order) -> None:
        n = len(self._horizons)
        dn = o.qty * o.decision_mid if o.decision_mid else 0.0
        all_.add(o, dn)
        for dim, val in (("style", o.style), *o.labels.items()):
            b = by.setdefault(dim, {})
            agg = b.get(val)
            if agg is None:
                agg = b[val] = _Agg(n)
            agg.add(o, dn)

    def _markouts(self, fills: list[_Fill]) -> tuple[dict[str, float | None], dict[str, int]]:
        """Notional-weighted markout per horizon over ``fills``, and the unresolved counts."""
        mk: dict[str, float | None] = {}
        unres: dict[str, int] = {}
        for i, h in enumerate(self._horizons):
            s = w = 0.0
            u = 0
            for f in fills:
                m = f.markouts[i]
                if m is None:
                    u += 1
                else:
                    s += m * f.price * f.qty
                    w += f.price * f.qty
            mk[_hkey(h)] = _r(s / w) if w else None
            unres[_hkey(h)] = u
        return mk, unres

    def _queue_model_results(self, o: _Order) -> list[dict]:
        """Per queue model, the acting one first: what the order filled and its markouts under it
        (a list: the log's keys are sorted, the order of the models is not)."""
        out = []
        views = [(o.filled, o.notional, o.fills)] + [(sh.filled, sh.notional, sh.fills) for sh in o.shadows]
        views += [(0.0, 0.0, [])] * (len(self._queue_models) - len(views))  # never rested: nothing filled
        for m, (filled, notional, fills) in zip(self._queue_models, views, strict=True):
            mk, unres = self._markouts(fills)
            out.append({"model": m.name, "filled_qty": filled, "fill_ratio": _r(filled / o.qty) if o.qty else None,
                        "notional_filled_usd": _r(notional), "n_fills": len(fills),
                        "markout_bps": mk, "markout_unresolved_fills": unres})
        return out

    def _metrics(self, o: _Order) -> dict:
        avg = o.notional / o.filled if o.filled > 0 else None
        mk, unres = self._markouts(o.fills)
        shadowed = len(self._queue_models) > 1 and o.style == "passive"
        return {
            "order_id": o.id, "intent_id": o.intent_id, "side": o.side, "style": o.style,
            "labels": dict(o.labels), "status": o.final, "reason": o.final_reason,
            "qty": o.qty, "filled_qty": o.filled,
            "fill_ratio": _r(o.filled / o.qty) if o.qty else None,
            "avg_fill_price": avg, "fees_usd": _r(o.fees), "n_fills": len(o.fills),
            "filled_qty_by_how": dict(sorted(o.how_qty.items())),
            "decision_mid": o.decision_mid, "arrival_mid": o.arrival_mid,
            "latency_ms": None if o.arrival_mid is None else _r((o.arrival_ts - o.decision_ts) / NS_PER_MS),
            "arrival_to_first_fill_ms": _r((o.first_fill_ts - o.arrival_ts) / NS_PER_MS) if o.first_fill_ts is not None else None,
            "time_to_first_fill_ms": _r((o.first_fill_ts - o.decision_ts) / NS_PER_MS) if o.first_fill_ts is not None else None,
            "time_to_fill_ms": _r((o.complete_ts - o.decision_ts) / NS_PER_MS) if o.complete_ts is not None else None,
            "slippage_decision_bps": _r(_slip_bps(o.sgn, avg, o.decision_mid)) if avg else None,
            "slippage_arrival_bps": _r(_slip_bps(o.sgn, avg, o.arrival_mid)) if avg else None,
            "markout_bps": mk, "markout_unresolved_fills": unres,
            # per fill, in fill order: the markout at each horizon, ascending (None: unresolved), for cost analysis
            "fill_markouts_bps": [[None if m is None else _r(m, 9) for m in f.markouts] for f in o.fills],
            "placement": o.placement or None, "queue_at_placement": o.queue0,
            "passive_fills_plausible": o.plausible, "passive_fills_implausible": o.implausible,
            "queue_models": self._queue_model_results(o) if shadowed else None,
        }

    def _snapshot(self, o: _Order) -> dict:
        return {"order_id": o.id, "side": o.side, "style": o.style, "qty": o.qty,
                "filled_qty": o.filled, "remaining_qty": o.remaining, "limit_price": o.price,
                "state": o.state, "decision_ts_ns": o.decision_ts, "arrival_ts_ns": o.arrival_ts,
                "queue_ahead": o.queue, "cancel_requested": o.cancel_requested_ts is not None}

    # ---------------------------------------------------------------- summary

    def summary(self) -> dict:
        """Aggregates over every order that is done (filled, cancelled or rejected). Orders done
        but with markouts still pending are included with those markouts unresolved."""
        all_ = self._all.copy()
        by = {d: {v: a.copy() for v, a in vals.items()} for d, vals in self._by.items()}
        n_open = 0
        for o in self._orders.values():
            if o.state == "done":
                self._fold(all_, by, o)
            else:
                n_open += 1
        mid = self.mid
        unreal = self.unrealized_pnl(mid)
        h = self._horizons
        return {
            "symbol": self.symbol,
            "position": self._pos,
            "avg_price": self._avg,
            "mid": mid,
            "realized_pnl_usd": _r(self._realized),
            "unrealized_pnl_usd": _r(unreal),
            "fees_usd": _r(self._fees),
            "net_pnl_usd": _r(self._realized + unreal - self._fees),
            "open_orders": n_open,
            "markouts_pending": self._mk_count,
            "markout_horizons_s": list(h),
            "rejects": dict(sorted(self._rejects.items())),
            "cancels": dict(sorted(self._cancels.items())),
            "fill_plausibility": {"plausible": self._n_plausible, "implausible": self._n_implausible},
            "all": all_.report(h),
            "by_label": {d: {v: a.report(h) for v, a in sorted(vals.items())} for d, vals in sorted(by.items())},
        }

