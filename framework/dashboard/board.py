"""The audit records folded into what the dashboard shows, per symbol.

``Board.apply(record)`` takes records in log order. ``snapshot()`` is everything the page needs
to draw from scratch; ``take_delta()`` is what changed since the previous snapshot or delta:
the current values of each symbol touched, and only the items appended to its lists since.
The page applies a delta to the snapshot it holds, so a burst of thousands of records costs one
message. Lists are bounded (``LIMITS``); the page trims its copies to the same lengths.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

# How many items of each list the board (and the page) keeps per symbol.
LIMITS = {
    "points": 3600,       # metric samples (one per second of event time): an hour
    "changes": 2000,      # state changes per machine, for the bands under the charts
    "transitions": 60,    # the latest transitions, with what they read
    "fills": 500,
    "refusals": 500,
    "orders": 40,         # the latest orders and how they ended
    "alerts": 50,
    "feed": 50,
}
ORDER_STATUS_BY_KIND = {"order": "sent", "ack": "resting", "cancel": "cancelled"}


class Tail:
    """A bounded list that knows how many items were ever appended, so a reader can ask for
    the items appended after its last look."""

    def __init__(self, maxlen: int):
        self.items: deque[Any] = deque(maxlen=maxlen)
        self.total = 0

    def append(self, item: Any) -> None:
        self.items.append(item)
        self.total += 1

    def since(self, total: int) -> list[Any]:
        n = min(self.total - total, len(self.items))
        return list(itertools.islice(self.items, len(self.items) - n, None)) if n > 0 else []


def _num(v: Any) -> float | None:
    """A float for the page (JSON has no inf/nan; the log writes them as strings)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


class SymbolBoard:
    """One symbol: the states, the decision in force, the lists, position and PnL."""

    def __init__(self, symbol: str, charted: list[str]):
        self.symbol = symbol
        self.charted = charted
        self.states: dict[str, dict[str, Any]] = {}  # machine -> {state, since_ns}
        self.decision: dict[str, Any] = {}
        self.lists = {name: Tail(n) for name, n in LIMITS.items() if name != "orders"}
        self.orders: dict[str, dict[str, Any]] = {}  # order_id -> row, the latest LIMITS["orders"]
        self.transition_counts: dict[str, int] = {}
        self.position = 0.0
        self.avg_price = 0.0
        self.realized = 0.0
        self.fees = 0.0
        self.n_fills = 0
        self.n_orders = 0
        self.n_refused = 0
        self.mid: float | None = None
        self.last_values: dict[str, float | None] = {}
        self.tripped: dict[str, dict[str, Any]] = {}
        self.feed = {"connection": "unknown", "gaps": 0, "max_gap_ms": None, "last_event": None,
                     "last_event_ns": None, "quote_age_ms": None, "last_ts_ns": None}

    # ------------------------------------------------------------------ folding records

    def start(self, initial: dict[str, str], decision: dict[str, Any], ts: int) -> None:
        for machine, state in initial.items():
            self.states[machine] = {"state": state, "since_ns": ts}
            self.lists["changes"].append([ts, machine, state])
        self.decision = {**decision, "since_ns": ts}

    def apply(self, r: dict[str, Any]) -> None:
        kind = r.get("kind")
        ts = int(r.get("ts_ns") or 0)
        self.feed["last_ts_ns"] = ts
        if kind == "transition":
            machine = str(r.get("machine"))
            self.states[machine] = {"state": r.get("to"), "since_ns": ts}
            self.transition_counts[machine] = self.transition_counts.get(machine, 0) + 1
            self.lists["changes"].append([ts, machine, r.get("to")])
            self.lists["transitions"].append({
                "ts_ns": ts, "seq": r.get("seq"), "machine": machine, "from": r.get("from"),
                "to": r.get("to"), "rule": r.get("rule"), "guard": " ".join(str(r.get("guard") or "").split()),
                "inputs": r.get("inputs") or {}, "params": r.get("params") or {}})
        elif kind == "decision":
            self.decision = {k: r.get(k) for k in ("eligible", "aggressiveness", "risk_budget", "rule")}
            self.decision["since_ns"] = ts
        elif kind == "metrics":
            values = r.get("values") or {}
            self.mid = _num(values.get("mid")) if values.get("mid") is not None else self.mid
            self.last_values = {name: _num(values.get(name)) for name in self.charted}
            self.feed["quote_age_ms"] = _num(values.get("quote_age_ms"))
            self.lists["points"].append([ts, *(self.last_values[name] for name in self.charted)])
        elif kind == "fill":
            self._fill(r, ts)
        elif kind == "reject" and (r.get("stage") in ("decision", "risk") or "order_id" not in r):
            self.n_refused += 1
            self.lists["refusals"].append({"ts_ns": ts, "price": self.mid, "stage": r.get("stage"),
                                           "rule": r.get("rule"), "reason": r.get("reason"),
                                           "intent_id": r.get("intent_id")})
        elif kind in ("order", "ack", "cancel", "order_result", "reject"):
            self._order(r, kind, ts)
        elif kind == "alert":
            self._alert(r, ts)
        elif kind == "feed":
            self._feed(r, ts)

    def _order(self, r: dict[str, Any], kind: str, ts: int) -> None:
        oid = str(r.get("order_id"))
        if kind == "order":
            self.n_orders += 1
            self.orders[oid] = {"order_id": oid, "ts_ns": ts, "side": r.get("side"), "style": r.get("style"),
                                "qty": _num(r.get("qty")), "notional_usd": _num(r.get("notional_usd")),
                                "limit_price": _num(r.get("limit_price")), "status": "sent",
                                "filled_qty": 0.0, "avg_fill_price": None, "reason": None}
            while len(self.orders) > LIMITS["orders"]:
                del self.orders[next(iter(self.orders))]
            return
        row = self.orders.get(oid)
        if row is None:  # older than the rows kept
            return
        if kind == "reject":
            row.update(status="rejected", reason=r.get("reason"))
        elif kind == "order_result":
            row.update(status=r.get("status"), reason=r.get("reason") or row["reason"],
                       filled_qty=_num(r.get("filled_qty")), avg_fill_price=_num(r.get("avg_fill_price")))
        elif kind == "cancel":
            row.update(status="cancelled", reason=r.get("reason"))
        elif row["status"] == "sent":
            row["status"] = ORDER_STATUS_BY_KIND[kind]

    def _fill(self, r: dict[str, Any], ts: int) -> None:
        price, qty = _num(r.get("price")), _num(r.get("qty"))
        side = r.get("side")
        self.n_fills += 1
        self.fees += _num(r.get("fee_usd")) or 0.0
        if price is not None and qty is not None and side in ("buy", "sell"):
            self._account(1 if side == "buy" else -1, qty, price)
        if isinstance(r.get("position"), (int, float)):
            self.position = float(r["position"])  # the engine's figure is the truth
        self.lists["fills"].append({"ts_ns": ts, "price": price, "qty": qty, "side": side,
                                    "liquidity": r.get("liquidity"), "how": r.get("how"),
                                    "order_id": r.get("order_id")})
        row = self.orders.get(str(r.get("order_id")))
        if row is not None:
            row["filled_qty"] = _num(r.get("filled_qty"))
            row["status"] = "filled" if r.get("done") else "partial"

    def _account(self, sgn: int, qty: float, px: float) -> None:
        """Average-cost accounting, as the paper engine keeps it (realized PnL before fees)."""
        pos = self.position
        new = pos + sgn * qty
        if pos == 0.0 or (pos > 0) == (sgn > 0):
            self.avg_price = (self.avg_price * abs(pos) + px * qty) / abs(new) if new else 0.0
            self.position = new
            return
        close = min(qty, abs(pos))
        self.realized += close * (px - self.avg_price) * (1.0 if pos > 0 else -1.0)
        if abs(new) <= 1e-12 * max(abs(pos), qty):
            self.position, self.avg_price = 0.0, 0.0
        elif (new > 0) != (pos > 0):
            self.position, self.avg_price = new, px
        else:
            self.position = new

    def _alert(self, r: dict[str, Any], ts: int) -> None:
        guard = str(r.get("guard", "?"))
        on = bool(r.get("tripped")) if "tripped" in r else r.get("state") == "trip"
        item = {"ts_ns": ts, "guard": guard, "state": "trip" if on else "clear", "value": _num(r.get("value")),
                "limit": _num(r.get("limit")), "reason": r.get("reason") or r.get("reasons")}
        self.lists["alerts"].append(item)
        if on:
            self.tripped[guard] = item
        else:
            self.tripped.pop(guard, None)

    def _feed(self, r: dict[str, Any], ts: int) -> None:
        event = r.get("event")
        item = {"ts_ns": ts, "event": event, "detail": r.get("detail"), "gap_ms": _num(r.get("gap_ms"))}
        self.lists["feed"].append(item)
        self.feed["last_event"], self.feed["last_event_ns"] = event, ts
        if event in ("connect", "reconnect"):
            self.feed["connection"] = "connected"
        elif event in ("disconnect", "server_shutdown"):
            self.feed["connection"] = "disconnected"
        elif event == "end":
            self.feed["connection"] = "ended"
        elif event == "stall":
            self.feed["connection"] = "stalled"
        if event == "gap":
            self.feed["gaps"] += 1
            gap = item["gap_ms"]
            if gap is not None and (self.feed["max_gap_ms"] is None or gap > self.feed["max_gap_ms"]):
                self.feed["max_gap_ms"] = gap

    # ------------------------------------------------------------------ what the page gets

    def values(self) -> dict[str, Any]:
        """The current scalars (sent whole: they are small)."""
        unreal = self.position * (self.mid - self.avg_price) if self.mid is not None and self.position else 0.0
        return {
            "states": self.states, "decision": self.decision, "transition_counts": self.transition_counts,
            "mid": self.mid, "last_values": self.last_values, "tripped": self.tripped, "feed": self.feed,
            "orders": list(self.orders.values()),
            "pnl": {"position": self.position, "avg_price": self.avg_price or None,
                    "realized_usd": self.realized, "unrealized_usd": unreal, "fees_usd": self.fees,
                    "net_usd": self.realized + unreal - self.fees, "fills": self.n_fills,
                    "orders": self.n_orders, "refused": self.n_refused},
        }


class Board:
    """Every symbol of a session, plus the session itself (name, event time, end)."""

    def __init__(self, charted: list[str] | None = None):
        self.charted = list(charted or ["mid", "spread_bps"])
        self.symbols: dict[str, SymbolBoard] = {}
        self.session: dict[str, Any] = {"name": None, "symbols": [], "start_ns": None, "event_ns": None,
                                        "records": 0, "ended": False, "end_reason": None, "reloads": []}
        self._dirty: set[str] = set()
        self._session_dirty = False
        self._sent: dict[str, dict[str, int]] = {}  # symbol -> list -> total at the last send

    def _symbol(self, symbol: str) -> SymbolBoard:
        sb = self.symbols.get(symbol)
        if sb is None:
            sb = self.symbols[symbol] = SymbolBoard(symbol, self.charted)
        return sb

    def apply(self, r: dict[str, Any]) -> None:
        kind = r.get("kind")
        ts = r.get("ts_ns")
        s = self.session
        s["records"] += 1
        if isinstance(ts, int) and (s["event_ns"] is None or ts > s["event_ns"]):
            s["event_ns"] = ts
        self._session_dirty = True
        if kind == "session_start":
            s.update(name=r.get("session"), symbols=list(r.get("symbols") or []), start_ns=ts)
            for sym in s["symbols"]:
                self._symbol(sym).start(dict((r.get("initial") or {}).get(sym, {})),
                                        dict((r.get("decision") or {}).get(sym, {})), int(ts or 0))
                self._dirty.add(sym)
            return
        if kind == "session_end":
            s.update(ended=True, end_reason=r.get("end_reason"))
            return
        if kind == "config_reload":
            s["reloads"] = [*s["reloads"][-9:], {"ts_ns": ts, "accepted": r.get("accepted"),
                                                 "errors": list(r.get("errors") or [])[:5]}]
            return
        symbol = r.get("symbol") or ""
        targets = [symbol] if symbol else list(self.symbols)  # a feed event for all symbols
        for sym in targets:
            self._symbol(sym).apply(r)
            self._dirty.add(sym)

    def _payload(self, full: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for sym in (self.symbols if full else sorted(self._dirty)):
            sb = self.symbols[sym]
            sent = self._sent.setdefault(sym, {})
            append = {}
            for name, tail in sb.lists.items():
                if full:
                    append[name] = list(tail.items)
                    continue
                items = tail.since(sent.get(name, 0))
                sent[name] = tail.total
                if items:
                    append[name] = items
            out[sym] = {**sb.values(), "append": append}
        return out

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a page that starts from nothing. It does not count as a send: take
        the pending delta first, so the snapshot and the deltas after it neither miss nor
        repeat an item."""
        return {"type": "snapshot", "session": self.session, "symbols": self._payload(full=True)}

    def take_delta(self) -> dict[str, Any] | None:
        """What changed since the previous delta; None when nothing did."""
        if not self._dirty and not self._session_dirty:
            return None
        out = {"type": "delta", "session": self.session, "symbols": self._payload(full=False)}
        self._dirty.clear()
        self._session_dirty = False
        return out
