"""Labelled trouble injected into a real recording, so anyone can test the gate on their data.

``inject(base, out, shocks=[(at_s, len_s)], gaps=[...], repeat=N, every_s=E, garbage_rate=R)``
reads a frames recording and writes another one, in the same format (receive stamp, space, raw
Binance frame), with:

- **shocks**: inside the window every book ticker of the symbol is rewritten as a liquidity
  sweep: the mid drops by ``jump_bps`` and the spread blows out to ``spread_bps`` (prices keep
  the recording's own number of decimals and field layout), a book ticker is inserted at the
  window's start, and a burst of aggressive sells prints at the new bid every ``burst_ms``.
  After the window the real frames resume unchanged: the price comes back, as after a sweep;
- **gaps**: every frame inside the window is dropped (nothing is received);
- **garbage**: after any frame, with probability ``garbage_rate`` (seeded), a malformed frame
  with the same stamp (truncated JSON, a binary blob, an unknown stream).

Times are seconds from the recording's first frame; each window repeats ``repeat`` times,
``every_s`` apart. The windows are written to a sidecar ``OUT.labels.json`` (``kind``,
``symbol``, ``start_ns``, ``end_ns``), which ``execlab score`` reads next to a run's input.
"""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from .replay import read_frames

NS = 1_000_000_000


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def _price(x: float, like: str) -> str:
    """x on the price grid the recording's own string suggests (its last nonzero decimal, so
    "61762.01000000" gives cents), written with the same number of decimals."""
    d = _decimals(like)
    grid = _decimals(like.rstrip("0")) if "." in like else 0
    return f"{round(x, grid):.{d}f}"


def _windows(spans: list[tuple[float, float]], repeat: int, every_s: float) -> list[tuple[float, float]]:
    return sorted((at + k * every_s, length) for at, length in spans for k in range(repeat))


def _garbage(rng: random.Random) -> str:
    return rng.choice([
        '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"6',  # truncated
        "\x00\x01\x02 not a frame",
        '{"stream":"unknown@nothing","data":[]}',
        '{"stream":"btcusdt@trade","data":{"e":"trade","p":"abc","q":null}}',
    ])


def inject(base: str | Path, out: str | Path, *, shocks: list[tuple[float, float]] = (),
           gaps: list[tuple[float, float]] = (), repeat: int = 1, every_s: float = 60.0,
           garbage_rate: float = 0.0, jump_bps: float = 40.0, spread_bps: float = 20.0,
           burst_ms: float = 5.0, seed: int = 7) -> dict[str, Any]:
    """Write ``out`` and its labels sidecar; returns the labels document."""
    frames = list(read_frames(base))
    if not frames:
        raise ValueError(f"{base}: no frames; expected a frames recording")
    t0 = frames[0][0]
    shock_w = [(t0 + round(a * NS), t0 + round((a + n) * NS)) for a, n in _windows(list(shocks), repeat, every_s)]
    gap_w = [(t0 + round(a * NS), t0 + round((a + n) * NS)) for a, n in _windows(list(gaps), repeat, every_s)]
    rng = random.Random(seed)
    book_tpl: dict[str, Any] | None = None
    trade_tpl: dict[str, Any] | None = None
    symbol = ""
    lines: list[tuple[int, str]] = []
    pending = [a for a, _ in shock_w]  # shock starts not yet marked by an inserted book ticker
    trade_id = 0
    n_garbage = 0
    last_mid = None
    burst_next: dict[int, int] = {}
    for ns, raw in frames:
        # Everything due before this frame: shock starts and burst prints.
        for a, b in shock_w:
            if a in pending and a <= ns and book_tpl is not None and last_mid is not None:
                pending.remove(a)
                lines.append((a, _shock_book(book_tpl, last_mid, jump_bps, spread_bps)))
            nxt = burst_next.setdefault(a, a)
            while trade_tpl is not None and last_mid is not None and nxt <= min(ns, b) and nxt < b:
                trade_id += 1
                lines.append((nxt, _burst_trade(trade_tpl, last_mid, jump_bps, spread_bps, nxt, trade_id)))
                nxt += round(burst_ms * 1e6)
            burst_next[a] = nxt
        if any(a <= ns < b for a, b in gap_w):
            continue
        try:
            msg = json.loads(raw)
            data = msg.get("data") if isinstance(msg, dict) else None
        except ValueError:
            data = None
        stream = msg.get("stream", "") if isinstance(data, dict) else ""
        if isinstance(data, dict) and stream.endswith("@bookTicker"):
            book_tpl = msg
            symbol = data.get("s", symbol)
            try:
                bid, ask = float(data["b"]), float(data["a"])
            except (KeyError, TypeError, ValueError):
                bid = ask = float("nan")
            if any(a <= ns < b for a, b in shock_w):
                raw = _shock_book(msg, (bid + ask) / 2 if last_mid is None else last_mid, jump_bps, spread_bps)
            elif bid == bid:
                last_mid = (bid + ask) / 2
        elif isinstance(data, dict) and stream.endswith("@trade"):
            trade_tpl = msg
        lines.append((ns, raw))
        if garbage_rate > 0 and rng.random() < garbage_rate:
            lines.append((ns, _garbage(rng)))
            n_garbage += 1
    lines.sort(key=lambda x: x[0])  # stable: inserted frames go before real ones at equal stamps
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        for ns, raw in lines:
            f.write(f"{ns} {raw}\n")
    labels = {"base": str(base), "symbol": symbol,
              "params": {"jump_bps": jump_bps, "spread_bps": spread_bps, "burst_ms": burst_ms,
                         "garbage_rate": garbage_rate, "seed": seed},
              "garbage_frames": n_garbage,
              "windows": sorted([{"kind": "shock", "symbol": symbol, "start_ns": a, "end_ns": b} for a, b in shock_w]
                                + [{"kind": "gap", "symbol": symbol, "start_ns": a, "end_ns": b} for a, b in gap_w],
                                key=lambda w: w["start_ns"])}
    Path(str(out) + ".labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    return labels


def _shock_book(tpl: dict[str, Any], mid: float, jump_bps: float, spread_bps: float) -> str:
    data = dict(tpl["data"])
    m = mid * (1 - jump_bps * 1e-4)
    half = m * spread_bps * 0.5e-4
    data["b"] = _price(m - half, data["b"])
    data["a"] = _price(m + half, data["a"])
    data["B"] = str(Decimal(data["B"]) / 10) if data.get("B") else data.get("B")
    data["A"] = str(Decimal(data["A"]) / 10) if data.get("A") else data.get("A")
    return json.dumps({"stream": tpl["stream"], "data": data}, separators=(",", ":"))


def _burst_trade(tpl: dict[str, Any], mid: float, jump_bps: float, spread_bps: float, ns: int,
                 trade_id: int) -> str:
    data = dict(tpl["data"])
    m = mid * (1 - jump_bps * 1e-4)
    data["p"] = _price(m * (1 - spread_bps * 0.5e-4), data["p"])
    data["m"] = True  # the buyer is the maker: aggressive sells
    ms = ns // 1_000_000
    for key in ("E", "T"):
        if key in data:
            data[key] = ms
    if "t" in data:
        data["t"] = 9_000_000_000_000 + trade_id  # an id no real trade uses
    return json.dumps({"stream": tpl["stream"], "data": data}, separators=(",", ":"))
