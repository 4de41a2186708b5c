"""Expressions printed for review: params substituted, units from names, precedence kept."""

import pytest

from framework.spec.pretty import Printer, metric_label, metric_unit, param_unit


@pytest.mark.parametrize("name,unit", [("cooldown_s", "s"), ("stale_quote_ms", "ms"), ("unstable_spread_bps", "bps"),
                                       ("fast_trade_rate_hz", "Hz"), ("max_loss_usd", "USD"), ("exit_ratio", "×"),
                                       ("min_trades_count", ""), ("calm_weight", "")])
def test_param_units_come_from_the_suffix(name, unit):
    assert param_unit(name) == unit


@pytest.mark.parametrize("name,label,unit", [
    ("spread_bps", "spread", "bps"), ("mid_move_bps_1s", "mid move (1 s)", "bps"),
    ("quote_rate_hz_10s", "quote rate (10 s)", "Hz"), ("quote_age_ms", "quote age", "ms"),
    ("spread_to_median_60s", "spread to median (60 s)", None), ("volume_base_per_s_10s", "volume base (10 s)", "base/s"),
])
def test_metric_names_split_into_words_unit_and_window(name, label, unit):
    assert metric_label(name) == label
    assert metric_unit(name) == unit


def test_params_are_substituted_and_folded_with_their_formula():
    p = Printer({"limit_bps": 5.0, "exit_ratio": 0.7, "hold_s": 0.25, "a_s": 2, "b_s": 3})
    assert p.render("metrics.spread_bps >= params.limit_bps") == "spread ≥ 5 bps"
    assert p.render("metrics.spread_bps < params.limit_bps * params.exit_ratio") == "spread < 3.5 bps (5 bps × 0.7)"
    assert p.seconds("params.hold_s") == "0.25 s"
    assert p.seconds("2") == "2 s"
    assert p.render("(metrics.x_bps + params.limit_bps) * 2") == "(x + 5 bps) × 2"
    assert p.render("metrics.x_bps + params.limit_bps * 2") == "x + 10 bps (5 bps × 2)"
    assert p.seconds("(params.a_s + params.b_s) * 2") == "10 s ((2 s + 3 s) × 2)"


def test_negated_order_comparisons_say_that_unknown_values_also_match():
    p = Printer({"stale_ms": 2000})
    assert p.render("not (metrics.quote_age_ms < params.stale_ms)") == "quote age ≥ 2000 ms (or unknown)"
    assert p.render("not risk.kill_switch") == "not risk.kill_switch"


def test_clauses_split_the_top_level_only():
    p = Printer({})
    assert p.clauses("a or (b and c) or regime.state in ['FAST', 'UNSTABLE']") == [
        ("", "a"), ("or", "b and c"), ("or", "regime ∈ {FAST, UNSTABLE}")]


def test_timers_name_their_counts():
    p = Printer({"base_s": 30, "cap_s": 600, "window_s": 1800})
    assert p.seconds("min(params.base_s * 2 ** max(entries('BLOCKED', params.window_s) - 1, 0), params.cap_s)") \
        == "min(30 s × 2^max(n − 1, 0), 600 s)"
    assert p.notes == ["entries into BLOCKED in the last 1800 s"]


# --- any expression of the language prints, params never leak, clauses split as parsed --------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from framework.spec.expr import BOOL, NUM, STR, Env, InputType, compile_expr  # noqa: E402

_ENV = Env(inputs={"metrics.spread_bps": InputType(NUM), "metrics.quote_rate_hz_10s": InputType(NUM),
                   "risk.stale": InputType(BOOL), "regime.state": InputType(STR, frozenset({"NORMAL", "FAST"}))},
           params={"limit_bps": 5.0, "exit_ratio": 0.7, "hold_s": 2, "cap_count": 3},
           derived={"score": InputType(NUM)})
_NUM_ATOMS = st.sampled_from(["metrics.spread_bps", "metrics.quote_rate_hz_10s", "params.limit_bps", "params.exit_ratio",
                              "params.hold_s", "params.cap_count", "score", "2", "0.5"])


def _num(depth):
    if depth == 0:
        return _NUM_ATOMS
    sub = _num(depth - 1)
    return st.one_of(
        _NUM_ATOMS,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "**"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        sub.map(lambda x: f"-{x}"),
    )


def _cond(depth):
    cmp = st.tuples(_num(1), st.sampled_from(["<", "<=", ">", ">=", "=="]), _num(1)).map(lambda t: " ".join(t))
    atoms = st.one_of(cmp, st.just("risk.stale"), st.sampled_from(["regime.state == 'FAST'", "regime.state in ['NORMAL']"]),
                      cmp.map(lambda c: f"not ({c})"))
    if depth == 0:
        return atoms
    sub = _cond(depth - 1)
    return st.one_of(atoms, st.lists(sub, min_size=2, max_size=4).flatmap(
        lambda parts: st.sampled_from([" and ", " or "]).map(lambda op: "(" + op.join(parts) + ")")))


@settings(max_examples=150, deadline=None)
@given(st.lists(_cond(2), min_size=1, max_size=4), st.sampled_from([" and ", " or "]))
def test_any_condition_prints_one_line_per_top_level_clause(parts, op):
    text = op.join(parts)
    expr = compile_expr(text, _ENV)  # valid in the language
    printer = Printer(_ENV.params)
    clauses = printer.clauses(expr.text)
    assert len(clauses) == (len(parts) if len(parts) > 1 else (1 if not parts[0].startswith("(") else len(clauses)))
    for _, line in clauses:
        assert "params." not in line and "metrics." not in line and line.strip()
