"""Hot reload: a valid edit applies at the next event; an invalid one is refused and the run goes on."""

import shutil

import pytest

from framework.market.synthetic import scenario_events
from framework.runtime.pipeline import Runtime
from framework.runtime.reload import HotReload
from framework.spec.session import load_session
from tests.support import REPO


@pytest.fixture
def live_copy(tmp_path):
    """A config whose spec files are copies we may edit while the session runs."""
    machines = tmp_path / "machines"
    shutil.copytree(REPO / "machines", machines)
    cfg = tmp_path / "session.yaml"
    cfg.write_text(f"""\
session: reload
doc: hot reload test
symbols: [BTCUSDT]
source: {{kind: scenario, path: {REPO}/configs/scenarios/calm.yaml, seed: 3}}
machines:
  metrics: machines/metrics.yaml
  regime: machines/regime.yaml
  permission: machines/permission.yaml
  health: machines/health.yaml
  decision: machines/decision.yaml
intents: {{generator: none}}
""")
    session = load_session(cfg)
    records = []
    runtime = Runtime(session, records.append)
    reload = HotReload(session, runtime, records.append)
    runtime.before_event = reload.check
    events = scenario_events(session.resolve(session.source["path"]), 3)
    return machines, runtime, reload, records, events


def feed(runtime, events, n):
    last = None
    for _ in range(n):
        last = next(events)
        runtime.feed(last)
    return last


def test_valid_edit_takes_effect_at_the_next_event(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 3000)  # ~40 s of calm: regime is still warming up (no UNSTABLE)
    pipeline = runtime.pipelines["BTCUSDT"]
    assert pipeline.states()["regime"] in ("WARMUP", "NORMAL", "FAST")
    regime = machines / "regime.yaml"
    regime.write_text(regime.read_text().replace("value: 5.0\n", "value: 0.0001\n", 1))  # unstable_spread_bps
    reload.force = True
    ev = feed(runtime, events, 1)
    (rec,) = [r for r in records if r["kind"] == "config_reload"]
    assert rec["accepted"] is True and rec["config_hash"] != rec["previous_hash"]
    assert rec["ts_ns"] == ev.ts_ns
    unstable = [r for r in records if r["kind"] == "transition" and r["machine"] == "regime" and r["to"] == "UNSTABLE"]
    assert unstable[-1]["ts_ns"] == ev.ts_ns
    assert unstable[-1]["params"]["unstable_spread_bps"] == 0.0001


def test_machines_keep_their_state_across_a_reload(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 3000)
    before = runtime.pipelines["BTCUSDT"].states()
    decision = machines / "decision.yaml"
    decision.write_text(decision.read_text().replace("value: 0.25", "value: 0.2"))
    reload.force = True
    feed(runtime, events, 1)
    assert [r["accepted"] for r in records if r["kind"] == "config_reload"] == [True]
    assert runtime.pipelines["BTCUSDT"].states() == before


def test_invalid_edit_is_rejected_and_the_session_goes_on(live_copy, capsys):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    permission = machines / "permission.yaml"
    permission.write_text(permission.read_text().replace("to: PROBATION", "to: PROBATON", 1))
    reload.force = True
    feed(runtime, events, 1)
    (rec,) = [r for r in records if r["kind"] == "config_reload"]
    assert rec["accepted"] is False
    assert any("unknown state 'PROBATON'" in e and "permission.yaml:" in e for e in rec["errors"])
    assert "config reload rejected" in capsys.readouterr().err
    n = runtime.events
    feed(runtime, events, 2000)
    assert runtime.events == n + 2000
    assert runtime.session.machine_set.machine("permission").rules[2].dest == "PROBATION"
