"""``execlab data fetch``: Binance's public archives into the workspace's data/ folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="market data for replays: `execlab data fetch` downloads Binance's public archives")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    f = data_sub.add_parser(
        "fetch", help="download daily or monthly archives from data.binance.vision (checksums verified, resumable)",
        description="Download Binance's public daily (--from/--to YYYY-MM-DD) or monthly (YYYY-MM) archives into "
                    "data/binance/<market>/<kind>/<SYMBOL>/ of the workspace. Each file is verified against its "
                    "published SHA-256; an interrupted download resumes where it stopped. Spot archives carry no "
                    "bookTicker (quotes): spot replays need recorded frames, USD-M archives have all three kinds.")
    f.add_argument("--market", choices=("spot", "usdm"), required=True)
    f.add_argument("--kind", choices=("trades", "aggTrades", "bookTicker"), required=True)
    f.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    f.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day YYYY-MM-DD (or month YYYY-MM)")
    f.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day YYYY-MM-DD (or month YYYY-MM), inclusive")
    f.add_argument("--out", type=Path, help="data folder (default: the workspace's data/)")
    f.add_argument("--base-url", default=None, help="archive root (default: https://data.binance.vision; a mirror)")
    f.set_defaults(func=run_fetch)
    p.set_defaults(func=lambda args: _no_subcommand(p))


def _no_subcommand(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def run_fetch(args: argparse.Namespace) -> int:
    from ..spec import workspace
    from ..spec.errors import SpecError, SpecErrors
    from .archive import BASE_URL, ArchiveError, fetch, plan

    try:
        files = plan(args.market, args.kind, args.symbols.split(","), args.start, args.end)
    except ArchiveError as exc:
        raise SpecErrors([SpecError("data fetch", 0, 0, str(exc))]) from None
    root = args.out or workspace.require() / "data"

    def report(o) -> None:
        print(f"{o.status:12} {o.path}{'  (' + o.detail + ')' if o.detail else ''}",
              file=sys.stdout if o.status in ("fetched", "resumed", "present") else sys.stderr, flush=True)

    outcomes = fetch(files, root, args.base_url or BASE_URL, report)
    ok = [o for o in outcomes if o.status in ("fetched", "resumed", "present")]
    print(f"{len(ok)}/{len(outcomes)} files in {root / 'binance' / args.market / args.kind}")
    if ok:
        folder = ok[0].path.parent.parent
        print(f"replay them: execlab run --replay {folder} --symbols {args.symbols.upper()}"
              f" [--from {args.start} --to {args.end}]")
    if args.market == "spot":
        print("note: spot archives hold no quotes (bookTicker); the machines need quotes, so pair them with "
              "recorded frames of the same period", file=sys.stderr)
    return 0 if len(ok) == len(outcomes) else 2
