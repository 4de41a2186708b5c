"""``execlab explain | verify | report | diff``: questions asked of a finished run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..spec.errors import SpecError, SpecErrors


def _annotate_run(run: Path, out: Path | None) -> Path:
    from .annotate import render_run_diagrams

    return render_run_diagrams(run, out)


def register(sub: argparse._SubParsersAction) -> None:
    diagrams = sub.choices.get("diagrams")  # `execlab diagrams --run RUN`: annotated with a run
    if diagrams is not None:
        diagrams.set_defaults(annotate_run=_annotate_run)
    p = sub.add_parser("explain", help="the state of each layer at a moment of a run, and why")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--at", required=True,
                   help="time: ISO-8601 UTC (2024-08-08T23:57:52Z), epoch milliseconds, or +SECONDS after the start")
    p.add_argument("--symbol", help="symbol (default: the run's first)")
    p.add_argument("--machine", help="only this machine")
    p.add_argument("--chain", type=int, default=3, help="transitions shown per machine (0: all; default 3)")
    p.add_argument("--window", type=float, default=30.0, help="seconds around --at to look for refused intents (default 30)")
    p.add_argument("--why-not", metavar="MACHINE[:STATE]",
                   help="why MACHINE did not move (to STATE) at --at: each rule's clauses, values read, thresholds")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_explain)

    p = sub.add_parser("verify", help="re-run a run from its recorded input and snapshot; exit 1 if the log differs")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--keep", type=Path, help="write the re-run into this folder (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_verify)

    p = sub.add_parser("report", help="a self-contained HTML report of a run")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--out", type=Path, help="HTML file to write (default: RUN/report.html)")
    p.add_argument("--diff-set", action="append", default=[], metavar="MACHINE.PARAM=VALUE",
                   help="add a what-if section: the same input with this override (repeatable)")
    p.add_argument("--diff-config", type=Path, help="add a what-if section: the same input under this config")
    p.set_defaults(func=run_report)

    p = sub.add_parser("diff", help="re-run a run's input under an edited config and compare the two runs")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--config", type=Path, help="the edited session config")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="MACHINE.PARAM=VALUE",
                   help="override a param (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_diff)


def run_explain(args: argparse.Namespace) -> int:
    from .explain import explain, format_text
    from .runlog import load_records, parse_time

    records = load_records(args.run)
    start = next((r for r in records if r.get("kind") == "session_start"), {})
    at = parse_time(args.at, start.get("ts_ns"))
    if args.why_not:
        from .runlog import run_machine_set
        from .whynot import format_why_not, why_not

        answer = why_not(records, run_machine_set(args.run), at, args.why_not, args.symbol)
        print(json.dumps(answer, indent=2, sort_keys=True, default=str) if args.json else format_why_not(answer), end="" if not args.json else "\n")
        return 0
    answer = explain(records, at, symbol=args.symbol, machine=args.machine, chain=args.chain, window_s=args.window)
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        sys.stdout.write(format_text(answer))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from .verify import format_text, verify_run

    res = verify_run(args.run, keep=args.keep)
    if args.json:
        print(json.dumps(res.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(format_text(args.run, res))
    return 0 if res.identical else 1


def _diff_args(sets: list[str], config: Path | None) -> None:
    if not sets and config is None:
        raise SpecErrors([SpecError("diff", 0, 0, "nothing to compare; expected --config EDITED.yaml or --set machine.param=value")])


def run_report(args: argparse.Namespace) -> int:
    import graphviz

    from .report import write_report

    diff_html = None
    if args.diff_set or args.diff_config:
        from .diff import diff_run, format_html

        diff_html = format_html(diff_run(args.run, args.diff_set, args.diff_config))
    try:
        out = write_report(args.run, args.out, diff_html)
    except graphviz.ExecutableNotFound:
        print("Graphviz's `dot` program is not installed; install it (Debian/Ubuntu: apt-get install graphviz)", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    from .diff import diff_run, format_text

    _diff_args(args.sets, args.config)
    d = diff_run(args.run, args.sets, args.config)
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(format_text(d))
    return 0
