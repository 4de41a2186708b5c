"""Our paper engine against hftbacktest on the same recording and the same orders.

A small version of ``benchmarks/hftbacktest_agreement.py`` (docs/execution.md, *Agreement with
hftbacktest*): the first minute of spot BTCUSDT with depth, takers of several sizes (the larger
ones walk the book) and post-only limits at the touch with a TTL, through ``execlab run`` under
two queue models and through hftbacktest with the matching ones. hftbacktest is an optional
test dependency (``scripts/setup`` installs it for the tests); without it the test is skipped.
"""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks.hftbacktest_agreement import agreement
from tests.support import REPO

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hftbacktest") is None,
    reason="hftbacktest is not installed (scripts/setup --need-dot installs it: "
           "pip install --no-deps hftbacktest==2.4.4)")

RECORDING = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"
# conservative (hftbacktest's RiskAdverseQueueModel) and log (LogProbQueueModel): the two whose
# disagreements have different causes (docs/execution.md).
MODELS = ["conservative", "log"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    # 75 s of data, an order pair every 4 s from 15 s on: 11 takers and 11 passive orders
    return agreement(RECORDING, tmp_path_factory.mktemp("hbt"), seconds=75, models=MODELS, every_s=4)


def test_takers_fill_the_same_quantity_at_the_same_price(result):
    t = result["summary"]["takers"]
    assert t["orders"] >= 10
    # the schedule's larger takers walk several levels: the comparison covers the walk
    assert t["walked"] >= 4
    # Both sides walk the same book (same diffs, same snapshot, same instant: decision + 25 ms,
    # events of that instant applied first): a taker that meets no level an earlier taker of
    # ours took from fills the same quantity at the same prices, exactly.
    fresh = [x for x in result["takers"] if not x["met_own_consumption"]]
    assert len(fresh) >= 5
    assert all(x["agree"] for x in fresh), [x for x in fresh if not x["agree"]]
    # The others may differ one way only: ours remembers what we took from a level until the
    # book shows it replenished, hftbacktest matches against the book as published; so ours
    # fills the same quantity, never cheaper.
    for x in result["takers"]:
        assert x["qty_agree"], x
        assert x["vwap_diff_bps"] > -1e-6, x
        assert x["agree"] or x["cause"].startswith("ours remembers"), x
    assert t["same_in_every_run"]  # the acting queue model never changes a taker


def test_passive_orders_fill_alike_under_matching_queue_models(result):
    for model in MODELS:
        p = result["summary"]["passive"][model]
        assert p["orders"] >= 10
        assert p["filled_ours"] >= 3  # something to compare: fills happen on this minute
        # Filled or not: on the full recordings 1 to 3 of 53 orders differ per model (a
        # post-only check against the book ticker in ours, against the depth book in
        # hftbacktest; hftbacktest filling when its depth book crosses our price); 1 on spot
        # BTCUSDT. Here: all but at most one.
        assert p["filled_agree"] >= p["orders"] - 1, result["passive"][model]
        # Fill ratios: 0 to 0.035 apart on the full spot recordings (0.06, 0.10 for
        # conservative, on USD-M ETHUSDT). Here a 10,000 USD order is 0.18 of the ratio: none may
        # differ, only partial quantities or a 1,000 USD order.
        assert abs(p["fill_ratio_ours"] - p["fill_ratio_hbt"]) <= 0.1, p


def test_the_log_model_fills_at_the_same_print(result):
    """Where both fill, the probabilistic model fills at the same print nearly always (on the
    full spot recordings all but 1 or 2 of 31-34 orders; the exceptions are hftbacktest letting
    the quantity ahead go below zero on a depth decrease and climb back). The conservative model differs more: ours
    keeps the quantity ahead even where the level shrank below it, hftbacktest caps it."""
    p = result["summary"]["passive"]["log"]
    assert p["both_filled"] >= 3
    assert p["same_first_fill_time"] >= p["both_filled"] - 1, result["passive"]["log"]
    c = result["summary"]["passive"]["conservative"]
    # the conservative model is never ahead of hftbacktest's risk-adverse one, only behind
    assert all(r["ours_first_ns"] >= r["hbt_first_ns"] for r in result["passive"]["conservative"]
               if r["ours_first_ns"] and r["hbt_first_ns"]), c
