"""Schema and semantic errors: each kind, with the exact line and column, all in one run."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework.spec.errors import SpecErrors
from framework.spec.loader import parse_yaml
from framework.spec.machines import load_machine_set
from framework.spec.session import MACHINES_DIR, load_session

REPO = Path(__file__).resolve().parents[2]
METRICS = ("spread_bps", "quote_age_ms", "mid_move_bps_1s")

GOOD = """\
machine: toy
doc: A toy machine.
reads: [metrics]
params:
  wide_bps: {value: 5, doc: Wide spread.}
  wait_s: {value: 2, doc: Wait.}
initial: CALM
states:
  CALM: {doc: Calm.}
  WILD: {doc: Wild.}
transitions:
  - from: CALM
    to: WILD
    when: metrics.spread_bps > params.wide_bps
  - from: WILD
    to: CALM
    after: params.wait_s
"""

DECISION = """\
table: decision
doc: Toy decisions.
reads: [toy]
rules:
  - name: wild
    doc: No trading when wild.
    when: toy.state == 'WILD'
    then: {eligible: false, aggressiveness: none, risk_budget: 0}
  - name: ok
    doc: Otherwise trade.
    when: true
    then: {eligible: true, aggressiveness: take, risk_budget: 1}
"""


def errors_for(tmp_path, machine_text, decision_text=DECISION):
    m = tmp_path / "toy.yaml"
    m.write_text(textwrap.dedent(machine_text))
    d = tmp_path / "decision.yaml"
    d.write_text(textwrap.dedent(decision_text))
    with pytest.raises(SpecErrors) as info:
        load_machine_set([m], d, METRICS)
    return [(e.line, e.col, e.message) for e in info.value.errors]


def test_good_machine_loads(tmp_path):
    m = tmp_path / "toy.yaml"
    m.write_text(GOOD)
    d = tmp_path / "decision.yaml"
    d.write_text(DECISION)
    ms = load_machine_set([m], d, METRICS)
    assert [r.index for r in ms.machines[0].rules] == [1, 2]


def test_duplicate_key_is_an_error_with_its_line():
    with pytest.raises(SpecErrors) as info:
        parse_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")
    (err,) = info.value.errors
    assert (err.line, err.col) == (3, 1)
    assert "duplicate key 'a'" in err.message


def test_yaml_syntax_error_names_line(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("initial: CALM", "initial: [CALM"))
    assert any(line == 8 and col == 7 and "YAML syntax error" in msg for line, col, msg in errs)


def test_schema_error_unknown_property_points_at_the_key(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("  - from: WILD\n", "  - from: WILD\n    unless: x\n"))
    assert any(line == 16 and "unless" in msg and "expected one of" in msg for line, col, msg in errs)


def test_schema_error_missing_required(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("  CALM: {doc: Calm.}", "  CALM: {}"))
    assert any(line == 9 and "'doc' is a required property" in msg for line, col, msg in errs)


def test_unknown_state_in_transition(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("    to: WILD", "    to: WILDE"))
    assert (13, 9, "unknown state 'WILDE' in to; expected one of: CALM, WILD") in errs


def test_unreachable_state(tmp_path):
    text = GOOD.replace("  WILD: {doc: Wild.}", "  WILD: {doc: Wild.}\n  LOST: {doc: Lost., terminal: true}")
    errs = errors_for(tmp_path, text)
    assert any(line == 11 and "unreachable" in msg for line, col, msg in errs)


def test_state_without_way_out_must_be_terminal(tmp_path):
    text = GOOD.replace("  - from: WILD\n    to: CALM\n    after: params.wait_s\n", "")
    errs = errors_for(tmp_path, text)
    assert any(line == 10 and "no way out" in msg and "terminal: true" in msg for line, col, msg in errs)


def test_unknown_name_in_expression_points_into_the_line(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("metrics.spread_bps > params.wide_bps", "metrics.spred_bps > params.wide_bps"))
    (err,) = [e for e in errs if "spred_bps" in e[2]]
    assert err[0] == 14 and err[1] == len("    when: ") + 1


def test_undeclared_param(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("after: params.wait_s", "after: params.wait_ms"))
    assert any(line == 17 and "param 'wait_ms' is not declared" in msg for line, col, msg in errs)


def test_param_without_unit(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("wait_s: {value: 2", "wait: {value: 2").replace("params.wait_s", "params.wait"))
    assert any(line == 6 and "does not say its unit" in msg for line, col, msg in errs)


def test_wrong_type_state_compared_to_number(tmp_path):
    errs = errors_for(tmp_path, GOOD, DECISION.replace("toy.state == 'WILD'", "toy.state == 3"))
    assert any(line == 7 and "cannot compare a state name" in msg for line, col, msg in errs)


def test_guard_must_be_a_condition_and_timer_a_number(tmp_path):
    errs = errors_for(tmp_path, GOOD.replace("when: metrics.spread_bps > params.wide_bps", "when: metrics.spread_bps")
                      .replace("after: params.wait_s", "after: metrics.spread_bps > 1"))
    messages = " | ".join(m for _, _, m in errs)
    assert "when is a number; expected a condition" in messages
    assert "after is a boolean; expected seconds" in messages


def test_decision_needs_a_catch_all_last(tmp_path):
    errs = errors_for(tmp_path, GOOD, DECISION.replace("    when: true\n", "    when: toy.state == 'CALM'\n"))
    assert any("not a catch-all" in msg for _, _, msg in errs)


def test_all_errors_reported_in_one_run(tmp_path):
    text = GOOD.replace("    to: WILD", "    to: WILDE").replace("after: params.wait_s", "after: params.nope_s")
    errs = errors_for(tmp_path, text)
    assert len(errs) >= 2


def test_override_of_a_param_that_does_not_exist(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        session: t
        doc: test
        source: {{kind: replay, path: {REPO}/data/binance-spot-btcusdt-20240808.frames.gz}}
        overrides:
          permission.cooldown_s: 10
          permission.cooldwn_s: 10
        """))
    with pytest.raises(SpecErrors) as info:
        load_session(cfg)
    (err,) = info.value.errors
    assert (err.line, err.col) == (6, 3)
    assert "param that does not exist: 'permission.cooldwn_s'" in err.message
    with pytest.raises(SpecErrors, match="regime.nope_bps"):
        load_session(REPO / "configs" / "default.yaml", sets=["regime.nope_bps=3"])


def test_cli_validate_reports_file_line_and_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "regime.yaml"
    bad.write_text((MACHINES_DIR / "regime.yaml").read_text().replace("to: FAST", "to: FASTER", 1))
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "validate", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "to: FASTER" in t)
    assert f"{bad}:{line}:9: unknown state 'FASTER' in to" in proc.stderr


def test_cli_validate_accepts_the_shipped_specs_and_configs():
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "validate"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "machines/regime.yaml" in proc.stdout and "configs/default.yaml" in proc.stdout
