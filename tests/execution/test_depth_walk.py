"""The depth-walk comparison: its copy of the stylised walk must price exactly as the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from exec_helpers import S, engine, intent, kinds, quote
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.execution.config import TakerConfig
from framework.execution.depth_walk import compare, stylised_walk
from framework.market.replay import read_frames

SPOT_BTC = Path(__file__).resolve().parents[2] / "data" / "binance-spot-btcusdt-20240808.frames.gz"


@settings(max_examples=60, deadline=None)
@given(side=st.sampled_from(["buy", "sell"]), disp=st.integers(1, 300).map(lambda i: i / 100),
       qty=st.integers(1, 2000).map(lambda i: i / 100), step=st.sampled_from([1.0, 2.0, 7.5, 10.0]),
       levels=st.integers(1, 12))
def test_stylised_walk_is_the_engines(side, disp, qty, step, levels):
    bid, ask = 61837.63, 61837.64
    e, recs = engine(taker={"impact": "walk", "walk_step_bps": step, "walk_max_levels": levels})
    e.on_quote(quote(0, bid, disp, ask, disp))
    mid = (bid + ask) / 2
    e.submit(intent(side, qty * mid), 0, {})
    e.on_tick(S)
    fills = kinds(recs, "fill")
    got_qty = sum(f["qty"] for f in fills)
    got_avg = sum(f["price"] * f["qty"] for f in fills) / got_qty
    sgn = 1 if side == "buy" else -1
    order_qty = (qty * mid) / mid  # the engine's quantity: notional / decision mid
    filled, avg = stylised_walk(sgn, ask if sgn > 0 else bid, disp, order_qty, step, levels, 0.01)
    assert filled == pytest.approx(got_qty, rel=1e-9)
    assert avg == pytest.approx(got_avg, rel=1e-12)


def test_stylised_walk_documented_example():
    filled, avg = stylised_walk(1, 100.0, 1.0, 2.5, 10.0, 10, 0.01)
    assert filled == 2.5 and avg == pytest.approx((100.0 + 100.1 + 0.5 * 100.2) / 2.5)
    filled, _ = stylised_walk(-1, 100.0, 1.0, 3.0, 10.0, 1, 0.01)
    assert filled == 2.0  # the rest is cancelled after walk_max_levels


def test_compare_on_the_recording():
    rows = compare(SPOT_BTC, [1.0, 5.0], 60.0, TakerConfig(impact="walk"), 0.01)
    first = next(iter(read_frames(SPOT_BTC)))[0]
    assert len(rows) == 5 * 2 * 2 and rows[0]["at_ns"] == first + 60 * S
    for r in rows:
        assert r["depth_filled"] == r["qty"] and r["depth_cost_bps"] >= 0
        assert r["model_cost_bps"] >= 0
    five = [r for r in rows if r["qty"] == 5.0]
    # real depth is cheaper than the stylised walk for size beyond the touch
    assert sum(r["depth_cost_bps"] for r in five) < sum(r["model_cost_bps"] for r in five)
