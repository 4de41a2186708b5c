"""The risk machine (machines/risk.yaml): loaded and checked like a machine, set by the session's
risk: section, and run on both replay paths with the same log, including a file of one's own."""

import dataclasses
import json

import pytest
import yaml

from framework.execution import RiskConfig
from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import Runtime, run_events
from framework.spec.errors import SpecErrors
from framework.spec.metrics import load_metric_set
from framework.spec.risk import load_risk_machine, risk_overrides
from framework.spec.session import load_session
from tests.support import REPO

RISK_YAML = REPO / "machines" / "risk.yaml"
METRICS = load_metric_set(REPO / "machines" / "metrics.yaml").names


def params(machine) -> dict:
    return {k: p.value for k, p in machine.spec.params.items()}


def test_the_files_values_are_the_risk_sections_defaults():
    from_file = params(load_risk_machine(RISK_YAML, METRICS))
    from_defaults = params(load_risk_machine(RISK_YAML, METRICS, dataclasses.asdict(RiskConfig())))
    assert from_file == from_defaults


def test_the_risk_section_sets_the_params():
    m = load_risk_machine(RISK_YAML, METRICS, {"max_orders": 3, "stale_quote_ms": 750, "kill_switch_on": ["order_rate"],
                                               "kill_switch_reset_s": 2.5})
    p = params(m)
    assert p["max_orders_count"] == 3 and p["stale_quote_ms"] == 750
    assert p["kill_on_order_rate_enabled"] is True and p["kill_on_loss_limit_enabled"] is False
    assert p["kill_switch_resets_enabled"] is True and p["kill_switch_reset_s"] == 2.5
    assert m.kill_on == {"order_rate"} and m.latch == "2.5s clear"
    assert load_risk_machine(RISK_YAML, METRICS, {"kill_switch_reset_s": None}).latch == "session"


def test_overrides_only_for_the_keys_given():
    assert risk_overrides({}, {"loss_limit_usd": 1}) == {}
    assert risk_overrides({"loss_limit_usd": 7, "order_window_s": 9}, {"loss_limit_usd": 1}) == {"loss_limit_usd": 7}


def test_guards_are_the_boolean_derived_values_with_both_sides():
    m = load_risk_machine(RISK_YAML, METRICS)
    assert [g.name for g in m.guards] == ["loss_limit", "max_drawdown", "max_position_notional", "order_rate",
                                          "stale_data"]
    stale = m.guards[-1]
    assert stale.value.text == "metrics.quote_age_ms" and stale.limit.root.const == 2000.0
    assert m.reads_metric() == ("quote_age_ms",)


def _broken(tmp_path, old: str, new: str) -> str:
    text = RISK_YAML.read_text()
    assert old in text
    path = tmp_path / "risk.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(SpecErrors) as exc:
        load_risk_machine(path, METRICS)
    return "\n".join(str(e) for e in exc.value.errors)


@pytest.mark.parametrize("old,new,message", [
    ("reads: [metrics, account]", "reads: [metrics, regime]", "cannot read 'regime'"),
    ("machine: risk", "machine: guards", "expected machine: risk"),
    ("expr: metrics.quote_age_ms > params.stale_quote_ms", "expr: metrics.quote_age_ms > 1 and true",
     "guard stale_data is not one comparison"),
    ("metrics.quote_age_ms >", "metrics.quote_age_msec >", "unknown"),
    ("stale_data", "stale_feed", "no guard stale_data"),
    ("initial: ARMED", "initial: TRIPPED", "starts TRIPPED"),
])
def test_a_broken_risk_machine_is_an_error_at_its_line(tmp_path, old, new, message):
    text = _broken(tmp_path, old, new)
    assert message in text and "risk.yaml:" in text


def test_a_metric_set_without_the_stale_metric_is_an_error_at_load():
    with pytest.raises(SpecErrors) as exc:
        load_risk_machine(RISK_YAML, tuple(n for n in METRICS if n != "quote_age_ms"))
    assert any("quote_age_ms" in str(e) for e in exc.value.errors)


def test_validate_checks_the_risk_machine_file():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "framework.cli", "validate", str(RISK_YAML)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "risk machine" in proc.stdout


# -- a risk machine of one's own, on both replay paths -----------------------------------------

OWN_GUARDS = """
  wide_spread:
    expr: metrics.spread_bps > params.max_spread_bps
    doc: The book is wider than we trust.
"""


WARNING = """  WARNING:
    doc: The spread is wide; nothing kills yet.
transitions:"""
WARNING_RULES = """  - from: ARMED
    to: WARNING
    when: wide_spread and killing_guards == 0
    doc: Wide.
  - from: WARNING
    to: ARMED
    when: not wide_spread
    doc: Narrow again.
  - from: WARNING
    to: TRIPPED
    when: killing_guards > 0
    doc: A guard that kills.
"""


def _own_session(tmp_path, risk_section: dict, warning: bool = False):
    """The default session with a risk machine whose stale guard reads the trade age and which
    has one more guard, on the spread, that kills (or, with ``warning``, that moves it to a state
    of its own and does not kill)."""
    text = RISK_YAML.read_text()
    if warning:
        text = text.replace("transitions:", WARNING, 1) + WARNING_RULES
    text = text.replace("expr: metrics.quote_age_ms > params.stale_quote_ms",
                        "expr: metrics.trade_age_ms > params.stale_quote_ms")
    text = text.replace("derive:\n", "derive:" + OWN_GUARDS, 1)
    text = text.replace("params:\n", "params:\n  max_spread_bps:\n    value: 0.02\n    doc: Widest spread.\n"
                        f"  kill_on_wide_spread_enabled:\n    value: {str(not warning).lower()}\n"
                        "    doc: wide_spread kills.\n", 1)
    text = text.replace("(1 if loss_limit and", "(1 if wide_spread and params.kill_on_wide_spread_enabled else 0)\n"
                        "      + (1 if loss_limit and", 1)
    own = tmp_path / "risk.yaml"
    own.write_text(text)
    path = REPO / "configs" / "default.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("machines", {})["risk"] = str(own)
    data["risk"] = {**(data.get("risk") or {}), **risk_section}
    data["intents"] = {"generator": "probe", "probe": {"period_s": 1, "notional_usd": 400, "style": "alternate",
                                                       "ttl_s": 3}}
    return load_session(path, text=yaml.safe_dump(data, sort_keys=False))


def _records(session, events, blocks: bool) -> list[str]:
    records: list = []
    runtime = Runtime(session, records.append)
    if blocks:
        BlockRunner(runtime).run(events)
    else:
        run_events(runtime, events)
    records.append({"summary": runtime.finish()})
    return [json.dumps(r, sort_keys=True, default=str) for r in records]


@pytest.mark.parametrize("reset_s", [None, 1])
def test_a_guard_of_ones_own_and_a_stale_metric_named_in_the_file_on_both_paths(tmp_path, reset_s):
    from framework.runtime.sources import replay_events

    session = _own_session(tmp_path, {"stale_quote_ms": 400, "kill_switch_reset_s": reset_s,
                                      "kill_switch_on": ["stale_data"]})
    assert [g.name for g in session.risk_machine.guards][0] == "wide_spread"
    events = list(replay_events(session)[0])[:12000]
    scalar = _records(session, events, blocks=False)
    fast = _records(session, events, blocks=True)
    assert scalar == fast
    alerts = [json.loads(r) for r in scalar if '"kind": "alert"' in r]
    guards = {(a["guard"], a["state"]) for a in alerts}
    assert ("wide_spread", "trip") in guards and ("stale_data", "trip") in guards
    trips = [a for a in alerts if a["guard"] == "kill_switch" and a["state"] == "trip"]
    assert trips and set(trips[0]["reasons"].split(",")) <= {"wide_spread", "stale_data"}
    stale = [a for a in alerts if a["guard"] == "stale_data" and a["state"] == "trip"]
    assert all(a["limit"] == 400 for a in stale)
    ages = [a["value"] for a in stale if a["value"] != "inf"]  # "inf": no trade yet
    assert ages and all(age > 400 for age in ages)  # the trade age, as the file names it
    clears = [a for a in alerts if a["guard"] == "kill_switch" and a["state"] == "clear"]
    assert bool(clears) == (reset_s is not None)
    assert all(t["latch"] == ("session" if reset_s is None else "1s clear") for t in trips)


def test_a_risk_machine_with_a_state_of_its_own_logs_its_transitions_on_both_paths(tmp_path):
    from framework.runtime.sources import replay_events

    session = _own_session(tmp_path, {"stale_quote_ms": 400, "kill_switch_reset_s": 1,
                                      "kill_switch_on": ["stale_data"]}, warning=True)
    events = list(replay_events(session)[0])[:12000]
    scalar = _records(session, events, blocks=False)
    assert scalar == _records(session, events, blocks=True)
    moves = [json.loads(r) for r in scalar if '"machine": "risk"' in r]
    assert {(m["from"], m["to"]) for m in moves} >= {("ARMED", "WARNING"), ("WARNING", "ARMED")}
    assert all(m["kind"] == "transition" and m["symbol"] == "BTCUSDT" for m in moves)
    assert not any('"reasons": "wide_spread' in r for r in scalar)  # it does not kill here
