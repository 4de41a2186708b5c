"""The expression language: what it computes, and everything it refuses at load time."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.spec.expr import BOOL, NUM, STR, Binding, Env, ExprError, InputType, compile_expr

ENV = Env(
    inputs={
        "metrics.spread_bps": InputType(NUM),
        "metrics.quote_age_ms": InputType(NUM),
        "regime.state": InputType(STR, frozenset({"NORMAL", "FAST", "UNSTABLE"})),
        "risk.kill_switch": InputType(BOOL),
    },
    params={"max_spread_bps": 12.0, "cooldown_s": 60, "cooldown_max_s": 900},
    states=frozenset({"BLOCKED", "COOLDOWN"}),
    timers=True,
)


def run(text, metrics=None, regime="NORMAL", kill=False, tis=0.0, entries=0):
    ns = {
        "metrics": {"spread_bps": 1.0, "quote_age_ms": 10.0, **(metrics or {})},
        "regime": {"state": regime},
        "risk": {"kill_switch": kill},
    }
    b = Binding(ns, time_in_state=lambda: tis, entries=lambda s, w: entries)
    return compile_expr(text, ENV).bind(b)()


def test_guard_reads_inputs_and_folds_params():
    e = compile_expr("metrics.spread_bps > params.max_spread_bps", ENV)
    assert e.reads == ("metrics.spread_bps",)
    assert e.params == ("max_spread_bps",)
    assert run("metrics.spread_bps > params.max_spread_bps", {"spread_bps": 13}) is True
    assert run("metrics.spread_bps > params.max_spread_bps", {"spread_bps": 11}) is False


def test_state_comparison_and_membership():
    assert run("regime.state == 'UNSTABLE' or risk.kill_switch", regime="UNSTABLE") is True
    assert run("regime.state == 'UNSTABLE' or risk.kill_switch", kill=True) is True
    assert run("regime.state == 'UNSTABLE' or risk.kill_switch") is False
    assert run("regime.state in ['NORMAL', 'FAST']", regime="FAST") is True
    assert run("regime.state not in ['NORMAL', 'FAST']", regime="FAST") is False


def test_escalating_timer_expression():
    text = "min(params.cooldown_s * 2 ** entries('BLOCKED', 3600), params.cooldown_max_s)"
    assert run(text, entries=0) == 60
    assert run(text, entries=2) == 240
    assert run(text, entries=10) == 900


def test_functions_and_conditional():
    assert run("clip(metrics.spread_bps / 10, 0, 1)", {"spread_bps": 25}) == 1
    assert run("abs(-metrics.spread_bps)", {"spread_bps": 3}) == 3
    assert run("log(exp(2))") == pytest.approx(2)
    assert run("1 if risk.kill_switch else 0", kill=True) == 1
    assert run("time_in_state() >= 5", tis=5.0) is True
    assert run("1 < metrics.spread_bps < 3", {"spread_bps": 2}) is True


def test_division_by_zero_gives_infinity_not_an_exception():
    assert run("metrics.spread_bps / 0", {"spread_bps": 1}) == math.inf


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("9**9**9", "exponent"),
        ("2 ** 1000", "exponent"),
        ("'a' * 100000000", "string"),
        ("'ab' + 'cd'", "string"),
        ("metrics.spread_bps[0]", "subscripts"),
        ("lambda: 1", "lambdas"),
        ("[x for x in metrics]", "comprehensions"),
        ("(y := 1)", "assignment"),
        ("open('x')", "not allowed"),
        ("__import__('os')", "not allowed"),
        ("metrics.__class__", "underscore"),
        ("metrics.spread_bps.real", "namespace"),
        ("min(a=1, b=2)", "keyword"),
        ("regime.state == 3", "cannot compare"),
        ("regime.state == 'UNSTALBE'", "not one of its states"),
        ("regime.state > 'FAST'", "only be compared with =="),
        ("params.nope", "not declared"),
        ("foo.bar", "unknown namespace"),
        ("metrics.nope", "unknown input"),
        ("nope", "unknown name"),
        ("risk.kill_switch + 1", "boolean"),
        ("entries('NOPE', 10)", "not a state"),
        ("entries('BLOCKED', metrics.spread_bps)", "positive constant"),
        ("1 +", "syntax error"),
        ("{'a': 1}", "dict"),
        ("f'{metrics}'", "f-strings"),
        ("1e400", "too large"),
    ],
)
def test_refused_forms_are_errors_at_load_time(text, fragment):
    with pytest.raises(ExprError) as info:
        compile_expr(text, ENV)
    assert fragment in info.value.message
    assert "expected" in info.value.message


def test_error_column_points_into_the_expression():
    with pytest.raises(ExprError) as info:
        compile_expr("metrics.spread_bps > 1 and metrics.nope > 2", ENV)
    assert info.value.col == len("metrics.spread_bps > 1 and ")


def test_timer_functions_refused_outside_machines():
    env = Env(inputs=ENV.inputs, params=ENV.params)
    with pytest.raises(ExprError, match="only available inside a state machine"):
        compile_expr("time_in_state() > 1", env)


# Property: the compiled closure computes what plain Python arithmetic and logic compute.
values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(a=values, b=values, c=values)
def test_arithmetic_matches_python(a, b, c):
    env = Env(inputs={f"metrics.{n}": InputType(NUM) for n in "abc"})
    ns = {"metrics": {"a": a, "b": b, "c": c}}
    f = compile_expr("(metrics.a + metrics.b) * metrics.c - max(metrics.a, metrics.c)", env).bind(Binding(ns))
    assert f() == pytest.approx((a + b) * c - max(a, c), rel=1e-12, abs=1e-9)
    g = compile_expr("metrics.a < metrics.b and not metrics.c >= 0 or metrics.a == metrics.c", env).bind(Binding(ns))
    assert g() == ((a < b and not c >= 0) or a == c)
