"""``execlab metrics``: metric time series of a recording as CSV, or their distribution.

    execlab metrics RECORDING [CONFIG] [--every 1s] [--symbol S] --out FILE.csv
    execlab metrics RECORDING [CONFIG] [--every 100ms] [--symbol S] --describe [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

DEFAULT_EVERY_CSV = "1s"
DEFAULT_EVERY_DESCRIBE = "100ms"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "metrics", help="rolling microstructure metrics of a recording (CSV or summary)",
        description="Replay a recording through the state engine and write the metric time "
                    "series sampled at event-time boundaries (--out), or print each metric's "
                    "quantiles (--describe).")
    p.add_argument("recording", help="a recording (frames .gz or a Binance CSV dump)")
    p.add_argument("config", nargs="?", default=None,
                   help="metrics YAML (default: machines/metrics.yaml)")
    p.add_argument("--every", default=None,
                   help=f"sampling interval of event time, e.g. 250ms, 1s (default "
                        f"{DEFAULT_EVERY_CSV} for --out, {DEFAULT_EVERY_DESCRIBE} for --describe)")
    p.add_argument("--symbol", default=None, help="only this symbol")
    p.add_argument("--out", default=None, help="write the time series to this CSV file")
    p.add_argument("--describe", action="store_true",
                   help="print p1 p5 p25 p50 p75 p95 p99 max of each metric")
    p.add_argument("--json", action="store_true", help="with --describe: print JSON")
    p.set_defaults(func=run_metrics)


def _config_path(arg: str | None) -> Path:
    from ..spec.metrics import default_metrics_path

    if arg is None:
        return default_metrics_path()
    p = Path(arg)
    if not p.exists() and not p.is_absolute():
        import framework

        alt = Path(framework.__file__).resolve().parent.parent / p
        if alt.exists():
            return alt
    return p


def _fail(msg: str) -> int:
    print(f"execlab metrics: {msg}", file=sys.stderr)
    return 2


def _fmt(x: float) -> str:
    return repr(x) if isinstance(x, float) else str(x)


def run_metrics(args: argparse.Namespace) -> int:
    from ..spec.metrics import load_metric_set
    from .series import (  # imported here: `execlab --help` loads no command's machinery
        describe,
        iso_ms,
        parse_duration_ns,
        sample,
    )

    if not args.out and not args.describe:
        return _fail("nothing to do; expected --out FILE.csv or --describe")
    if args.json and not args.describe:
        return _fail("--json goes with --describe")
    every_text = args.every or (DEFAULT_EVERY_DESCRIBE if args.describe else DEFAULT_EVERY_CSV)
    try:
        every_ns = parse_duration_ns(every_text)
    except ValueError as exc:
        return _fail(f"--every: {exc}")
    if every_ns < 1_000_000:
        return _fail(f"--every {every_text} is below 1ms; expected at least 1ms")
    metric_set = load_metric_set(_config_path(args.config))  # SpecErrors for a bad file

    from framework.market.book_feed import DepthFrameDecoder, carries_depth
    from framework.market.replay import open_replay

    symbols = [args.symbol.upper()] if args.symbol else None
    try:
        # The book's metrics when the set declares some and the recording carries depth.
        depth = bool(metric_set.book) and carries_depth(args.recording)
        events = open_replay(args.recording, symbols, decoder=DepthFrameDecoder(symbols or ()) if depth else None)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    quiet = args.json or not sys.stderr.isatty()
    try:
        from tqdm import tqdm

        events = tqdm(events, unit=" events", disable=quiet, desc="metrics", leave=False)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        pass
    rows = list(sample(events, metric_set, every_ns, depth=depth))
    if not rows:
        return _fail(f"{args.recording}: no market events"
                     + (f" for symbol {args.symbol.upper()}" if args.symbol else "")
                     + "; expected a recording with quotes or trades")
    symbols_seen = list(dict.fromkeys(sym for _, sym, _ in rows))
    if args.out:
        with_symbol = len(symbols_seen) > 1
        try:
            with open(args.out, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["time", "ts_ns"] + (["symbol"] if with_symbol else [])
                           + list(metric_set.names))
                for ts, sym, vals in rows:
                    w.writerow([iso_ms(ts), ts] + ([sym] if with_symbol else [])
                               + [_fmt(x) for x in vals])
        except OSError as exc:
            return _fail(f"cannot write {args.out} ({exc.strerror})")
        if not args.describe:
            print(f"{len(rows)} samples of {len(metric_set)} metrics every {every_text} "
                  f"({', '.join(symbols_seen)}) -> {args.out}")
    if args.describe:
        summary = describe(rows, metric_set)
        if args.json:
            doc = {"recording": str(args.recording), "config": metric_set.path,
                   "every_ns": every_ns, "samples": len(rows),
                   "symbols": {s: {m: {k: _json_num(x) for k, x in d.items()}
                                   for m, d in per.items()} for s, per in summary.items()}}
            print(json.dumps(doc, indent=2))
        else:
            print(_table(summary, every_text))
    return 0


def _json_num(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _num(x: float) -> str:
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1e6 or a < 1e-3:
        return f"{x:.3e}"
    return f"{x:.6g}"


def _table(summary: dict, every_text: str) -> str:
    from .series import QUANTILES

    heads = ["metric", "n", "nan", "inf"] + [k for k, _ in QUANTILES]
    out: list[str] = []
    for sym, per in summary.items():
        rows = [[m] + [_num(d[h]) for h in heads[1:]] for m, d in per.items()]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
        out.append(f"{sym}: samples every {every_text} of event time (n finite, then quantiles)")
        out.append("  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                             for i, h in enumerate(heads)))
        for r in rows:
            out.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                 for i, c in enumerate(r)))
        out.append("")
    return "\n".join(out).rstrip()
