"""The shipped defaults on every real recording in data/, clean and with injected trouble.

Each recording is replayed through configs/default.yaml (its own symbol); the scorecard
(framework/audit/score.py) is read from the audit log. After the 60 s warm-up the gate must let
the system trade at least half of the time without probation flaps; with shocks and gaps
injected into the same recording it must block within 1 s of a shock (2.5 s of a gap's start),
send no order inside a window, and lengthen the cooldown as shocks repeat.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.audit.analysis import NS
from framework.audit.score import score_run
from framework.market.inject import inject
from framework.runtime.run import run_session
from framework.spec.session import load_session
from tests.support import REPO, read_records

RECORDINGS = sorted((REPO / "data").glob("*.frames.gz"))
SHOCKS = [(90.0, 3.0)]  # at 90, 180 and 270 s
GAPS = [(130.0, 4.0)]  # at 130, 220 and 310 s


def symbol_of(path: Path) -> str:
    return "ETHUSDT" if "ethusdt" in path.name else "BTCUSDT"


def run_default(recording: Path, out: Path) -> Path:
    config = REPO / "configs" / "default.yaml"
    data = yaml.safe_load(config.read_text())
    data["symbols"] = [symbol_of(recording)]
    data["source"]["path"] = str(recording.resolve())
    run_session(load_session(config, text=yaml.safe_dump(data, sort_keys=False)), out)
    return out


@pytest.fixture(scope="module", params=RECORDINGS, ids=lambda p: p.name.split("-2024")[0])
def clean(request, tmp_path_factory):
    rec = request.param
    run = run_default(rec, tmp_path_factory.mktemp("clean") / "run")
    return rec, run, score_run(run)["symbols"][symbol_of(rec)]


@pytest.fixture(scope="module", params=RECORDINGS, ids=lambda p: p.name.split("-2024")[0])
def troubled(request, tmp_path_factory):
    rec = request.param
    d = tmp_path_factory.mktemp("troubled")
    injected = d / rec.name
    inject(rec, injected, shocks=SHOCKS, gaps=GAPS, repeat=3, every_s=90, garbage_rate=0.002)
    run = run_default(injected, d / "run")
    return rec, run, score_run(run)["symbols"][symbol_of(rec)]


def test_there_are_four_real_recordings():
    assert len(RECORDINGS) == 4


def test_tradable_at_least_half_of_the_time_after_the_warm_up(clean):
    rec, _, score = clean
    assert score["tradable_share"] >= 0.5, (rec.name, score)


def test_no_probation_visit_shorter_than_a_second(clean):
    rec, run, score = clean
    assert score["probation_flaps"] == 0, (rec.name, score)
    visits = _visits(read_records(run), "PROBATION")
    assert visits, "the gate never opened"
    assert min(b - a for a, b, _ in visits) >= NS


def test_no_verdict_before_the_baselines_exist(clean):
    _, run, _ = clean
    records = read_records(run)
    t0 = records[0]["ts_ns"]
    normal = [r for r in records if r["kind"] == "transition" and r["machine"] == "regime" and r["to"] == "NORMAL"]
    assert normal and normal[0]["ts_ns"] - t0 >= 59 * NS  # 60 samples, the first at the first event


def test_every_shock_and_gap_blocks_in_time_and_no_order_goes_inside(troubled):
    rec, _, score = troubled
    windows = score["windows"]
    assert [w["kind"] for w in windows] == ["shock", "gap"] * 3, windows
    for w in windows:
        limit = 1.0 if w["kind"] == "shock" else 2.5
        assert w["to_blocked_s"] is not None and w["to_blocked_s"] <= limit, (rec.name, w)
        assert w["orders_inside"] == 0, (rec.name, w)


def test_cooldown_escalates_over_repeated_shocks(troubled):
    """Every cooldown waits base * 2^(cooldowns in the last 30 min - 1) before probation; after
    five incidents the wait has grown well past the base, and no probation came early."""
    _, run, _ = troubled
    records = read_records(run)
    perm = [r for r in records if r["kind"] == "transition" and r["machine"] == "permission"]
    entries: list[int] = []
    waits = []
    for v_start, v_end, how in _visits(records, "COOLDOWN"):
        entries.append(v_start)
        n = sum(1 for t in entries if t > v_start - 1800 * NS)
        need = min(30 * 2 ** (n - 1), 600)
        waits.append(need)
        if how == "PROBATION":
            assert v_end - v_start >= need * NS - NS // 10
    assert len(waits) >= 5 and max(waits) >= 4 * 30, waits
    assert any(r["from"] == "COOLDOWN" and r["to"] == "BLOCKED" for r in perm)  # a shock cut one short


def _visits(records: list[dict], state: str) -> list[tuple[int, int, str]]:
    """(start, end, next state) of every permission visit to ``state`` that ended in the run."""
    out = []
    since = None
    for r in records:
        if r["kind"] == "transition" and r["machine"] == "permission":
            if r["from"] == state and since is not None:
                out.append((since, r["ts_ns"], r["to"]))
                since = None
            if r["to"] == state:
                since = r["ts_ns"]
    return out
