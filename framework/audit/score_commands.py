"""Gate commands: ``execlab score RUN...`` (the scorecard of finished runs, one line each) and
``execlab calibrate RECORDING...`` (per-symbol params proposed from data)."""

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

    p = sub.add_parser("calibrate", help="propose per-symbol regime params from recordings",
                       description="Replay recordings through the state engine, measure each intensity "
                       "metric against its own baseline per symbol, and propose the regime's multipliers "
                       "as quantiles of those ratios: a session-config overlay (symbols: entries with "
                       "overrides) whose comments name the quantile and the recordings. Then replay each "
                       "recording with the current and the proposed params and show the share of time in "
                       "each state side by side.")
    p.add_argument("recordings", nargs="+", type=Path, metavar="RECORDING")
    p.add_argument("--symbols", help="only these symbols (comma-separated; default: every symbol seen)")
    p.add_argument("--config", type=Path, help="session config whose params are the current ones (default: configs/default.yaml)")
    p.add_argument("--out", type=Path, help="write the overlay here (default: print it)")
    p.add_argument("--no-compare", action="store_true", help="skip the side-by-side replays")
    p.set_defaults(func=run_calibrate)


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


def run_calibrate(args: argparse.Namespace) -> int:
    from ..spec.errors import SpecError, SpecErrors
    from ..spec.session import load_session
    from .calibrate import compare, overlay_text, propose, ratios

    missing = [str(r) for r in args.recordings if not r.is_file()]
    if missing:
        raise SpecErrors([SpecError(m, 0, 0, "no such file; expected a recording") for m in missing])
    session = load_session(args.config)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    data = ratios(session, [str(r) for r in args.recordings], symbols)
    proposal = propose(data)
    if not proposal:
        raise SpecErrors([SpecError(str(args.recordings[0]), 0, 0, "not enough data after the baselines' "
                                    "warm-up to propose anything; expected recordings of a few minutes "
                                    "or more" + (f" with {args.symbols}" if symbols else ""))])
    text = overlay_text(proposal, [str(r) for r in args.recordings])
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    if args.no_compare:
        return 0
    for row in compare(session, proposal, data):
        print(f"\n{row['symbol']} {Path(row['recording']).name}: share of time in state, current -> proposed")
        for machine, cur in row["current"].items():
            new = row["proposed"].get(machine, {})
            cells = [f"{s} {100 * cur.get(s, 0):.0f}% -> {100 * new.get(s, 0):.0f}%"
                     for s in dict.fromkeys([*cur, *new])]
            print(f"  {machine:<11} " + ", ".join(cells))
    return 0
