"""Order intents and the generators that produce them.

An intent is what a strategy would like to do; the runtime checks it against the decision
(eligible, aggressiveness, risk budget) and the risk guard before it becomes a paper order.
Prediction is out of scope: the default generator is a periodic probe that trades a fixed
notional on alternating sides, so execution quality can be measured in every regime.

The runtime calls ``due(ts_ns, symbol)`` on every clock tick (the replay fast path only from
``next_due_ns(symbol)`` on); it returns the intents that became due at or before ``ts_ns``.
Intent ids are deterministic. The periodic probe and the file are two implementations; a
user's own strategy is a third (``generator: python``, ``strategy.py``), which also sees every
event (``on_event``) and reads the metrics, states and decision.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from framework.spec.errors import SpecError, SpecErrors

from .config import IntentConfig, ProbeConfig

NS_PER_S = 1_000_000_000
_NEVER = 1 << 62
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Intent:
    ts_ns: int  # event time at which the intent became due (the decision time)
    symbol: str
    side: str  # 'buy' | 'sell'
    notional_usd: float
    style: str  # 'take' | 'passive'
    limit_offset_bps: float | None = None  # passive: distance from our touch, away from the spread
    limit_offset_ticks: int | None = None  # used when limit_offset_bps is None; default 0 (join)
    ttl_s: float | None = None  # passive: None = execution.passive.ttl_s
    intent_id: str = ""


@runtime_checkable
class IntentGenerator(Protocol):
    def due(self, ts_ns: int, symbol: str) -> list[Intent]:
        """Intents for ``symbol`` due at or before ``ts_ns`` and not returned before."""
        ...

    def next_due_ns(self, symbol: str) -> int | None:
        """No intent for ``symbol`` is due before this time (None: unknown, ask at every tick).
        The replay fast path calls ``due`` only from then on."""
        ...


class NoIntents:
    """A generator that never wants to trade."""

    def due(self, ts_ns: int, symbol: str) -> list[Intent]:
        return []

    def next_due_ns(self, symbol: str) -> int | None:
        return _NEVER


class PeriodicProbe:
    """Every ``period_s`` of event time, one intent of ``notional_usd`` per symbol.

    Fire times are the boundaries of a fixed grid of event time (multiples of ``period_s``
    since the epoch), each delayed by a seeded uniform jitter in [0, jitter_s]; the first
    boundary after the first event a symbol sees is the first fire time. An intent is returned
    at the first event or tick at or after its fire time; when a gap in the data skips several
    boundaries only one intent is produced (no catch-up burst).

    Sides alternate starting with ``first_side``. Style ``take`` or ``passive`` is fixed;
    ``alternate`` goes take, take, passive, passive, ... so both sides get both styles.
    """

    def __init__(self, cfg: ProbeConfig | IntentConfig | None = None, seed: int | str = 0):
        if isinstance(cfg, IntentConfig):
            cfg = cfg.probe
        self.cfg = cfg or ProbeConfig()
        self._period = int(round(self.cfg.period_s * NS_PER_S))
        self._seed = seed
        self._state: dict[str, list] = {}  # symbol -> [next_fire_ns, boundary_ns, count, rng]

    def _jitter(self, rng: random.Random) -> int:
        j = self.cfg.jitter_s
        return int(round(rng.uniform(0.0, j) * NS_PER_S)) if j > 0 else 0

    def next_due_ns(self, symbol: str) -> int | None:
        st = self._state.get(symbol)
        return None if st is None else st[0]  # None: the first call sets the schedule up

    def due(self, ts_ns: int, symbol: str) -> list[Intent]:
        st = self._state.get(symbol)
        if st is None:
            rng = random.Random(f"probe:{self._seed}:{symbol}")
            boundary = (ts_ns // self._period + 1) * self._period
            st = self._state[symbol] = [boundary + self._jitter(rng), boundary, 0, rng]
            return []
        if ts_ns < st[0]:
            return []
        n = st[2]
        st[2] = n + 1
        boundary = (ts_ns // self._period + 1) * self._period
        st[1] = boundary
        st[0] = boundary + self._jitter(st[3])
        c = self.cfg
        other = "sell" if c.first_side == "buy" else "buy"
        side = c.first_side if n % 2 == 0 else other
        style = c.style if c.style != "alternate" else ("take" if (n // 2) % 2 == 0 else "passive")
        return [Intent(
            ts_ns=ts_ns, symbol=symbol, side=side, notional_usd=float(c.notional_usd), style=style,
            limit_offset_bps=c.limit_offset_bps,
            limit_offset_ticks=None if c.limit_offset_bps is not None else c.limit_offset_ticks,
            ttl_s=c.ttl_s, intent_id=f"{symbol}-probe-{n + 1}",
        )]


_SIDES = ("buy", "sell")
_STYLES = {"take": "take", "taker": "take", "market": "take", "passive": "passive",
           "maker": "passive", "limit": "passive"}


class FileIntents:
    """Intents read from a CSV (with a header row) or JSONL file, fired in time order.

    Fields: a time (``ts_ns`` integer ns, ``ts_ms``, ``ts_s``, or ``ts`` as ISO-8601 text or
    integer ns), ``side`` (buy/sell), ``notional_usd`` (or ``notional``), ``style``
    (take/passive; taker/market and maker/limit accepted), and optionally ``symbol`` (empty: every
    symbol), ``limit_offset_bps``, ``limit_offset_ticks``, ``ttl_s``, ``intent_id``. A row fires at
    the first event at or after its time. Bad rows raise SpecErrors with the file and line.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._rows = _read_rows(self.path)
        self._next: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def next_due_ns(self, symbol: str) -> int | None:
        i = self._next.get(symbol, 0)  # the next row, maybe another symbol's: early is safe
        return self._rows[i][0] if i < len(self._rows) else _NEVER

    def due(self, ts_ns: int, symbol: str) -> list[Intent]:
        rows = self._rows
        i = self._next.get(symbol, 0)
        out: list[Intent] = []
        while i < len(rows) and rows[i][0] <= ts_ns:
            r = rows[i][2]
            if not r["symbol"] or r["symbol"] == symbol:
                out.append(Intent(ts_ns=ts_ns, symbol=symbol, side=r["side"],
                                  notional_usd=r["notional_usd"], style=r["style"],
                                  limit_offset_bps=r["limit_offset_bps"],
                                  limit_offset_ticks=r["limit_offset_ticks"], ttl_s=r["ttl_s"],
                                  intent_id=r["intent_id"] or f"{symbol}-file-{rows[i][1]}"))
            i += 1
        self._next[symbol] = i
        return out


def _parse_ts(rec: dict) -> int:
    if rec.get("ts_ns") not in (None, ""):
        return int(rec["ts_ns"])
    if rec.get("ts_ms") not in (None, ""):
        return int(round(float(rec["ts_ms"]) * 1_000_000))
    if rec.get("ts_s") not in (None, ""):
        return int(round(float(rec["ts_s"]) * NS_PER_S))
    v = rec.get("ts")
    if v in (None, ""):
        raise ValueError("no time; expected ts_ns, ts_ms, ts_s or ts")
    if isinstance(v, int) or (isinstance(v, str) and v.strip().lstrip("-").isdigit()):
        return int(v)
    dt = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"time {v!r} has no zone; expected ISO-8601 with a zone (e.g. Z)")
    d = dt - _EPOCH
    return (d.days * 86_400 + d.seconds) * NS_PER_S + d.microseconds * 1000


def _opt_float(v) -> float | None:
    return None if v in (None, "") else float(v)


def _row(rec: dict) -> tuple[int, dict]:
    ts = _parse_ts(rec)
    side = str(rec.get("side", "")).strip().lower()
    if side not in _SIDES:
        raise ValueError(f"side {rec.get('side')!r}; expected buy or sell")
    style = _STYLES.get(str(rec.get("style", "")).strip().lower())
    if style is None:
        raise ValueError(f"style {rec.get('style')!r}; expected take or passive")
    notional = rec.get("notional_usd", rec.get("notional"))
    if notional in (None, ""):
        raise ValueError("no notional; expected notional_usd")
    notional = float(notional)
    if not notional > 0:
        raise ValueError(f"notional {notional!r}; expected a positive number")
    ticks = rec.get("limit_offset_ticks")
    ttl = _opt_float(rec.get("ttl_s"))
    if ttl is not None and ttl <= 0:
        raise ValueError(f"ttl_s {ttl!r}; expected a positive number")
    return ts, {
        "symbol": str(rec.get("symbol") or "").upper(), "side": side, "style": style,
        "notional_usd": notional, "limit_offset_bps": _opt_float(rec.get("limit_offset_bps")),
        "limit_offset_ticks": None if ticks in (None, "") else int(ticks),
        "ttl_s": ttl, "intent_id": str(rec.get("intent_id") or ""),
    }


def _read_rows(path: str) -> list[tuple[int, int, dict]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecErrors([SpecError(path, 0, 0, f"cannot read intents file ({exc.strerror}); expected a readable CSV or JSONL file")]) from None
    records: list[tuple[int, dict]] = []  # (line, raw record)
    errors: list[SpecError] = []
    if path.endswith((".jsonl", ".ndjson")):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(SpecError(path, n, exc.colno, f"invalid JSON ({exc.msg}); expected one JSON object per line"))
                continue
            if not isinstance(rec, dict):
                errors.append(SpecError(path, n, 1, "not a JSON object; expected one JSON object per line"))
                continue
            records.append((n, rec))
    else:
        reader = csv.DictReader(text.splitlines())
        for rec in reader:
            records.append((reader.line_num, {k.strip(): (v.strip() if isinstance(v, str) else v)
                                              for k, v in rec.items() if k}))
    rows: list[tuple[int, int, dict]] = []
    for n, rec in records:
        try:
            ts, row = _row(rec)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            errors.append(SpecError(path, n, 1, msg if "expected" in msg else f"{msg}; expected a valid intent row"))
            continue
        rows.append((ts, n, row))
    if errors:
        raise SpecErrors(errors)
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows
