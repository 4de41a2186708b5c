"""Declared invariants: proven over every combination at load, a counterexample when an edit
breaks one, and an alert record when a run ever violates one."""

import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from framework.spec.errors import SpecErrors
from framework.spec.expr import NUM, Env, InputType, compile_expr
from framework.spec.invariants import Invariant, _constants_compared_with, decision_outputs
from framework.spec.loader import load_yaml
from framework.spec.machines import check_decision, load_machine_set
from framework.spec.metrics import load_metric_set
from framework.spec.session import load_session
from tests.support import REPO, read_records


def load(machines):
    metrics = load_metric_set(machines / "metrics.yaml")
    return load_machine_set([machines / f"{n}.yaml" for n in ("regime", "permission", "health")],
                            machines / "decision.yaml", metrics.names)


@pytest.fixture
def machines(tmp_path):
    out = tmp_path / "machines"
    shutil.copytree(REPO / "machines", out)
    return out


def validate(path):
    return subprocess.run([sys.executable, "-m", "framework.cli", "validate", str(path)], capture_output=True,
                          text=True, cwd=REPO)


def _line_of(path, text):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_shipped_table_declares_and_proves_the_expected_invariants():
    names = [i.name for i in load(REPO / "machines").decision.invariants]
    for expected in ("kill_switch_blocks", "stale_data_blocks", "take_only_when_allowed_green_normal",
                     "closed_gate_blocks", "red_health_blocks", "unstable_market_blocks", "warmup_blocks"):
        assert expected in names
    proc = validate(REPO / "machines" / "decision.yaml")
    assert proc.returncode == 0 and f"{len(names)} invariants proven" in proc.stdout


def test_an_edit_that_lets_probation_take_is_caught_with_a_counterexample(machines):
    decision = machines / "decision.yaml"
    text = decision.read_text()
    decision.write_text(text.replace("then: {eligible: true, aggressiveness: passive, risk_budget: params.probation_budget_ratio}",
                                     "then: {eligible: true, aggressiveness: take, risk_budget: params.probation_budget_ratio}"))
    proc = validate(decision)
    assert proc.returncode == 2
    line = _line_of(decision, "- name: take_only_when_allowed_green_normal")
    rule_line = _line_of(decision, "- name: probation")
    msg = next(x for x in proc.stderr.splitlines() if "take_only_when_allowed_green_normal" in x)
    assert msg.startswith(f"{decision}:{line}:5: invariant 'take_only_when_allowed_green_normal' does not hold: with ")
    assert "permission=PROBATION" in msg and "risk.kill_switch=false" in msg and "risk.stale=false" in msg
    assert f"rule 'probation' (line {rule_line}) decides eligible=true, aggressiveness=take, risk_budget=0.25" in msg
    assert f"{decision}:{_line_of(decision, '- name: probation_is_passive')}:5: invariant 'probation_is_passive'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dropping_the_stale_data_rule_is_caught(machines):
    decision = machines / "decision.yaml"
    text = decision.read_text()
    start = text.index("  - name: stale_data\n")
    decision.write_text(text[:start] + text[text.index("  - name: not_permitted\n"):])
    with pytest.raises(SpecErrors) as exc:
        load(machines)
    (err,) = exc.value.errors
    assert err.line == _line_of(decision, "- name: stale_data_blocks")
    assert "risk.stale=true" in err.message and "risk.kill_switch=false" in err.message
    assert "aggressiveness=take" in err.message or "aggressiveness=passive" in err.message


def test_numbers_are_checked_at_their_boundaries(machines):
    decision = machines / "decision.yaml"
    text = decision.read_text()
    text = text.replace("  - name: full\n", "  - name: very_healthy\n    doc: A high score takes.\n"
                        "    when: health.score >= 0.9\n    then: {eligible: true, aggressiveness: take, risk_budget: 1}\n"
                        "  - name: full\n")
    text = text.replace("then: {eligible: true, aggressiveness: take, risk_budget: 1.0}",
                        "then: {eligible: true, aggressiveness: passive, risk_budget: 1.0}")
    start = text.index("invariants:\n")
    text = text[:start] + ("invariants:\n  - name: take_needs_a_high_score\n    doc: x\n"
                           "    when: decision.aggressiveness == 'take'\n    holds: health.score > 0.9\n")
    decision.write_text(text)
    with pytest.raises(SpecErrors) as exc:
        load(machines)
    (err,) = exc.value.errors
    assert "health.score=0.9," in err.message and "rule 'very_healthy'" in err.message


def test_invariant_errors_point_into_the_file(machines):
    decision = machines / "decision.yaml"
    decision.write_text(decision.read_text() + "  - name: typo\n    doc: x\n    holds: permission.state == 'ALLOWD'\n"
                        "  - name: typo\n    doc: x\n    when: decision.risk_budget\n    holds: true\n")
    proc = validate(decision)
    assert proc.returncode == 2
    n = len(decision.read_text().splitlines())
    assert f"{decision}:{n - 4}:12: invariant typo holds: 'ALLOWD' is not one of its states" in proc.stderr
    assert f"{decision}:{n - 3}:11: invariant name 'typo' is used twice" in proc.stderr
    assert f"{decision}:{n - 1}:11: when is not a condition" in proc.stderr


def test_a_run_that_violates_an_invariant_writes_alert_records(tmp_path):
    from framework.runtime.run import run_session

    session = load_session(REPO / "configs" / "scenario-shock.yaml")
    decision = session.machine_set.decision
    env = Env(inputs=decision_outputs(r.name for r in decision.rules))
    # Not provable (it is false whenever the table allows taking): stands for a runtime that
    # disagrees with the spec's model of it.
    never_take = Invariant("never_take", "test", None, compile_expr("decision.aggressiveness != 'take'", env),
                           decision.path, 99)
    session.machine_set.decision = replace(decision, invariants=[*decision.invariants, never_take])
    run_session(session, tmp_path)
    records = read_records(tmp_path)
    alerts = [r for r in records if r["kind"] == "alert" and r.get("source") == "invariant"]
    takes = [r for r in records if r["kind"] == "decision" and r["aggressiveness"] == "take"]
    assert takes, "the scenario reaches full permission"
    assert [a["guard"] for a in alerts] == ["invariant:never_take"] * len(alerts)
    assert alerts[0]["state"] == "trip" and alerts[0]["ts_ns"] == takes[0]["ts_ns"]
    assert alerts[0]["inputs"] == {"decision.aggressiveness": "take"}
    assert alerts[0]["where"] == "decision.yaml:99" and alerts[0]["invariant"] == "decision.aggressiveness != 'take'"
    states = [a["state"] for a in alerts]
    assert states == ["trip", "clear"] * (len(states) // 2) + ["trip"] * (len(states) % 2)
    from framework.audit.explain import explain, format_text

    text = format_text(explain(records, alerts[0]["ts_ns"]))
    assert "Invariants failing: never_take (decision.aggressiveness != 'take'; since" in text


# --- numbers: the boundary values find every violation a dense brute force finds ---------------

import math  # noqa: E402
import operator  # noqa: E402
import random  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_THRESHOLDS = st.sampled_from([0.0, 0.25, 0.5, 0.55, 0.8, 0.9, 1.0])


_SHARED: dict = {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(_OPS)), _THRESHOLDS, st.sampled_from(["take", "passive", "none"])),
                min_size=1, max_size=3),
       st.sampled_from(list(_OPS)), _THRESHOLDS)
def test_score_thresholds_are_proven_like_a_dense_brute_force(tmp_path_factory, rules, inv_op, inv_c):
    if "upstream" not in _SHARED:  # the machines once; each example only checks a new table
        _SHARED["upstream"] = load(REPO / "machines")
        _SHARED["dir"] = tmp_path_factory.mktemp("m")
    shipped = _SHARED["upstream"]
    machines = _SHARED["dir"]
    body = ["table: decision", "doc: generated", "reads: [health]", "rules:"]
    for i, (op, c, aggr) in enumerate(rules):
        eligible = "false" if aggr == "none" else "true"
        body += [f"  - name: r{i}", "    doc: x", f"    when: health.score {op} {c}",
                 f"    then: {{eligible: {eligible}, aggressiveness: {aggr}, risk_budget: {0 if aggr == 'none' else 1}}}"]
    body += ["  - name: rest", "    doc: x", "    when: true", "    then: {eligible: false, aggressiveness: none, risk_budget: 0}",
             "invariants:", "  - name: inv", "    doc: x", "    when: decision.aggressiveness == 'take'",
             f"    holds: health.score {inv_op} {inv_c}"]
    (machines / "decision.yaml").write_text("\n".join(body) + "\n")

    def decide(score):
        for op, c, aggr in rules:
            if _OPS[op](score, c):
                return aggr
        return "none"

    def violated(score):
        return decide(score) == "take" and not _OPS[inv_op](score, inv_c)

    rng = random.Random(0)
    dense = [math.nan, -math.inf, math.inf, *(i / 1000 for i in range(-100, 1101)),
             *(rng.uniform(-2, 3) for _ in range(500))]
    for c in {c for _, c, _ in rules} | {inv_c}:
        dense += [c, math.nextafter(c, -math.inf), math.nextafter(c, math.inf)]
    brute = [s for s in dense if violated(s)]
    try:
        check_decision(load_yaml(machines / "decision.yaml"), shipped.metric_names,
                       {m.name: m for m in shipped.machines})
        proven = None
    except SpecErrors as exc:
        (err,) = exc.errors
        proven = float(err.message.split("health.score=", 1)[1].split(",", 1)[0])
    if brute:
        assert proven is not None and violated(proven), (rules, inv_op, inv_c, brute[:3])
    else:
        assert proven is None


def test_the_proof_tries_every_number_an_input_is_compared_with():
    """Params, negative and folded constants, either side, chained comparisons, derived names;
    not a number compared with another input, nor another input's thresholds."""
    env = Env(inputs={"metrics.a": InputType(NUM), "metrics.b": InputType(NUM)}, params={"lim": 7, "neg": -2.5},
              derived={"score": InputType(NUM)})
    exprs = [compile_expr(t, env) for t in (
        "metrics.a > params.lim and 1.5 >= metrics.a",
        "-3 < metrics.a <= params.lim * 2",
        "metrics.a != params.neg or metrics.a < metrics.b",
        "metrics.b > 100 and score < 0.25",
    )]
    assert _constants_compared_with(exprs, "metrics.a") == {7.0, 1.5, -3.0, 14.0, -2.5}
    assert _constants_compared_with(exprs, "metrics.b") == {100.0}
    assert _constants_compared_with(exprs, "score") == {0.25}
