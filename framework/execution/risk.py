"""Risk guardrails on paper trading: limits checked before an order and watched on every event.

Guards (names are the reasons ``check`` returns and the ``guard`` of alerts):

- ``max_order_notional``: one intent's notional above ``max_order_notional_usd``.
- ``max_position_notional``: |position + open orders on that side + the intent| at mid above
  ``max_position_notional_usd`` (an intent that reduces the exposure is allowed). As a watched
  guard it trips when |position| at mid is above the limit.
- ``order_rate``: ``max_orders`` orders already submitted within the last ``order_window_s``.
- ``loss_limit``: net paper PnL (realized + unrealized at mid - fees) <= -``loss_limit_usd``.
- ``max_drawdown``: high-water mark of net paper PnL minus net paper PnL >= ``max_drawdown_usd``
  (the high-water mark starts at 0).
- ``stale_data``: the last quote is older than ``stale_quote_ms`` (or there is none).

The kill switch trips when any guard listed in ``kill_switch_on`` trips; it blocks every intent,
optionally cancels the open orders, and latches: for the session (``kill_switch_reset_s: null``,
the default) or until every guard in ``kill_switch_on`` has been clear for
``kill_switch_reset_s`` seconds. ``reset_kill_switch`` clears it by hand.
"""

from __future__ import annotations

from typing import Any

from ..spec import records
from .config import RiskConfig

NS_PER_S = 1_000_000_000

GUARDS = ("loss_limit", "max_drawdown", "max_position_notional", "order_rate", "stale_data")


class RiskGuard:
    def __init__(self, cfg: RiskConfig | None = None):
        self.cfg = cfg = cfg or RiskConfig()
        self.window_ns = int(round(cfg.order_window_s * NS_PER_S))
        self.kill_on = frozenset(cfg.kill_switch_on)
        self.reset_ns = None if cfg.kill_switch_reset_s is None else int(round(cfg.kill_switch_reset_s * NS_PER_S))
        self._tripped: set[str] = set()
        self.flags = (False,) * len(GUARDS)  # each guard's state, in GUARDS order
        self._clear_since: int | None = None
        self.peak_pnl = 0.0  # high-water mark of net PnL over every update
        self.values: dict[str, Any] = {
            "kill_switch": False,
            "kill_switch_reasons": "",
            "tripped": "",
            "stale": True,
            "quote_age_ms": None,
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

    # ------------------------------------------------------------------ queries

    def orders_in_window(self, engine: Any, ts_ns: int) -> int:
        """Orders submitted by ``engine`` with decision time in (ts - window, ts]."""
        lo = ts_ns - self.window_ns
        n = 0
        for t in reversed(engine.submit_times):
            if t <= lo:
                break
            if t <= ts_ns:
                n += 1
        return n

    def check(self, intent: Any, engine: Any, ts_ns: int, mid: float | None) -> str | None:
        """None if the intent may be submitted now, else the name of the guard that refuses it."""
        v = self.values
        if v["kill_switch"]:
            return "kill_switch"
        if v["stale"] or mid is None:
            return "stale_data"
        for g in ("loss_limit", "max_drawdown"):
            if g in self._tripped:
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

    def update(self, ts_ns: int, engine: Any, mid: float | None, quote_age_ms: float | None) -> list[dict]:
        """Refresh ``values``; return alert records for guards that tripped or cleared now."""
        c = self.cfg
        v = self.values
        if mid is None:
            mid = engine.mid
        realized = engine.realized_pnl
        unreal = engine.unrealized_pnl(mid)
        fees = engine.fees_paid
        pnl = realized + unreal - fees
        if pnl > self.peak_pnl:
            self.peak_pnl = pnl
        dd = self.peak_pnl - pnl
        pos = engine.position
        pos_notional = abs(pos) * mid if mid is not None else 0.0
        n_win = self.orders_in_window(engine, ts_ns)
        stale = quote_age_ms is None or quote_age_ms > c.stale_quote_ms

        v["position"] = pos
        v["position_notional_usd"] = pos_notional
        v["realized_pnl_usd"] = realized
        v["unrealized_pnl_usd"] = unreal
        v["fees_usd"] = fees
        v["pnl_usd"] = pnl
        v["peak_pnl_usd"] = self.peak_pnl
        v["drawdown_usd"] = dd
        v["orders_in_window"] = n_win
        v["stale"] = stale
        v["quote_age_ms"] = quote_age_ms

        # The guards' states, in GUARDS order. Alerts are built only when one of them flips,
        # which is rare; on every other event this tuple comparison is all the work.
        flags = (pnl <= -c.loss_limit_usd, dd >= c.max_drawdown_usd,
                 pos_notional > c.max_position_notional_usd, n_win >= c.max_orders, stale)
        alerts: list[dict] = []
        symbol = getattr(engine, "symbol", "")
        if flags != self.flags:
            self.flags = flags
            now = {
                "loss_limit": (flags[0], pnl, -c.loss_limit_usd),
                "max_drawdown": (flags[1], dd, c.max_drawdown_usd),
                "max_position_notional": (flags[2], pos_notional, c.max_position_notional_usd),
                "order_rate": (flags[3], n_win, c.max_orders),
                "stale_data": (flags[4], quote_age_ms, c.stale_quote_ms),
            }
            changed = False
            for g in GUARDS:
                on, value, limit = now[g]
                if on != (g in self._tripped):
                    changed = True
                    if on:
                        self._tripped.add(g)
                    else:
                        self._tripped.discard(g)
                    alerts.append(records.guard_alert(ts_ns, symbol, guard=g, state="trip" if on else "clear",
                                                      value=value, limit=limit))
            if changed:
                v["tripped"] = ",".join(g for g in GUARDS if g in self._tripped)

        kill_now = self._tripped & self.kill_on
        if not v["kill_switch"]:
            if kill_now:
                reasons = ",".join(g for g in GUARDS if g in kill_now)
                v["kill_switch"] = True
                v["kill_switch_reasons"] = reasons
                self._clear_since = None
                alerts.append(records.kill_switch_trip(
                    ts_ns, symbol, reasons=reasons,
                    latch="session" if self.reset_ns is None else f"{c.kill_switch_reset_s:g}s clear"))
                if c.cancel_orders_on_kill:
                    engine.cancel_all(ts_ns, "kill_switch")
        elif self.reset_ns is not None:
            if kill_now:
                self._clear_since = None
            else:
                if self._clear_since is None:
                    self._clear_since = ts_ns
                if ts_ns - self._clear_since >= self.reset_ns:
                    alerts.extend(self.reset_kill_switch(ts_ns, symbol, "clear_for_reset_s"))
        return alerts

    def see_pnl(self, pnl: float) -> None:
        """Raise the high-water mark with a PnL ``update`` was not shown (the replay fast path
        skips updates that would change nothing else)."""
        if pnl > self.peak_pnl:
            self.peak_pnl = pnl

    def reset_kill_switch(self, ts_ns: int, symbol: str = "", reason: str = "manual") -> list[dict]:
        """Clear the kill switch (it trips again at the next update if a guard still holds)."""
        v = self.values
        if not v["kill_switch"]:
            return []
        v["kill_switch"] = False
        v["kill_switch_reasons"] = ""
        self._clear_since = None
        return [records.kill_switch_clear(ts_ns, symbol, reason=reason)]

    @property
    def tripped(self) -> frozenset[str]:
        return frozenset(self._tripped)
