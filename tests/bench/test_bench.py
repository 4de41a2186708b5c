"""``execlab bench`` runs end to end and reports every figure; never asserts on timing."""

from __future__ import annotations

import json
import math

from framework.bench.baseline import TransitionsPerEventMachine
from framework.bench.measure import run_pipeline
from framework.bench.stream import bench_frames
from framework.cli import main
from framework.spec.session import load_session

REQUIRED = (
    "pipeline_events_per_s", "pipeline_scalar_events_per_s", "latency_us_p50", "latency_us_p99", "latency_us_p999",
    "peak_rss_mb_short", "peak_rss_mb_long", "scalar_peak_rss_mb_short", "scalar_peak_rss_mb_long",
    "baseline_events_per_s",
    "decode_events_per_s", "metrics_events_per_s", "machines_events_per_s",
    "engine_events_per_s", "log_events_per_s",
)


def test_quick_json_reports_every_figure_as_a_positive_number(capsys):
    assert main(["bench", "--quick", "--events", "20000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in REQUIRED:
        assert isinstance(out[key], (int, float)) and math.isfinite(out[key]) and out[key] > 0, key
    assert out["events"] == 20000
    assert out["latency_us_p50"] <= out["latency_us_p99"] <= out["latency_us_p999"]
    assert out["machine"]["cores"] >= 1 and out["machine"]["python"]
    for name in ("regime", "permission", "health"):
        assert out["guard_us"][name]["quiet_us_p50"] > 0
        assert name in out["baseline_guard_us"]
    assert out["baseline_same_transitions"] is True
    assert out["blocks_same_records"] is True and out["blocks_same_transitions"] is True
    assert out["blocks"]["rows"] > out["events"] >= out["blocks"]["rows_full"]
    assert out["multi_symbol"]["events_per_s"] > 0 and len(set(out["multi_symbol"]["symbols"])) == 2


def test_bench_stream_is_seeded_and_exactly_as_long_as_asked():
    a = bench_frames(5000)
    assert len(a) == 5000
    assert a == bench_frames(5000)
    assert all(x[0] <= y[0] for x, y in zip(a, a[1:], strict=False))


def test_transitions_baseline_makes_the_same_transitions_as_the_machines():
    session = load_session(None)
    frames = bench_frames(60_000)  # more than one calm/fast/shock cycle
    ours = run_pipeline(session, frames)
    base = run_pipeline(session, frames, machine_cls=TransitionsPerEventMachine)
    assert ours["transitions"] == base["transitions"]
    assert sum(ours["transitions"]["BTCUSDT"].values()) > 0
    assert ours["records"] == base["records"]
