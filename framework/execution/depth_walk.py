"""What a taker order costs by the real depth of a recording versus the paper engine's
stylised walk (``execution.taker.impact: walk``).

The stylised walk prices size beyond the touch as if level ``k = 1 .. walk_max_levels`` held
the displayed touch size ``D`` at ``P x (1 +- k x walk_step_bps / 1e4)`` rounded to the tick
away from us; what is left after the last level is cancelled (see ``PaperEngine._take``,
documented in docs/execution.md "Taker"). The real walk consumes the levels of the local book
rebuilt from the recording's depth frames at the same moment.

``python -m framework.execution.depth_walk [RECORDING] [--every S] [--qty 0.1,1,5]`` prints
both, per moment and on average. A measurement for the documentation, not part of a run.
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

from .config import TakerConfig

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m framework.execution.depth_walk",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("recording", nargs="?", default=str(DEFAULT_RECORDING))
    ap.add_argument("--every", type=float, default=30.0, metavar="S")
    ap.add_argument("--qty", default="0.1,1,5")
    ap.add_argument("--step-bps", type=float, default=TakerConfig.walk_step_bps)
    ap.add_argument("--max-levels", type=int, default=TakerConfig.walk_max_levels)
    ap.add_argument("--tick", type=float, default=0.01)
    args = ap.parse_args(argv)
    try:
        qtys = [float(x) for x in args.qty.split(",")]
    except ValueError:
        print(f"--qty {args.qty!r}; expected numbers like 0.1,1,5", file=sys.stderr)
        return 2
    if not Path(args.recording).is_file() or args.every <= 0 or args.tick <= 0:
        print("expected an existing recording, --every > 0 and --tick > 0", file=sys.stderr)
        return 2
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
