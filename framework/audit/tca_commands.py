"""``execlab tca RUN``: transaction cost analysis of a finished run (framework/audit/tca.py)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..spec.errors import SpecError, SpecErrors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tca", help="transaction cost analysis of a run: implementation shortfall, spreads, "
                                   "impact, fill ratio, PnL, with 95%% confidence intervals",
                       description="Per order and aggregated: implementation shortfall against the decision and "
                                   "arrival mids (execution, opportunity cost of the unfilled part, fees), "
                                   "effective and realized spread and price impact at each markout horizon, fill "
                                   "ratio and time to fill; PnL, fees, the end position marked to the mid and "
                                   "to the cost of liquidating it through the book (docs/execution.md).")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--by", default="regime,health,style",
                   help="comma-separated dimensions to group by: any label at decision (regime, health, "
                        "permission, ...), style, side, symbol, queue_model (default: regime,health,style)")
    p.add_argument("--orders", action="store_true", help="also list every order's costs")
    p.add_argument("--no-book", action="store_true",
                   help="do not rebuild the book from the recording to price liquidating the end position")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_tca)


def run_tca(args: argparse.Namespace) -> int:
    from .tca import analyse, format_text

    by = [d for d in (x.strip() for x in args.by.split(",")) if d]
    bad = [d for d in by if not re.fullmatch(r"[a-z][a-z0-9_]*", d)]
    if bad:
        raise SpecErrors([SpecError("tca --by", 0, 0, f"dimension {bad[0]!r}; expected names such as regime,health,style")])
    a = analyse(args.run, by, with_book=not args.no_book)
    if not a["orders"]:
        print(f"{args.run}: the run has no orders; nothing to analyse", file=sys.stderr)
        return 2
    if not args.orders:
        a = {k: v for k, v in a.items() if k != "orders"}
    if args.json:
        print(json.dumps(a, indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(format_text(a))
        if args.orders:
            for c in a["orders"]:
                print(f"{c['order_id']:>14} {c['side']:4} {c['style']:7} {c['status']:9} fill {c['fill_ratio'] or 0:.3f} "
                      f"IS dec {_f(c['is_decision_bps'])} arr {_f(c['is_arrival_bps'])} ES {_f(c['effective_spread_bps'])}")
    return 0


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:8.3f}"
