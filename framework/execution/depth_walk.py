"""What a taker order costs by the real depth of a recording versus the paper engine's
stylised walk (``execution.taker.impact: walk``).

The stylised walk prices size beyond the touch as if level ``k = 1 .. walk_max_levels`` held
the displayed touch size ``D`` at ``P x (1 +- k x walk_step_bps / 1e4)`` rounded to the tick
away from us; what is left after the last level is cancelled (see ``PaperEngine._take``,
documented in docs/execution.md "Taker"). The real walk consumes the levels of the local book
rebuilt from the recording's depth frames at the same moment.

``python -m framework.execution.depth_walk [RECORDING] [--every S] [--qty 0.1,1,5]`` prints
both, per moment and on average. With ``--engine`` it measures the paper engine itself instead:
the same recording through two engines per quantity, one judging takers against the local book
(``model: book``, a session with ``market.depth``), one with the stylised walk (``model: top``),
each sending a buy and a sell of that quantity every ``--every`` seconds with a fixed 25 ms
latency; our consumption carries from order to order as in a run. A measurement for the
documentation, not part of a run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from framework.market.book import OrderBook
from framework.market.decode import FrameDecoder
from framework.market.depth import DepthSnapshot, DepthUpdate, decode_depth
from framework.market.events import Quote
from framework.market.replay import read_frames

from .config import ExecutionConfig, TakerConfig

DEFAULT_RECORDING = Path(__file__).resolve().parents[2] / "data" / "binance-spot-btcusdt-20240808.frames.gz"


def stylised_walk(sgn: int, touch: float, displayed: float, qty: float, step_bps: float,
                  max_levels: int, tick: float) -> tuple[float, float]:
    """(filled, average price) of the engine's walk for a buy (``sgn`` 1) or sell (-1)."""
    dp = max(0, round(-math.log10(tick))) if tick < 1 else 0
    fills = [(touch, min(qty, displayed))]
    remaining = qty - fills[0][1]
    k = 0
    while displayed > 0 and remaining > 1e-12 * qty and k < max_levels:
        k += 1
        raw = touch * (1.0 + sgn * k * step_bps / 1e4)
        n = raw / tick
        n = math.ceil(n - 1e-9) if sgn > 0 else math.floor(n + 1e-9)
        take = min(remaining, displayed)
        fills.append((round(n * tick, dp), take))
        remaining -= take
    filled = sum(q for _, q in fills)
    return filled, (sum(p * q for p, q in fills) / filled if filled > 0 else 0.0)


def compare(path: str | Path, qtys: list[float], every_s: float, cfg: TakerConfig,
            tick: float) -> list[dict]:
    """At every ``every_s`` seconds of the recording (receive clock), both walks for each
    quantity and side, from the last book ticker and the book in force at that moment."""
    dec = FrameDecoder()
    book: OrderBook | None = None
    quote: Quote | None = None
    pending: DepthSnapshot | None = None
    rows: list[dict] = []
    next_ns: int | None = None
    for ns, raw in read_frames(path):
        if next_ns is None:
            next_ns = ns + int(every_s * 1e9)
        while ns > next_ns:
            if book is not None and book.complete and quote is not None:
                rows.extend(_moment(next_ns, book, quote, qtys, cfg, tick))
            next_ns += int(every_s * 1e9)
        item = decode_depth(raw, ns)
        if type(item) is DepthUpdate:
            if book is None:
                book = OrderBook(item.symbol, futures=item.futures, rebuild_from_diffs=True)
                if pending is not None:
                    book.apply_snapshot(pending)
            if item.symbol == book.symbol:
                book.apply(item)
        elif type(item) is DepthSnapshot:
            if book is None:
                pending = item
            else:
                book.apply_snapshot(item)
        elif item is None:
            ev = dec.decode(raw, ns)
            if type(ev) is Quote and (book is None or ev.symbol == book.symbol):
                quote = ev
    return rows


def _moment(at_ns: int, book: OrderBook, q: Quote, qtys: list[float], cfg: TakerConfig,
            tick: float) -> list[dict]:
    out = []
    for qty in qtys:
        for side, sgn in (("buy", 1), ("sell", -1)):
            w = book.walk(side, qty)
            touch, disp = (q.ask, q.ask_qty) if sgn > 0 else (q.bid, q.bid_qty)
            filled, avg = stylised_walk(sgn, touch, disp, qty, cfg.walk_step_bps,
                                        cfg.walk_max_levels, tick)
            out.append({
                "at_ns": at_ns, "qty": qty, "side": side, "mid": q.mid,
                "displayed": disp, "depth_cost_bps": w.cost_bps, "depth_levels": w.levels,
                "depth_unknown": w.unknown, "depth_filled": w.filled,
                "model_cost_bps": sgn * (avg - q.mid) / q.mid * 1e4 if filled else 0.0,
                "model_filled": filled,
            })
    return out


def engine_walks(path: str | Path, qtys: list[float], every_s: float, tick: float,
                 step_bps: float, max_levels: int) -> dict[tuple[float, str], list[dict]]:
    """Per (quantity, model "book" or "top"): the order results of the takers the two paper
    engines judged (see the module doc)."""
    from types import SimpleNamespace

    from framework.market.book_feed import DepthFrameDecoder, SymbolBook
    from framework.market.events import Trade

    from .engine import PaperEngine

    cfg = ExecutionConfig.from_dict({
        "tick_size": tick, "latency": {"fixed_ms": 25, "jitter": "none", "ack_fixed_ms": 25},
        "taker": {"impact": "walk", "walk_step_bps": step_bps, "walk_max_levels": max_levels},
        "markout_horizons_s": [1]})
    results: dict[tuple[float, str], list[dict]] = {}
    engines: list[tuple[float, PaperEngine, SymbolBook | None]] = []
    for qty in qtys:
        for model in ("book", "top"):
            out = results.setdefault((qty, model), [])
            e = PaperEngine("", cfg, lambda r, out=out: out.append(r) if r["kind"] == "order_result" else None)
            book = None
            if model == "book":
                book = SymbolBook("", rebuild_from_diffs=True)
                e.attach_book(book)
            engines.append((qty, e, book))
    dec = DepthFrameDecoder()
    next_ns: int | None = None
    symbol = ""
    for ns, raw in read_frames(path):
        ev = dec.decode(raw, ns)
        if ev is None:
            continue
        symbol = symbol or getattr(ev, "symbol", "")
        if next_ns is None:
            next_ns = ns + int(every_s * 1e9)
        while ns > next_ns:
            for qty, e, _ in engines:
                if e.mid:
                    for side in ("buy", "sell"):
                        e.submit(SimpleNamespace(side=side, style="take", notional_usd=qty * e.mid,
                                                 intent_id=""), next_ns)
            next_ns += int(every_s * 1e9)
        t = type(ev)
        for _, e, book in engines:
            if t is Quote:
                e.on_quote(ev)
            elif t is Trade:
                e.on_trade(ev)
            elif (t is DepthUpdate or t is DepthSnapshot) and book is not None:
                e.before_depth(ns)
                book.apply(ev, ns)
                e.after_depth()
    for _, e, _ in engines:
        e.close(next_ns or 0)
    return results


def _engine_report(results: dict[tuple[float, str], list[dict]], qtys: list[float]) -> None:
    print(f"{'order':>6} {'model':>5} {'orders':>6} {'fill':>6} {'cost vs arrival mid, bps: mean':>31} "
          f"{'median':>7} {'max':>7}")
    for qty in qtys:
        for model in ("book", "top"):
            rs = [r for r in results[(qty, model)] if r["qty"] > 0]
            cost = [r["slippage_arrival_bps"] for r in rs if r["slippage_arrival_bps"] is not None]
            fill = sum(r["filled_qty"] for r in rs) / sum(r["qty"] for r in rs) if rs else 0.0
            stats = (f"{statistics.fmean(cost):>31.3f} {statistics.median(cost):>7.3f} {max(cost):>7.3f}"
                     if cost else f"{'-':>31} {'-':>7} {'-':>7}")
            print(f"{qty:>6g} {model:>5} {len(rs):>6} {fill:>6.3f} {stats}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m framework.execution.depth_walk",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("recording", nargs="?", default=str(DEFAULT_RECORDING))
    ap.add_argument("--every", type=float, default=30.0, metavar="S")
    ap.add_argument("--qty", default="0.1,1,5")
    ap.add_argument("--step-bps", type=float, default=TakerConfig.walk_step_bps)
    ap.add_argument("--max-levels", type=int, default=TakerConfig.walk_max_levels)
    ap.add_argument("--tick", type=float, default=0.01)
    ap.add_argument("--engine", action="store_true",
                    help="measure the paper engine: takers judged against the book vs the stylised walk")
    args = ap.parse_args(argv)
    try:
        qtys = [float(x) for x in args.qty.split(",")]
    except ValueError:
        print(f"--qty {args.qty!r}; expected numbers like 0.1,1,5", file=sys.stderr)
        return 2
    if not Path(args.recording).is_file() or args.every <= 0 or args.tick <= 0:
        print("expected an existing recording, --every > 0 and --tick > 0", file=sys.stderr)
        return 2
    if args.engine:
        _engine_report(engine_walks(args.recording, qtys, args.every, args.tick, args.step_bps,
                                    args.max_levels), qtys)
        return 0
    cfg = TakerConfig(impact="walk", walk_step_bps=args.step_bps, walk_max_levels=args.max_levels)
    rows = compare(args.recording, qtys, args.every, cfg, args.tick)
    if not rows:
        print(f"{args.recording}: no moment with a complete book and a book ticker", file=sys.stderr)
        return 2
    print(f"{'moment (recv)':>13} {'qty':>5} {'side':>4} {'D':>8} {'depth bps':>9} {'lvls':>4} "
          f"{'model bps':>9} {'model fill':>10}")
    for r in rows:
        print(f"{r['at_ns'] // 10**9 % 86400 // 3600:02d}:{r['at_ns'] // 10**9 % 3600 // 60:02d}:"
              f"{r['at_ns'] // 10**9 % 60:02d}      {r['qty']:>5g} {r['side']:>4} "
              f"{r['displayed']:>8.4f} {r['depth_cost_bps']:>9.3f} {r['depth_levels']:>4} "
              f"{r['model_cost_bps']:>9.3f} {r['model_filled']:>10.4f}"
              + (" unknown" if r["depth_unknown"] else ""))
    print(f"\nmean over {len(rows) // (2 * len(qtys))} moments, buys and sells (cost from the mid):")
    for qty in qtys:
        sel = [r for r in rows if r["qty"] == qty]
        d = [r["depth_cost_bps"] for r in sel]
        m = [r["model_cost_bps"] for r in sel]
        short = sum(r["model_filled"] < qty - 1e-12 for r in sel)
        print(f"  {qty:g}: depth {statistics.fmean(d):.3f} bps (median {statistics.median(d):.3f}, "
              f"max {max(d):.3f}); model {statistics.fmean(m):.3f} bps (median "
              f"{statistics.median(m):.3f}, max {max(m):.3f}); model left part unfilled in "
              f"{short} of {len(sel)}")
        thin = [r for r in sel if r["displayed"] < qty]
        if thin:
            print(f"     where the touch showed less than {qty:g} ({len(thin)}): depth "
                  f"{statistics.fmean(r['depth_cost_bps'] for r in thin):.3f} bps, model "
                  f"{statistics.fmean(r['model_cost_bps'] for r in thin):.3f} bps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
