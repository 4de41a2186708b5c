"""What a live session shows while it runs, built from its audit records as they are written.

Feed events (connect, disconnect, failed attempts, stalls, gaps) are printed as they happen.
A status panel per symbol (connection, quote age, rates, machine states, decision, open orders,
paper PnL) is redrawn in place on a terminal (rich) and printed as plain periodic lines
otherwise (a log file, a pipe, a test).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

QUOTE_RATE, TRADE_RATE, QUOTE_AGE = "quote_rate_hz_10s", "trade_rate_hz_10s", "quote_age_ms"


@dataclass
class SymbolStatus:
    connection: str = "waiting"
    states: dict[str, str] = field(default_factory=dict)
    decision: str = "-"
    sample_ns: int = 0  # wall time of the last metrics sample (live: event time is wall time)
    values: dict[str, float] = field(default_factory=dict)
    open_orders: set[str] = field(default_factory=set)
    position: float = 0.0
    cash: float = 0.0
    fills: int = 0
    orders: int = 0

    def pnl(self) -> float | None:
        mid = _float(self.values.get("mid"))
        if mid is None:
            return None if self.fills else 0.0
        return self.cash + self.position * mid


class LiveConsole:
    """Use as ``observer`` of ``run_session``; ``start`` before, ``stop`` after."""

    def __init__(self, symbols: list[str], out: IO[str] | None = None, *, tty: bool | None = None,
                 every_s: float = 10.0, clock: Callable[[], int] = time.time_ns):
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.every_s = every_s
        self.clock = clock
        self.symbols = {s: SymbolStatus() for s in symbols}
        self.feed_lines: list[str] = []
        self._live: Any = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # -- records -----------------------------------------------------------------------------

    def __call__(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        s = self.symbols.get(record.get("symbol") or "")
        if kind == "feed":
            self._feed(record, s)
        elif s is None:
            return
        elif kind == "metrics":
            s.sample_ns, s.values = record["ts_ns"], record.get("values") or {}
            s.states = dict(record.get("states") or s.states)
            if s.connection in ("waiting", "connected"):
                s.connection = "receiving"
        elif kind == "transition":
            s.states[record["machine"]] = record["to"]
        elif kind == "decision":
            s.decision = record["rule"] + (f" ({record['aggressiveness']})" if record.get("eligible") else "")
        elif kind == "order":
            s.orders += 1
            s.open_orders.add(record["order_id"])
        elif kind == "order_result":
            s.open_orders.discard(record["order_id"])
        elif kind == "fill":
            sign = 1.0 if record["side"] == "buy" else -1.0
            s.fills += 1
            s.position += sign * record["qty"]
            s.cash -= sign * record["qty"] * record["price"] + (record.get("fee_usd") or 0.0)

    def _feed(self, record: dict[str, Any], s: SymbolStatus | None) -> None:
        event, detail = record["event"], record.get("detail") or ""
        targets = [s] if s is not None else list(self.symbols.values())
        state = {"connect": "connected", "disconnect": "down", "stall": "stalled", "reconnect": "connected",
                 "rollover": "reconnecting", "server_shutdown": "reconnecting"}.get(event)
        for t in targets:
            if state:
                t.connection = state
        where = f" {record['symbol']}" if record.get("symbol") else ""
        gap = f" (gap {record['gap_ms'] / 1000:.1f} s)" if record.get("gap_ms") else ""
        self.say(f"[{time.strftime('%H:%M:%S')}] feed {event}{where}{gap}: {detail}".rstrip(": "))

    def say(self, line: str) -> None:
        """A line printed now, above the panel on a terminal."""
        self.feed_lines.append(line)
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    # -- the panel ---------------------------------------------------------------------------

    def rows(self) -> list[list[str]]:
        now = self.clock()
        rows = []
        for sym, s in self.symbols.items():
            age = _float(s.values.get(QUOTE_AGE))
            if age is not None and s.sample_ns:
                age_text = f"{(age + (now - s.sample_ns) / 1e6) / 1000:.1f}s"
            else:
                age_text = "-"
            pnl = s.pnl()
            rows.append([sym, s.connection, age_text, _num(s.values.get(QUOTE_RATE)), _num(s.values.get(TRADE_RATE)),
                         "/".join(s.states.get(m, "-") for m in ("regime", "permission", "health")),
                         s.decision, str(len(s.open_orders)), "-" if pnl is None else f"{pnl:+.2f}"])
        return rows

    HEADERS = ["symbol", "connection", "quote age", "quotes/s", "trades/s", "regime/permission/health",
               "decision", "open", "PnL USD"]

    def line(self) -> str:
        return " | ".join(f"{r[0]} {r[1]} quote age {r[2]} q/s {r[3]} t/s {r[4]} {r[5]} {r[6]} open {r[7]} PnL {r[8]}"
                          for r in self.rows())

    def _table(self):
        from rich.table import Table

        table = Table(title="live paper session (Ctrl-C to stop)", title_justify="left")
        for h in self.HEADERS:
            table.add_column(h, justify="left" if h in ("symbol", "connection", "regime/permission/health", "decision") else "right")
        for r in self.rows():
            table.add_row(*r)
        return table

    def start(self) -> None:
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(get_renderable=self._table, console=Console(file=self.out), refresh_per_second=2,
                              transient=False)
            self._live.start()
            return
        self._thread = threading.Thread(target=self._plain, name="live-status", daemon=True)
        self._thread.start()

    def _plain(self) -> None:
        while not self._stopped.wait(self.every_s):
            self._status_line()

    def _status_line(self) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] status {self.line()}", file=self.out, flush=True)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._status_line()  # where every symbol stood at the end
        if self._live is not None:
            self._live.stop()
            self._live = None


def _float(v: Any) -> float | None:
    """A finite number from a logged value (the log writes inf and NaN as strings), else None."""
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _num(v: Any) -> str:
    f = _float(v)
    return "-" if f is None else f"{f:.1f}"
