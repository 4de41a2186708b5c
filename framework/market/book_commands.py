"""``execlab book RECORDING``: the local order book rebuilt from a recording's depth frames."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
NS = 1_000_000_000


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "book", help="rebuild the L2 order book from a recording's depth frames",
        description="Replay a recording's diff-depth frames (and REST snapshot, if any) through "
                    "the local order book with Binance's sequencing rules; print the sequencing "
                    "figures, the agreement with the recording's book tickers and the book at "
                    "a moment.")
    p.add_argument("recording", help="a .frames.gz recording with depth frames")
    p.add_argument("--symbol", default=None, help="symbol (default: the first with depth)")
    p.add_argument("--at", default=None, metavar="TIME",
                   help="the book after the frames received up to TIME: ISO-8601 UTC, epoch "
                        "milliseconds, or +SECONDS after the first frame (default: the end)")
    p.add_argument("--levels", type=int, default=10, metavar="N",
                   help="levels per side to print (default 10)")
    p.add_argument("--walk", default="0.1,1,5", metavar="QTY[,QTY...]",
                   help="taker quantities to walk the book with (default 0.1,1,5)")
    p.add_argument("--bps", default="5,10,25", metavar="BPS[,BPS...]",
                   help="bands around the mid for depth (default 5,10,25)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_book)


def _fail(message: str) -> int:
    print(f"execlab book: {message}", file=sys.stderr)
    return 2


def parse_at(text: str, start_ns: int) -> int | None:
    """ISO-8601 (UTC unless an offset is given), epoch milliseconds, or +SECONDS."""
    t = text.strip()
    try:
        if t.startswith("+"):
            return start_ns + int(round(float(t[1:]) * NS))
        if re.fullmatch(r"\d+(\.\d+)?", t):
            return int(round(float(t) * 1_000_000))
    except ValueError:
        return None
    if _ISO.match(t):
        iso = t.replace(" ", "T").replace("Z", "+00:00")
        frac = ""
        m = re.search(r"\.(\d+)", iso)
        if m:
            frac, iso = m.group(1), iso[:m.start()] + iso[m.end():]
        try:
            dt = datetime.fromisoformat(iso)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * NS + (int((frac + "0" * 9)[:9]) if frac else 0)
    return None


def _numbers(text: str, name: str) -> list[float] | str:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        return f"{name} {text!r}; expected comma-separated positive numbers like 0.1,1,5"
    if not vals or not all(0 < v < float("inf") for v in vals):
        return f"{name} {text!r}; expected comma-separated positive numbers like 0.1,1,5"
    return vals


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cmd_book(args: argparse.Namespace) -> int:
    path = Path(args.recording)
    if not path.is_file():
        return _fail(f"{path}: no such file; expected a .frames.gz recording")
    if args.levels < 0:
        return _fail(f"--levels {args.levels}; expected 0 or more")
    walks = _numbers(args.walk, "--walk")
    bands = _numbers(args.bps, "--bps")
    for v in (walks, bands):
        if isinstance(v, str):
            return _fail(v)
    from .replay import detect_format, read_frames
    try:
        if detect_format(path) != "frames":
            return _fail(f"{path}: a CSV dump has no depth; expected a .frames.gz recording")
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    at_ns = None
    if args.at is not None:
        first = next(iter(read_frames(path)), None)
        at_ns = parse_at(args.at, first[0] if first else 0)
        if at_ns is None:
            return _fail(f"--at {args.at!r} is not a time; expected ISO-8601 UTC "
                         "(2024-08-08T23:58:00Z), epoch milliseconds, or +SECONDS")
    from .book_replay import replay_book
    book, rep = replay_book(path, args.symbol, at_ns=at_ns)
    if book is None:
        what = f"for {args.symbol.upper()} " if args.symbol else ""
        when = f"up to {args.at} " if args.at else ""
        return _fail(f"{path}: no depth frames {what}{when}(the recording has none, or "
                     "another symbol's; see --symbol)")
    if args.symbol is None and rep.other_symbols:
        return _fail(f"{path}: depth of several symbols ({rep.symbol}, "
                     f"{', '.join(rep.other_symbols)}); choose one with --symbol")
    out = summary(book, rep, levels=args.levels, walks=walks, bands=bands)
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(format_summary(out))
    return 0


def summary(book, rep, *, levels: int, walks: list[float], bands: list[float]) -> dict:
    """Everything the command prints, as plain data."""
    c = book.counters
    span = rep.last_ns - rep.first_ns
    return {
        "symbol": rep.symbol, "market": "usdm" if rep.futures else "spot",
        "at": _iso(rep.last_ns), "at_ns": rep.last_ns, "frames": rep.frames,
        "state": book.state, "in_sync": book.in_sync, "complete": book.complete,
        "last_update_id": book.last_update_id,
        "sequencing": {**c.as_dict(), "snapshots_unattributed": rep.snapshots_unattributed,
                       "malformed": dict(rep.errors),
                       "span_s": span / NS, "in_sync_s": rep.in_sync_ns / NS,
                       "in_sync_fraction": rep.in_sync_fraction,
                       "gaps_first": [[_iso(t), why] for t, why in rep.gaps]},
        "ticker_check": _ticker(rep.ticker),
        "best_bid": book.best_bid(), "best_ask": book.best_ask(), "mid": book.mid(),
        "bids": book.levels("bid", levels), "asks": book.levels("ask", levels),
        "levels_total": {"bids": len(book.bids), "asks": len(book.asks)},
        "depth": [{"bps": b, **book.depth_within_bps(b)} for b in bands],
        "imbalance": {str(n): book.imbalance(n) for n in (1, 5, 10)},
        "walks": [{k: getattr(w, k) for k in w.__struct_fields__}
                  for q in walks for w in (book.walk("buy", q), book.walk("sell", q))],
    }


def _ticker(tk) -> dict:
    d = {k: getattr(tk, k) for k in tk.__struct_fields__}
    d["by_id_agree_rate"] = tk.by_id_all_agree / tk.by_id_compared if tk.by_id_compared else None
    d["arrival_prices_agree_rate"] = tk.prices_agree / tk.compared if tk.compared else None
    return d


def _f(x, nd=2) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def format_summary(s: dict) -> str:
    q = s["sequencing"]
    tk = s["ticker_check"]
    lines = [
        f"{s['symbol']} {s['market']} book at {s['at']} (update id {s['last_update_id']}): "
        f"{s['state']}{'' if s['in_sync'] else ' (OUT OF SYNC)'}",
        f"sequencing: {q['diffs']:,} diffs, {q['applied']:,} applied, {q['replayed']:,} replayed "
        f"on a snapshot, {q['dropped_old']:,} dropped as old, {q['buffered']:,} buffered; "
        f"{q['gaps']} gaps, {q['resyncs']} resyncs, {q['snapshots_used']}/{q['snapshots']} "
        f"snapshots used; in sync {q['in_sync_s']:.1f} s of {q['span_s']:.1f} s "
        f"({100 * q['in_sync_fraction']:.1f} %)",
    ]
    if q["malformed"]:
        lines.append("malformed depth: " + ", ".join(f"{k} {v}" for k, v in q["malformed"].items()))
    for t, why in q["gaps_first"]:
        lines.append(f"  gap at {t}: {why}")
    lines.append(
        f"book tickers: {tk['tickers']:,}; by update id: {tk['by_id_all_agree']:,} of "
        f"{tk['by_id_compared']:,} agree (price and size); on arrival (book at least as new): "
        f"prices agree {tk['prices_agree']:,} of {tk['compared']:,}, ticker ahead of the book "
        f"{tk['ticker_ahead']:,}")
    lines.append(f"{'bid qty':>14} {'bid':>14} | {'ask':<14} {'ask qty':<14}")
    bids, asks = s["bids"], s["asks"]
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        lines.append(f"{(repr(b[1]) if b else ''):>14} {(repr(b[0]) if b else ''):>14} | "
                     f"{(repr(a[0]) if a else ''):<14} {(repr(a[1]) if a else ''):<14}")
    lines.append(f"levels: {s['levels_total']['bids']:,} bids, {s['levels_total']['asks']:,} asks; "
                 f"mid {_f(s['mid'], 3)}; imbalance " +
                 ", ".join(f"{n} lvl {_f(v, 3)}" for n, v in s["imbalance"].items()))
    for d in s["depth"]:
        lines.append(f"within {d['bps']:g} bps: bids {_f(d['bid_qty'], 4)} "
                     f"({_f(d['bid_notional'], 0)} notional), asks {_f(d['ask_qty'], 4)} "
                     f"({_f(d['ask_notional'], 0)}){'' if d['known'] else ' [beyond what the book has observed]'}")
    for w in s["walks"]:
        lines.append(f"{w['side']} {w['qty']:g}: avg {_f(w['avg_price'], 4)} over {w['levels']} "
                     f"levels, {w['cost_bps']:.3f} bps from mid, {w['touch_cost_bps']:.3f} bps "
                     f"from the touch" + ("" if w["filled"] >= w["qty"] else
                                          f", only {w['filled']:g} visible") +
                     (" [unknown territory]" if w["unknown"] else ""))
    return "\n".join(lines)
