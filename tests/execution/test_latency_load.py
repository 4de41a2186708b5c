"""Latency that depends on the market's load: ``execution.latency.load_slowdown``, an expression
over the metrics, makes each message ``1 + value`` times slower when it is sent."""

import gzip
import json
import math
import random
import subprocess
import sys
from bisect import bisect_left, bisect_right

import pytest
import yaml

from framework.execution import ExecutionConfig
from framework.execution.latency import MAX_LOAD_SLOWDOWN, LatencyModel
from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import Runtime, run_events
from framework.runtime.sources import replay_events
from framework.spec.session import load_session
from tests.support import REPO

MS = 1_000_000
RECORDING = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"


def _model(**latency):
    return LatencyModel(ExecutionConfig.from_dict({"latency": latency}).latency, random.Random(1))


@pytest.mark.parametrize("load, factor", [(0.0, 1.0), (0.5, 1.5), (3.0, 4.0), (-2.0, 1.0), (math.nan, 1.0),
                                          (math.inf, 1.0 + MAX_LOAD_SLOWDOWN), (1e9, 1.0 + MAX_LOAD_SLOWDOWN)])
def test_each_latency_is_one_plus_the_load_times_longer(load, factor):
    m = _model(fixed_ms=10, jitter="none", ack_fixed_ms=4)
    m.set_load(lambda: load)
    assert m.order(0) == (round(10 * factor * MS), round(4 * factor * MS))
    assert m.cancel(0) == round(10 * factor * MS)


def test_the_load_is_read_when_each_message_is_sent():
    m = _model(fixed_ms=10, jitter="none", ack_fixed_ms=0)
    loads = iter([0.0, 1.0, 0.25])
    m.set_load(lambda: next(loads))
    assert [m.cancel(0), m.cancel(1), m.cancel(2)] == [10 * MS, 20 * MS, round(12.5 * MS)]


def _config(tmp_path, load_slowdown) -> str:
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["source"] = {"kind": "replay", "path": str(RECORDING), "seed": 7}
    data["execution"]["latency"] = {"fixed_ms": 10, "jitter": "none", "ack_fixed_ms": 5}
    if load_slowdown is not None:
        data["execution"]["latency"]["load_slowdown"] = load_slowdown
    path = tmp_path / f"session-{load_slowdown is not None}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _first_minutes(events, seconds=240):
    """The first minutes of a replay: enough orders for the checks, a short test."""
    end = None
    for ev in events:
        end = ev.ts_ns + seconds * 10**9 if end is None else end
        if ev.ts_ns > end:
            return
        yield ev


def _run(cfg: str, fast: bool) -> list[dict]:
    session = load_session(cfg)
    records: list[dict] = []
    runtime = Runtime(session, records.append)
    events = _first_minutes(replay_events(session)[0])
    if fast:
        BlockRunner(runtime).run(events)
    else:
        run_events(runtime, events)
    records.append({"summary": runtime.finish()})
    return records


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load")
    loaded = _config(tmp, "metrics.quote_rate_hz_10s / 100")
    return {"plain": _run(_config(tmp, None), fast=False),
            "scalar": _run(loaded, fast=False), "fast": _run(loaded, fast=True)}


def _quote_times() -> list[int]:
    out, seen = [], 0
    with gzip.open(RECORDING, "rt") as f:
        for line in f:
            stamp, _, raw = line.partition(" ")
            seen = max(seen, int(stamp))
            data = json.loads(raw)
            data = data.get("data", data)
            if data.get("e") is None and "b" in data and "a" in data and "lastUpdateId" not in data:
                out.append(seen)
    return out


def test_a_busy_market_slows_each_order_by_its_quote_rate_when_sent(runs):
    """Each order's entry and acknowledgement latencies are the plain run's times ``1 +
    quote_rate / 100``, with the quote rate counted here from the raw frames (bookTicker frames in
    the 10 s before the decision, over 10 s; one frame of slack for the window's edge)."""
    quotes = _quote_times()
    plain = {r["intent_id"]: r for r in runs["plain"] if r.get("kind") == "order"}
    acks = {r["order_id"]: r for r in runs["scalar"] if r.get("kind") == "ack"}
    plain_acks = {r["order_id"]: r for r in runs["plain"] if r.get("kind") == "ack"}
    orders = [r for r in runs["scalar"] if r.get("kind") == "order" and r["order_id"] in acks]
    assert len(orders) >= 5
    factors = []
    for o in orders:
        base = plain_acks[plain[o["intent_id"]]["order_id"]]
        a = acks[o["order_id"]]
        factor = a["latency_ms"] / base["latency_ms"]
        assert a["ack_latency_ms"] / base["ack_latency_ms"] == pytest.approx(factor, rel=1e-6)
        t = o["ts_ns"]
        hi = bisect_right(quotes, t) - bisect_left(quotes, t - 10 * 10**9)
        assert (hi - 1) / 1000 - 1e-6 <= factor - 1 <= (hi + 1) / 1000 + 1e-6, (o, factor, hi)
        factors.append(factor)
    assert max(factors) - min(factors) > 0.01  # the load varies, and so does the latency


def test_both_replay_paths_write_the_same_log_with_a_load_dependent_latency(runs):
    assert len(runs["scalar"]) == len(runs["fast"])
    for a, b in zip(runs["scalar"], runs["fast"], strict=True):
        assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.mark.parametrize("expr, message", [
    ("metrics.quote_rate_hz_10 / 100", "quote_rate_hz_10"),
    ("metrics.quote_rate_hz_10s > 100", "expected a number"),
    ("__import__('os')", "load_slowdown"),
])
def test_a_bad_load_expression_is_a_config_error_at_its_line(tmp_path, expr, message):
    cfg = _config(tmp_path, expr)
    line = next(i for i, text in enumerate(open(cfg).read().splitlines(), 1) if "load_slowdown" in text)
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "validate", cfg], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    out = proc.stdout + proc.stderr
    assert f"{cfg}:{line}:" in out and message in out, out
