"""Shared helpers for the market tests (loopback only, no sleeps as synchronisation)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT / "data"
SPOT_BTC = DATA / "binance-spot-btcusdt-20240808.frames.gz"
SPOT_ETH = DATA / "binance-spot-ethusdt-20240808.frames.gz"
USDM_BTC = DATA / "binance-usdm-btcusdt-20240808.frames.gz"
CSV_TRADES = DATA / "BTCUSDT-trades-2021-05-19.excerpt.csv"
SCENARIOS = ROOT / "configs" / "scenarios"
