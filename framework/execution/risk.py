"""Risk guardrails on paper trading: limits checked before an order and watched on every event.

The watched guards and the kill switch are the risk machine, ``machines/risk.yaml``
(``spec/risk.py``): a machine on the same runtime as the others, reading the market metrics and
the ``account`` namespace this module keeps (PnL, drawdown from its high-water mark, position,
orders in the window). Its guards are its boolean derived values; its state ``TRIPPED`` is the
kill switch. The default file's guards (names are the reasons ``check`` returns and the
``guard`` of alerts):

- ``max_order_notional`` (checked before an order only): one intent's notional above
  ``max_order_notional_usd``.
- ``max_position_notional``: |position + open orders on that side + the intent| at mid above
  ``max_position_notional_usd`` (an intent that reduces the exposure is allowed). As a watched
  guard it trips when |position| at mid is above the limit.
- ``order_rate``: ``max_orders`` orders already submitted within the last ``order_window_s``.
- ``loss_limit``: net paper PnL (realized + unrealized at mid - fees) <= -``loss_limit_usd``.
- ``max_drawdown``: high-water mark of net paper PnL minus net paper PnL >= ``max_drawdown_usd``
  (the high-water mark starts at 0).
- ``stale_data``: the last quote is older than ``stale_quote_ms`` (the metric is named in the
  machine file).

The kill switch trips when any guard listed in ``kill_switch_on`` trips; it blocks every intent,
optionally cancels the open orders, and latches: for the session (``kill_switch_reset_s: null``,
the default) or until every guard in ``kill_switch_on`` has been clear for
``kill_switch_reset_s`` seconds. ``reset_kill_switch`` clears it by hand. Its trips and clears
are written as the alerts they always were (``guard: kill_switch``), not as transitions.

The replay fast path calls ``update`` only on the rows of a block where it could change
anything; ``screen`` finds them with numpy, and ``see_mids`` raises the high-water mark with the
PnL at the mids of the rows it skipped.
"""

from __future__ import annotations

import dataclasses
from operator import itemgetter
from typing import Any

from ..machines.machine import StateMachine
from ..spec import records, workspace
from ..spec.expr import Binding
from ..spec.risk import STALE_GUARD, TRIPPED, RiskMachine, load_risk_machine
from .config import RiskConfig

NS_PER_S = 1_000_000_000
_NEVER = 1 << 126  # no order ever enters or leaves the window

# The values that change only when ``update`` runs (the guards' and the kill switch's states) or
# with a fill (the position): a layer reading only these needs no screen of its own per row.
STEADY_VALUES = ("kill_switch", "kill_switch_reasons", "tripped", "stale", "position")
GUARDS = ("loss_limit", "max_drawdown", "max_position_notional", "order_rate", "stale_data")  # the default file's
DEFAULT_RISK_MACHINE = workspace.DEFAULTS_DIR / "machines" / "risk.yaml"


def default_risk_machine(cfg: RiskConfig, metric_names: tuple[str, ...] = ("quote_age_ms",)) -> RiskMachine:
    """The packaged risk machine with ``cfg``'s limits."""
    return load_risk_machine(DEFAULT_RISK_MACHINE, metric_names, dataclasses.asdict(cfg))


class RiskGuard:
    """``machine``: the risk machine with this config's limits (the session's); ``metrics``: the
    symbol's metric values it reads (the stale guard's quote age among them)."""

    def __init__(self, cfg: RiskConfig | None = None, machine: RiskMachine | None = None,
                 metrics: dict[str, Any] | None = None):
        self.cfg = cfg = cfg or RiskConfig()
        self.metrics = metrics if metrics is not None else {}
        self.spec = machine or default_risk_machine(cfg, tuple(self.metrics) or ("quote_age_ms",))
        self.window_ns = int(round(cfg.order_window_s * NS_PER_S))
        self.guards = tuple(g.name for g in self.spec.guards)
        self.kill_on = self.spec.kill_on
        self.flags = (False,) * len(self.guards)  # each guard's state, in file order
        self._flags_of = _getter(self.guards)
        self.peak_pnl = 0.0  # high-water mark of net PnL over every update
        # What the account figures were last computed from (``update`` skips them when unchanged).
        self._money_seen: Any = None
        self._mid_seen: float | None = None
        self._orders_seen = -1
        self._window_from = self._window_until = 0
        # What the risk machine reads besides the metrics (docs/machines.md#the-risk-machine).
        self.account: dict[str, Any] = {
            "position": 0.0,
            "position_notional_usd": 0.0,
            "pnl_usd": 0.0,
            "realized_pnl_usd": 0.0,
            "unrealized_pnl_usd": 0.0,
            "fees_usd": 0.0,
            "peak_pnl_usd": 0.0,
            "drawdown_usd": 0.0,
            "orders_in_window": 0,
        }
        self.namespaces: dict[str, dict[str, Any]] = {"metrics": self.metrics, "account": self.account}
        self._moves: list[dict] = []  # the machine's transition records during one update
        self.machine = self._new_machine(None)
        self.values: dict[str, Any] = {
            "kill_switch": False,
            "kill_switch_reasons": "",
            "tripped": "",
            "stale": True,
            **self.account,
        }

    def rebind(self, machine: RiskMachine, metrics: dict[str, Any]) -> None:
        """A hot reload: the risk machine as the files now say and the symbol's metric values
        (rebuilt when the metric set changed). The kill switch keeps its state, each guard its
        flag (by name), the account its high-water mark."""
        was = dict(zip(self.guards, self.flags, strict=True))
        state = self.machine.state
        self.spec = machine
        self.metrics = self.namespaces["metrics"] = metrics
        self.guards = tuple(g.name for g in machine.guards)
        self.kill_on = machine.kill_on
        self.flags = tuple(was.get(g, False) for g in self.guards)
        self._flags_of = _getter(self.guards)
        self.machine = self._new_machine(state)

    def _new_machine(self, state: str | None) -> StateMachine:
        m = StateMachine(self.spec.spec, "", self.namespaces, self._moves.append, state)
        # each guard's two sides, bound as the machine binds its own expressions (for the alerts)
        binding = Binding({**self.namespaces, "derived": m.out}, time_in_state=m.time_in_state, entries=m.entries)
        self._sides = [(g.value.bind(binding), g.limit.bind(binding)) for g in self.spec.guards]
        return m

    # ------------------------------------------------------------------ queries

    def orders_in_window(self, engine: Any, ts_ns: int) -> int:
        """Orders submitted by ``engine`` with decision time in (ts - window, ts]."""
        return self._window(engine, ts_ns)[0]

    def _window(self, engine: Any, ts_ns: int) -> tuple[int, int]:
        """The orders in the window at ``ts_ns``, and the first time after it at which that
        count changes: an order in the window leaves it, or a later one enters it."""
        lo = ts_ns - self.window_ns
        n = 0
        until = _NEVER
        for t in reversed(engine.submit_times):
            if t <= lo:
                break
            if t <= ts_ns:
                n += 1
                until = min(until, t + self.window_ns)
            else:
                until = min(until, t)
        return n, until

    def check(self, intent: Any, engine: Any, ts_ns: int, mid: float | None) -> str | None:
        """None if the intent may be submitted now, else the name of the guard that refuses it."""
        v = self.values
        if v["kill_switch"]:
            return "kill_switch"
        if v["stale"] or mid is None:
            return "stale_data"
        tripped = self.tripped
        for g in ("loss_limit", "max_drawdown"):
            if g in tripped:
                return g
        c = self.cfg
        notional = float(intent.notional_usd)
        if notional > c.max_order_notional_usd:
            return "max_order_notional"
        sgn = 1.0 if intent.side == "buy" else -1.0
        cur = engine.position * mid
        projected = cur + sgn * (engine.open_qty(intent.side) * mid + notional)
        if abs(projected) > c.max_position_notional_usd and abs(projected) > abs(cur):
            return "max_position_notional"
        if self.orders_in_window(engine, ts_ns) >= c.max_orders:
            return "order_rate"
        return None

    # ------------------------------------------------------------------ watching

    def update(self, ts_ns: int, engine: Any, mid: float | None) -> list[dict]:
        """Refresh the account and ``values``, evaluate the risk machine; return alert records
        for guards that tripped or cleared now and for the kill switch."""
        if mid is None:
            mid = engine.mid
        money = engine.money  # a new tuple per fill
        # Most events change neither the engine's money nor its mid (a quote moving only a
        # size, a trade): the PnL figures are then the ones already written. A mid of None or
        # 0.0 (its sign reaches the position notional) is always recomputed.
        if money is not self._money_seen or not (mid == self._mid_seen and mid):
            self._money_seen = money
            self._mid_seen = mid
            self._see_money(engine, mid)
        # The count of orders in the window changes only at a new order or when an order
        # leaves the window or enters it (a decision time ahead of ``ts_ns``).
        if not self._window_from <= ts_ns < self._window_until or engine.orders_submitted != self._orders_seen:
            self._see_orders(engine, ts_ns)

        machine = self.machine
        machine.evaluate(ts_ns)
        out = machine.out
        v = self.values
        v["stale"] = out[STALE_GUARD]
        # The guards' states, in file order. Alerts are built only when one of them flips,
        # which is rare; on every other event this tuple comparison is all the work.
        flags = self._flags_of(out)
        if flags == self.flags and not self._moves:
            return []
        alerts: list[dict] = []
        symbol = getattr(engine, "symbol", "")
        if flags != self.flags:
            for g, on, was, (value, limit) in zip(self.guards, flags, self.flags, self._sides, strict=True):
                if on != was:
                    alerts.append(records.guard_alert(ts_ns, symbol, guard=g, state="trip" if on else "clear",
                                                      value=value(), limit=limit()))
            self.flags = flags
            v["tripped"] = ",".join(g for g, on in zip(self.guards, flags, strict=True) if on)
        if self._moves:
            move = self._moves.pop()  # at most one per evaluation
            if move["to"] == TRIPPED:
                reasons = ",".join(g for g, on in zip(self.guards, flags, strict=True) if on and g in self.kill_on)
                v["kill_switch"] = True
                v["kill_switch_reasons"] = reasons
                alerts.append(records.kill_switch_trip(ts_ns, symbol, reasons=reasons, latch=self.spec.latch))
                if self.cfg.cancel_orders_on_kill:
                    engine.cancel_all(ts_ns, "kill_switch")
            elif move["from"] == TRIPPED:
                alerts.extend(self._cleared(ts_ns, symbol, "clear_for_reset_s"))
            else:  # between states of a machine of one's own: a transition record like any machine's
                alerts.append({**move, "symbol": symbol})
        return alerts

    def _see_money(self, engine: Any, mid: float | None) -> None:
        """The account's PnL figures at ``mid``, written to the account and ``values``."""
        a = self.account
        v = self.values
        realized = engine.realized_pnl
        unreal = engine.unrealized_pnl(mid)
        fees = engine.fees_paid
        pnl = realized + unreal - fees
        if pnl > self.peak_pnl:
            self.peak_pnl = pnl
        pos = engine.position
        v["position"] = a["position"] = pos
        v["position_notional_usd"] = a["position_notional_usd"] = abs(pos) * mid if mid is not None else 0.0
        v["realized_pnl_usd"] = a["realized_pnl_usd"] = realized
        v["unrealized_pnl_usd"] = a["unrealized_pnl_usd"] = unreal
        v["fees_usd"] = a["fees_usd"] = fees
        v["pnl_usd"] = a["pnl_usd"] = pnl
        v["peak_pnl_usd"] = a["peak_pnl_usd"] = self.peak_pnl
        v["drawdown_usd"] = a["drawdown_usd"] = self.peak_pnl - pnl

    def _see_orders(self, engine: Any, ts_ns: int) -> None:
        n, until = self._window(engine, ts_ns)
        self._orders_seen = engine.orders_submitted
        self._window_from, self._window_until = ts_ns, until
        self.values["orders_in_window"] = self.account["orders_in_window"] = n

    def see_pnl(self, pnl: float) -> None:
        """Raise the high-water mark with a PnL ``update`` was not shown (the replay fast path
        skips updates that would change nothing else)."""
        if pnl > self.peak_pnl:
            self.peak_pnl = pnl
            self._money_seen = None  # the drawdown written last is measured from the old mark

    def see_mids(self, lo: float, hi: float, money: tuple[float, float, float, float]) -> None:
        """Raise the high-water mark with the PnL at mids ``update`` was not shown, the lowest
        ``lo`` and highest ``hi`` of them (NaN: none), with the engine's ``money`` then."""
        pnl = _best_pnl(lo, hi, money)
        if pnl is not None:
            self.see_pnl(pnl)

    @property
    def screen_key(self) -> tuple:
        """What a ``screen`` depends on besides the rows, the metrics and the engine's money and
        orders: the guards' states, the kill switch, the risk machine's transitions."""
        return self.flags, self.values["kill_switch"], self.machine.transition_count

    def screen(self, ts: Any, metrics: dict[str, Any], mid: Any, engine: Any,
               unseen: tuple[float, float]) -> tuple[Any, dict[str, Any]]:
        """Where ``update`` over a block of rows could change anything: a guard would flip (an
        alert), or a rule of the risk machine's state could fire or its ``for:`` hold start or
        reset. Returns those flags per row (or True: every row, where numpy cannot tell) and the
        account values per row that vary (PnL, drawdown, position notional, orders in the
        window), as ``update`` would compute them.

        ``ts``: the rows' event times; ``metrics``: the metric values per row by name; ``mid``:
        the engine's mid on each row (NaN before its first quote); ``unseen``: the lowest and
        highest mid of earlier rows ``update`` was not shown (NaN: none), which ``see_mids`` has
        yet to count. The engine's money and orders stay as they are over the rows (a fill or an
        order needs a new screen)."""
        import numpy as np  # only the fast path's screens need it

        pos, avg = engine.position, engine.avg_price
        realized, fees = engine.realized_pnl, engine.fees_paid
        has_mid = ~np.isnan(mid)
        with np.errstate(invalid="ignore"):
            unreal = np.where(has_mid, pos * (mid - avg), 0.0) if pos != 0.0 else 0.0
            pnl = np.broadcast_to(realized + unreal - fees, ts.shape)
            peak0 = self.peak_pnl
            best = _best_pnl(*unseen, (pos, avg, realized, fees))
            if best is not None:
                peak0 = max(peak0, best)
            peak = np.maximum(np.maximum.accumulate(pnl), peak0)
            dd = peak - pnl
            pos_notional = np.where(has_mid, abs(pos) * mid, 0.0)
        sub = np.fromiter(engine.submit_times, np.int64, len(engine.submit_times))
        n_win = np.searchsorted(sub, ts, "right") - np.searchsorted(sub, ts - self.window_ns, "right")
        rows = {"pnl_usd": pnl, "drawdown_usd": dd, "position_notional_usd": pos_notional,
                "orders_in_window": n_win.astype(np.float64)}
        own: dict[str, Any] = {f"metrics.{n}": col for n, col in metrics.items()}
        own.update({"account.position": pos, "account.realized_pnl_usd": realized, "account.fees_usd": fees,
                    "account.unrealized_pnl_usd": unreal, "account.peak_pnl_usd": peak})
        own.update({f"account.{k}": vec for k, vec in rows.items()})
        m = self.machine
        own = m.screen_values(own, ts)
        if own is None:
            return True, rows
        flags = np.zeros(len(ts), np.bool_)
        for g, cur in zip(self.guards, self.flags, strict=True):
            flags |= np.broadcast_to(own[g], ts.shape) != cur
        rules = m.screen_conditions(own, ts)  # a row where a rule's condition holds goes through
        if rules is True:
            return True, rows
        return flags | rules, rows

    def reset_kill_switch(self, ts_ns: int, symbol: str = "", reason: str = "manual") -> list[dict]:
        """Clear the kill switch (it trips again at the next update if a guard still holds)."""
        if not self.values["kill_switch"]:
            return []
        self.machine = self._new_machine(self.spec.spec.initial)
        return self._cleared(ts_ns, symbol, reason)

    def _cleared(self, ts_ns: int, symbol: str, reason: str) -> list[dict]:
        v = self.values
        v["kill_switch"] = False
        v["kill_switch_reasons"] = ""
        return [records.kill_switch_clear(ts_ns, symbol, reason=reason)]

    @property
    def tripped(self) -> frozenset[str]:
        return frozenset(g for g, on in zip(self.guards, self.flags, strict=True) if on)


def _best_pnl(lo: float, hi: float, money: tuple[float, float, float, float]) -> float | None:
    """The highest net PnL over mids from ``lo`` to ``hi`` with ``money`` (position, average
    price, realized PnL, fees), or None (no mid, or flat: then PnL does not depend on it). PnL
    is monotonic in the mid (IEEE rounding is monotonic), so the best is at an extreme."""
    pos, avg, realized, fees = money
    if lo != lo or pos == 0.0:
        return None
    mid = hi if pos > 0.0 else lo
    return realized + pos * (mid - avg) - fees


def _getter(names: tuple[str, ...]) -> Any:
    """A function of a dict returning the tuple of its values at ``names``."""
    if len(names) == 1:
        (name,) = names
        return lambda d: (d[name],)
    return itemgetter(*names)
