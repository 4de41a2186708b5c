"""The replay fast path against the scalar path with every queue model acting, the others as
shadows, and with the heavier latency models: the same audit log byte for byte."""

import pytest

from framework.execution.queue import BUILTIN_MODELS
from tests.runtime.test_blocks import _events, _same, _session

MODELS = list(BUILTIN_MODELS)

# passive orders every second, resting 4 s, so that shadows outlive their acting order often
BUSY_PASSIVE = {"generator": "probe", "probe": {"period_s": 1, "notional_usd": 300, "style": "passive",
                                                "ttl_s": 4}}


@pytest.mark.parametrize("acting", MODELS)
def test_each_queue_model_acting_with_the_others_as_shadows_writes_the_same_log(acting):
    shadows = [m for m in MODELS if m != acting]
    session = _session(intents=BUSY_PASSIVE,
                       execution={"passive": {"ttl_s": 4, "queue": {"model": acting, "shadows": shadows}}})
    records = _same(session, _events(session, 20_000), block_rows=777)
    results = [r for r in records if r.get("kind") == "order_result"]
    assert results and all([m["model"] for m in r["queue_models"]] == [acting, *shadows] for r in results)
    assert all(any(r["queue_models"][i]["filled_qty"] > 0 for r in results) for i in range(len(MODELS)))


def test_pareto_latencies_bursts_and_a_separate_ack_path_write_the_same_log():
    session = _session(intents=BUSY_PASSIVE, execution={"latency": {
        "fixed_ms": 5, "jitter": "pareto", "jitter_ms": 3, "jitter_alpha": 1.2, "jitter_cap_ms": 2000,
        "ack": {"fixed_ms": 2, "jitter": "lognormal", "jitter_ms": 1}, "burst_slowdown": 0.3,
        "burst_window_ms": 3000}})
    records = _same(session, _events(session, 30_000))
    assert any(r.get("kind") == "fill" for r in records)
