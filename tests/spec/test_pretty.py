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
