"""The benchmark's input: a long synthetic stream of raw Binance frames.

Why synthetic rather than the shipped recording repeated: the recording has about 41,000
frames (six minutes), so a million-event stream would replay it 25 times with shifted stamps,
and the metric windows, regime changes and fills would repeat in lockstep. The synthetic
generator (``framework.market.synthetic``) writes the same wire format as Binance, so the
decoder does its real work, and a cycle of calm, fast and shock phases exercises every
machine: quiet evaluations most of the time, transitions, cooldowns and recoveries in every
cycle. Seeded, so every run decodes the same bytes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from ..market.synthetic import scenario_frames

# One cycle: about 400 s of event time and about 46,000 frames.
_CYCLE = [
    {"name": "calm", "duration_s": 300, "quote_rate_hz": 80, "trade_rate_hz": 25,
     "spread_bps": 0.001, "vol_bps_per_sqrt_s": 0.3, "trade_qty_mean": 0.01, "quote_qty_mean": 2.0},
    {"name": "fast", "duration_s": 60, "quote_rate_hz": 150, "trade_rate_hz": 60,
     "spread_bps": 0.05, "vol_bps_per_sqrt_s": 2.5, "trade_qty_mean": 0.02, "quote_qty_mean": 1.5,
     "burst_rate_hz": 0.3, "burst_trades_mean": 40, "burst_span_ms": 120, "burst_buy_share": 0.5},
    {"name": "sweep", "duration_s": 2, "quote_rate_hz": 200, "trade_rate_hz": 150,
     "spread_bps": 10, "vol_bps_per_sqrt_s": 8.0, "drift_bps_per_s": -30, "buy_share": 0.15,
     "burst_rate_hz": 3, "burst_trades_mean": 30, "burst_span_ms": 80, "burst_buy_share": 0.0,
     "trade_qty_mean": 0.08, "quote_qty_mean": 0.2},
    {"name": "gap", "duration_s": 4, "quote_rate_hz": 50, "trade_rate_hz": 20, "spread_bps": 8,
     "vol_bps_per_sqrt_s": 6.0, "drift_bps_per_s": -5, "buy_share": 0.3,
     "quote_gaps": [{"at_s": 0.5, "duration_s": 3.0}]},
    {"name": "recovery", "duration_s": 30, "quote_rate_hz": 40, "trade_rate_hz": 10,
     "spread_bps": 6, "spread_bps_end": 0.001, "vol_bps_per_sqrt_s": 3.0, "drift_bps_per_s": 0.5},
]
FRAMES_PER_CYCLE = 45_000  # a slight underestimate, so enough cycles are generated
SEED = 2024


def bench_spec(n_frames: int) -> dict:
    """A scenario spec with enough calm/fast/shock cycles for ``n_frames`` frames."""
    cycles = n_frames // FRAMES_PER_CYCLE + 1
    phases = []
    for i in range(cycles):
        for ph in _CYCLE:
            phases.append({**ph, "name": f"{ph['name']}_{i}"})
    return {"name": "bench", "symbol": "BTCUSDT", "market": "spot", "seed": SEED,
            "initial_mid": 61800.0, "tick_size": 0.01, "lot_size": 0.00001, "phases": phases}


def iter_frames(n_frames: int) -> Iterator[tuple[int, str]]:
    """Exactly ``n_frames`` (receive ns, raw frame) pairs, generated lazily."""
    return itertools.islice(scenario_frames(bench_spec(n_frames)), n_frames)


def bench_frames(n_frames: int) -> list[tuple[int, str]]:
    """The same frames held in memory, so generating them is not part of any measurement."""
    return list(iter_frames(n_frames))


def pair_frames(n_frames: int, symbols: tuple[str, str]) -> list[tuple[int, str]]:
    """``n_frames`` of two symbols of the same market, each with its own seed, merged in receive
    order: per symbol the rates and phases of the one-symbol stream, so the two replays differ
    only by the number of symbols."""
    halves = [itertools.islice(scenario_frames({**bench_spec(k), "symbol": s, "seed": SEED + i}), k)
              for i, (s, k) in enumerate(zip(symbols, (n_frames // 2, n_frames - n_frames // 2), strict=True))]
    return list(heapq.merge(*halves, key=lambda f: f[0]))
