"""``execlab latency RECORDING``: feed latency and clock offset measured on a recording."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "latency", help="feed latency and the recorder's clock offset, from the exchange's own stamps",
        description="Compare the exchange's event times (E) with the receive times of a frames "
                    "recording: estimate the clock offset (the low quantile of recv - E per "
                    "window, median over windows) and report the latency above it per stream, "
                    "and the exchange's own publication delay E - T.")
    p.add_argument("recording", help="a .frames.gz recording (receive time + raw frame per line)")
    p.add_argument("--window", type=float, default=60.0, metavar="S",
                   help="window for the offset estimate, seconds (default 60)")
    p.add_argument("--quantile", type=float, default=0.0, metavar="Q",
                   help="quantile of recv - E per window taken as the offset (default 0: the minimum)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_latency)


def _fail(message: str) -> int:
    print(f"execlab latency: {message}", file=sys.stderr)
    return 2


def _fmt(s: dict) -> str:
    if not s.get("n"):
        return "-"
    return f"{s['p50']:.0f} / {s['p90']:.0f} / {s['p99']:.0f} / {s['max']:.0f}"


def cmd_latency(args: argparse.Namespace) -> int:
    path = Path(args.recording)
    if not path.is_file():
        return _fail(f"{path}: no such file; expected a .frames.gz recording")
    if not (args.window > 0 and args.window < float("inf")):
        return _fail(f"--window {args.window}; expected a positive number of seconds")
    if not 0.0 <= args.quantile < 1.0:
        return _fail(f"--quantile {args.quantile}; expected a number in [0, 1)")
    from framework.market.replay import detect_format

    from .feed_latency import measure_file
    try:
        if detect_format(path) != "frames":
            return _fail(f"{path}: a CSV dump has no receive time; expected a .frames.gz recording")
        rep = measure_file(path, args.window, args.quantile)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    if rep.offset_ms is None:
        return _fail(f"{path}: no frame carries an exchange event time (E); nothing to measure")
    out = rep.as_dict()
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(f"{path}: {rep.frames} frames, {rep.stamped} with an event time (E)")
    if rep.unstamped:
        print("  without E: " + ", ".join(f"{k} {v}" for k, v in rep.unstamped.items()))
    print(f"clock offset (recv - E, {'minimum' if args.quantile == 0 else f'q{args.quantile:g}'} per "
          f"{args.window:g} s window, median of {out['windows']} windows): {rep.offset_ms:+.1f} ms "
          f"(windows {out['offset_window_min_ms']:+.1f} .. {out['offset_window_max_ms']:+.1f} ms)")
    print("  positive: the receive clock is ahead of the exchange's; negative: behind")
    print(f"{'stream':<12} {'frames':>8}  {'latency above offset p50/p90/p99/max ms':>40}  {'E - T p50/p99/max ms':>22}")
    for kind, s in out["streams"].items():
        et = s["E_minus_T_ms"]
        et_txt = f"{et['p50']:.0f} / {et['p99']:.0f} / {et['max']:.0f}" if et.get("n") else "-"
        print(f"{kind:<12} {s['frames']:>8}  {_fmt(s['latency_above_offset_ms']):>40}  {et_txt:>22}")
    return 0
