"""Fill ratio per queue model on the shipped recordings, with and without depth.

Runs ``configs/queue-models.yaml`` (passive orders only, every built-in queue model: the
conservative one acting, the others as shadows) on each recording that carries depth, once with
``market.depth`` off (levels from the top of book) and once on (levels from the L2 book), and
prints per model the orders, orders with a fill and the quantity fill ratio.

    .venv/bin/python scripts/queue_fill_ratios.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from framework.audit.queue_models import aggregate  # noqa: E402
from framework.runtime.blocks import BlockRunner  # noqa: E402
from framework.runtime.pipeline import Runtime  # noqa: E402
from framework.runtime.sources import replay_events  # noqa: E402
from framework.spec.session import load_session  # noqa: E402

RECORDINGS = [("binance-spot-btcusdt-20240808.frames.gz", "BTCUSDT", 0.01),
              ("binance-spot-ethusdt-20240808.frames.gz", "ETHUSDT", 0.01),
              ("binance-usdm-btcusdt-20240808.frames.gz", "BTCUSDT", 0.1),
              ("binance-usdm-ethusdt-20240808.frames.gz", "ETHUSDT", 0.01)]


def run(name: str, symbol: str, tick: float, depth: bool) -> dict:
    path = REPO / "configs" / "queue-models.yaml"
    data = yaml.safe_load(path.read_text())
    data["symbols"] = [symbol]
    data["source"] = {**data["source"], "path": str(REPO / "data" / name)}
    data["execution"] = {**data["execution"], "tick_size": tick}
    data["market"] = {"depth": depth}
    session = load_session(path, text=yaml.safe_dump(data, sort_keys=False))
    records: list[dict] = []
    runtime = Runtime(session, records.append)
    events, _ = replay_events(session)
    BlockRunner(runtime).run(events)
    runtime.finish()
    return aggregate([r for r in records if r.get("kind") == "order_result"])


def main() -> None:
    for name, symbol, tick in RECORDINGS:
        for depth in (False, True):
            agg = run(name, symbol, tick, depth)
            for model, row in agg.get(symbol, {}).items():
                ratio = row["fill_ratio"]
                print(f"{name.split('.')[0]:32s} depth={'on ' if depth else 'off'} {model:14s} "
                      f"orders={row['orders']:3d} with_fill={row['orders_with_fill']:3d} "
                      f"fill_ratio={'-' if ratio is None else f'{ratio:.3f}'}", flush=True)


if __name__ == "__main__":
    main()
