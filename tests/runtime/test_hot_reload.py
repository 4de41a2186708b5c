"""Hot reload: a valid edit applies once it has settled; an invalid, cut-short or unappliable one is
refused and the run goes on."""

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
    reload = HotReload(session, runtime, records.append, settle_s=0)
    runtime.before_event = reload.check
    events = scenario_events(session.resolve(session.source["path"]), 3)
    return machines, runtime, reload, records, events


def feed(runtime, events, n):
    last = None
    for _ in range(n):
        last = next(events)
        runtime.feed(last)
    return last


def check_now(reload, runtime, events):
    """One reload check, at the next event."""
    reload.force = True
    return feed(runtime, events, 1)


def settle(reload, runtime, events):
    """Two checks: the first sees a change, the second finds it unchanged and applies it."""
    check_now(reload, runtime, events)
    return check_now(reload, runtime, events)


def reloads(records):
    return [r for r in records if r["kind"] == "config_reload"]


def test_valid_edit_takes_effect_at_the_next_event(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 3000)  # ~40 s of calm: regime is still warming up (no UNSTABLE)
    pipeline = runtime.pipelines["BTCUSDT"]
    assert pipeline.states()["regime"] in ("WARMUP", "NORMAL", "FAST")
    regime = machines / "regime.yaml"
    regime.write_text(regime.read_text().replace("value: 5.0\n", "value: 0.0001\n", 1))  # unstable_spread_bps
    ev = settle(reload, runtime, events)
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
    settle(reload, runtime, events)
    assert [r["accepted"] for r in records if r["kind"] == "config_reload"] == [True]
    assert runtime.pipelines["BTCUSDT"].states() == before


def test_invalid_edit_is_rejected_and_the_session_goes_on(live_copy, capsys):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    permission = machines / "permission.yaml"
    permission.write_text(permission.read_text().replace("to: PROBATION", "to: PROBATON", 1))
    settle(reload, runtime, events)
    (rec,) = [r for r in records if r["kind"] == "config_reload"]
    assert rec["accepted"] is False
    assert any("unknown state 'PROBATON'" in e and "permission.yaml:" in e for e in rec["errors"])
    assert "config reload rejected" in capsys.readouterr().err
    n = runtime.events
    feed(runtime, events, 2000)
    assert runtime.events == n + 2000
    assert runtime.session.machine_set.machine("permission").rules[2].dest == "PROBATION"


def test_a_reload_watches_the_new_tables_invariants_on_the_live_values(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 100)
    decision = machines / "decision.yaml"
    decision.write_text(decision.read_text() + "  - name: small_probation_budget\n    doc: test\n"
                        "    when: permission.state == 'PROBATION'\n    holds: decision.risk_budget <= 0.25\n")
    settle(reload, runtime, events)
    assert [r["accepted"] for r in records if r["kind"] == "config_reload"] == [True]
    pipeline = runtime.pipelines["BTCUSDT"]
    ns = pipeline.namespaces
    ns["permission"]["state"] = "PROBATION"  # values the table never produces, set by hand
    ns["decision"]["risk_budget"] = 0.5
    (alert,) = [a for a in pipeline.invariants.check(1, "BTCUSDT") if a["guard"] == "invariant:small_probation_budget"]
    assert alert["state"] == "trip" and alert["where"] == f"decision.yaml:{len(decision.read_text().splitlines()) - 3}"
    assert alert["inputs"] == {"permission.state": "PROBATION", "decision.risk_budget": 0.5}


def test_a_change_is_applied_only_after_it_has_settled(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    regime = machines / "regime.yaml"
    full = regime.read_text().replace("value: 5.0\n", "value: 4.0\n", 1)
    half = full[: len(full) // 2]
    regime.write_text(half)  # a writer half way through the file
    check_now(reload, runtime, events)
    assert reloads(records) == []  # seen once: not read as a change yet
    regime.write_text(full)  # the writer finishes before the next check
    check_now(reload, runtime, events)
    assert reloads(records) == []  # changed since the last check: still settling
    check_now(reload, runtime, events)
    (rec,) = reloads(records)
    assert rec["accepted"] is True
    assert runtime.session.machine_set.machine("regime").params["unstable_spread_bps"].value == 4.0


def test_a_file_cut_mid_line_is_rejected(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    regime = machines / "regime.yaml"
    text = regime.read_text()
    cut = text.index("\n", text.index("transitions:")) + 25  # inside the first rule, mid-line
    regime.write_text(text[:cut])
    settle(reload, runtime, events)
    (rec,) = reloads(records)
    assert rec["accepted"] is False
    assert any("regime.yaml:" in e for e in rec["errors"])
    assert runtime.session.machine_set.machine("regime").rules  # the running machines carry on


def test_a_config_cut_at_a_line_break_that_still_validates_is_rejected(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    cfg = runtime.session.path
    text = open(cfg).read()
    cut = text[: text.index("intents:")]  # every section after the cut is optional
    load_session(cfg, text=cut)  # the cut config is valid on its own
    open(cfg, "w").write(cut)
    settle(reload, runtime, events)
    (rec,) = reloads(records)
    assert rec["accepted"] is False
    assert any("section 'intents' is missing" in e for e in rec["errors"])


def test_a_file_without_a_final_line_break_is_rejected(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    decision = machines / "decision.yaml"
    decision.write_text(decision.read_text().rstrip("\n"))
    settle(reload, runtime, events)
    (rec,) = reloads(records)
    assert rec["accepted"] is False and "does not end with a line break" in rec["errors"][0]


@pytest.mark.parametrize("extra", ["overrides:\n  permission.cooldown_s: .nan\n",
                                   "overrides:\n  permission.cooldown_s: .inf\n",
                                   "overrides:\n  permission.cooldown_s: -5\n",
                                   "risk: {max_order_notional_usd: 10}\n",
                                   "bomb: &a [x, *a]\n"])
def test_nan_overrides_sections_a_restart_needs_and_bombs_are_rejected(live_copy, extra):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    cfg = runtime.session.path
    with open(cfg, "a") as f:
        f.write(extra)
    settle(reload, runtime, events)
    (rec,) = reloads(records)
    assert rec["accepted"] is False and rec["errors"]
    # the config's own line first; what the bad value does to a machine may follow
    assert rec["errors"][0].startswith(cfg + ":") or any(e.startswith(cfg + ":") for e in rec["errors"])
    assert runtime.session.overrides == {}


def test_an_undone_change_is_not_reloaded(live_copy):
    machines, runtime, reload, records, events = live_copy
    feed(runtime, events, 1000)
    decision = machines / "decision.yaml"
    text = decision.read_text()
    stat = decision.stat()
    decision.write_text(text + "# note\n")
    check_now(reload, runtime, events)
    decision.write_text(text)
    import os

    os.utime(decision, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    settle(reload, runtime, events)
    assert reloads(records) == []
