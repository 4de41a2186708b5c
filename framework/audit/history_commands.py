"""``execlab runs`` and ``execlab compare``: past runs listed, and runs side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list runs with their key figures (default: the workspace's runs/)")
    p.add_argument("dir", nargs="?", type=Path, help="folder of runs (default: runs/ of the workspace)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_runs)

    p = sub.add_parser("compare", help="scorecards and execution quality of several runs side by side")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (two or more)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_compare)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        text = f"{v:.2f}"
        return text.lstrip("-") if float(text) == 0 else text
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """Numbers right-aligned, text left-aligned."""
    cells = [headers, *[[_cell(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(r[i] is None or (isinstance(r[i], (int, float)) and not isinstance(r[i], bool)) for r in rows)
               for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def run_runs(args: argparse.Namespace) -> int:
    from ..spec import workspace
    from .history import list_runs

    folder = args.dir or workspace.require() / "runs"
    rows = list_runs(folder)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print(f"no runs in {folder} yet; `execlab run` makes one")
        return 0
    headers = ["run", "session", "start (UTC, event time)", "events", "event s", "orders", "fills", "fill ratio",
               "net PnL USD", "fees USD", "end"]
    table = [[r["run"], r.get("session"), r.get("start_utc"), r.get("events"), r.get("duration_s"), r.get("orders"),
              r.get("fills"), r.get("fill_ratio"), r.get("net_pnl_usd"), r.get("fees_usd"),
              r.get("end_reason") if r["complete"] else "incomplete (no summary.json)"] for r in rows]
    print(_table(headers, table))
    print(f"\n{len(rows)} run(s) in {folder}; side by side: execlab compare RUN RUN ...")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ..spec.errors import SpecError, SpecErrors
    from .history import compare_runs

    if len(args.runs) < 2:
        raise SpecErrors([SpecError("compare", 0, 0, "one run given; expected two or more run directories")])
    rows = compare_runs(args.runs)
    if args.json:
        print(json.dumps({"runs": [str(r) for r in args.runs], "rows": [{"figure": k, "values": v} for k, v in rows]},
                         indent=2, sort_keys=True))
        return 0
    print(_table(["", *[r.name for r in args.runs]], [[k, *v] for k, v in rows]))
    return 0
