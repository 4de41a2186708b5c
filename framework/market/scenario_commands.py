"""``execlab scenario inject``: labelled trouble written into a real recording."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..spec.errors import SpecError, SpecErrors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenario", help="build test inputs from real recordings")
    ssub = p.add_subparsers(dest="scenario_command", metavar="COMMAND")
    q = ssub.add_parser("inject", help="write a recording with labelled shocks, gaps and garbage injected",
                        description="Copy a frames recording with trouble injected: shocks (a spread "
                        "blow-out, a mid jump and a burst of aggressive sells, in Binance's wire format), "
                        "gaps (frames dropped) and garbage (malformed frames). The windows are written to "
                        "OUT.labels.json, which `execlab score` reads next to a run's input.")
    q.add_argument("base", type=Path, help="a .frames.gz recording")
    q.add_argument("--shock", action="append", default=[], metavar="AT:LEN",
                   help="a shock at AT seconds after the first frame, LEN seconds long (repeatable)")
    q.add_argument("--gap", action="append", default=[], metavar="AT:LEN", help="a gap (repeatable)")
    q.add_argument("--repeat", type=int, default=1, help="repeat each window N times (default 1)")
    q.add_argument("--every", type=float, default=60.0, metavar="S", help="seconds between repeats (default 60)")
    q.add_argument("--garbage", type=float, default=0.0, metavar="RATE",
                   help="probability of a malformed frame after each frame (default 0)")
    q.add_argument("--jump-bps", type=float, default=40.0, help="mid drop of a shock (default 40)")
    q.add_argument("--spread-bps", type=float, default=20.0, help="spread during a shock (default 20)")
    q.add_argument("--seed", type=int, default=7, help="seed of the garbage (default 7)")
    q.add_argument("--out", type=Path, required=True, help="the recording to write (.frames.gz)")
    q.set_defaults(func=run_inject)
    p.set_defaults(func=lambda args: _help(p))


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _window(text: str, option: str) -> tuple[float, float]:
    try:
        at, length = (float(x) for x in text.split(":"))
    except ValueError:
        raise SpecErrors([SpecError(option, 0, 0, f"{text!r} is not AT:LEN; expected two numbers of "
                                    "seconds, e.g. 120:3")]) from None
    if not (at >= 0 and length > 0 and at + length < 1e7):
        raise SpecErrors([SpecError(option, 0, 0, f"{text!r}: expected AT >= 0 and LEN > 0 seconds")])
    return at, length


def run_inject(args: argparse.Namespace) -> int:
    from .inject import inject

    shocks = [_window(s, "--shock") for s in args.shock]
    gaps = [_window(s, "--gap") for s in args.gap]
    problems = []
    if not (shocks or gaps or args.garbage > 0):
        problems.append("nothing to inject; expected --shock AT:LEN, --gap AT:LEN or --garbage RATE")
    if not args.base.is_file():
        problems.append(f"{args.base}: no such file; expected a .frames.gz recording")
    if not 0 <= args.garbage <= 1:
        problems.append(f"--garbage {args.garbage}: expected a probability in [0, 1]")
    if args.repeat < 1 or not args.every > 0:
        problems.append("expected --repeat >= 1 and --every > 0")
    if not (0 < args.jump_bps < 5000 and 0 < args.spread_bps < 5000):
        problems.append("expected --jump-bps and --spread-bps in (0, 5000)")
    if problems:
        raise SpecErrors([SpecError("scenario inject", 0, 0, p) for p in problems])
    try:
        labels = inject(args.base, args.out, shocks=shocks, gaps=gaps, repeat=args.repeat,
                        every_s=args.every, garbage_rate=args.garbage, jump_bps=args.jump_bps,
                        spread_bps=args.spread_bps, seed=args.seed)
    except (ValueError, OSError) as exc:
        raise SpecErrors([SpecError(str(args.base), 0, 0, f"{exc}; expected a frames recording")]) from None
    n = len(labels["windows"])
    print(f"wrote {args.out} ({n} labelled window(s), {labels['garbage_frames']} garbage frame(s)); "
          f"labels in {args.out}.labels.json")
    return 0
