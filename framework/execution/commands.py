"""``execlab exchange-info``: refresh the exchange rules (Binance exchangeInfo) from the exchange."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exchange-info",
                       help="refresh the exchange rules (tick, lot step, min notional) from Binance's exchangeInfo",
                       description="Download Binance's exchangeInfo for the given symbols and write it, as Binance "
                                   "sends it, to data/exchangeinfo-<market>.json of the workspace (what sessions "
                                   "use unless execution.exchange_rules.file names another). Needs network access; "
                                   "offline it exits 2 and leaves the file as it was.")
    p.add_argument("--market", choices=("spot", "usdm"), required=True)
    p.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--out", type=Path, help="file to write (default: the workspace's data/exchangeinfo-<market>.json)")
    p.add_argument("--base-url", help="REST root (default: https://api.binance.com or https://fapi.binance.com)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds (default 15)")
    p.set_defaults(func=run_exchange_info)


def run_exchange_info(args: argparse.Namespace) -> int:
    from ..spec import workspace
    from ..spec.errors import SpecErrors
    from .filters import fetch_exchange_info, parse_exchange_info

    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    out = args.out or (workspace.current() or Path.cwd()) / "data" / f"exchangeinfo-{args.market}.json"
    try:
        text = fetch_exchange_info(args.market, symbols, args.base_url, args.timeout)
    except OSError as exc:
        print(f"exchange-info: {exc}; the rules in {out} are unchanged (this command needs network access)",
              file=sys.stderr)
        return 2
    try:
        rules = parse_exchange_info(text, str(out), args.market)
    except SpecErrors as exc:
        print(f"exchange-info: the answer is not a usable exchangeInfo ({exc.errors[0].message}); {out} unchanged",
              file=sys.stderr)
        return 2
    missing = [s for s in symbols if s not in rules]
    if missing:
        print(f"exchange-info: {', '.join(missing)} not listed by the exchange; {out} unchanged", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    tmp.replace(out)
    for s in symbols:
        r = rules[s]
        print(f"{s}: tick {r.tick_size:g}, step {r.step_size:g}, min qty {r.min_qty:g}, "
              f"min notional {r.min_notional:g} ({r.notional_filter})")
    print(f"wrote {out}")
    return 0
