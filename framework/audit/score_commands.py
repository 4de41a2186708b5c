"""``execlab score RUN...``: the gate scorecard of finished runs, one line each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="the gate scorecard of runs: tradable share, flaps, labelled trouble",
                       description="Per run and symbol: share of time tradable after the warm-up, state "
                       "visits shorter than a second per machine, and for labelled windows (the "
                       "RECORDING.labels.json sidecar of `execlab scenario inject`) the time to BLOCKED, "
                       "orders inside and the time to tradable again; plus how often the gate was open "
                       "during the recording's largest one-second moves. Also stored in RUN/summary.json "
                       "under `scorecard`.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    p.add_argument("--warmup", type=float, default=60.0, metavar="S", help="seconds left out at the start (default 60)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per run per line)")
    p.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from .score import format_line, score_run

    for run in args.runs:
        card = score_run(run, warmup_s=args.warmup)  # SpecErrors for a folder that is not a run
        summary = run / "summary.json"
        if summary.is_file():
            data = json.loads(summary.read_text())
            data["scorecard"] = card
            summary.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        if args.json:
            print(json.dumps(card, sort_keys=True))
        else:
            for sym, s in card["symbols"].items():
                print(format_line(str(run), sym, s))
    return 0
