"""Loading machines/metrics.yaml: schema and semantic errors at the exact line and column."""

from __future__ import annotations

import pytest

from framework.spec.errors import SpecErrors
from framework.spec.schema import schema
from framework.state import KINDS, default_metrics_path, load_metric_set, parse_metric_set


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecErrors) as exc:
        parse_metric_set(text, "m.yaml")
    return [str(e) for e in exc.value.errors]


def test_default_metric_set_loads_with_names_in_declaration_order():
    ms = load_metric_set(default_metrics_path())
    assert ms.names[:3] == ("mid", "spread", "spread_bps")
    assert {"quote_age_ms", "trade_age_ms", "mid_move_bps_1s", "mid_move_bps_10s",
            "realized_vol_bps_10s", "spread_to_median_60s", "crossed_count_60s"} <= set(ms.names)
    assert {m.kind for m in ms} == set(KINDS)  # the default set uses every kind
    assert ms["mid_move_bps_1s"].window_s == 1.0 and ms["mid"].window_s is None


def test_schema_kind_enum_matches_the_engine_kinds():
    enum = schema("metrics")["properties"]["metrics"]["additionalProperties"]["properties"][
        "kind"]["enum"]
    assert set(enum) == set(KINDS)


def test_missing_window_for_a_windowed_kind_is_reported_at_the_metric_line():
    text = "metrics:\n  mid:\n    kind: mid\n    doc: m\n  rate_hz:\n    kind: trade_rate\n    doc: r\n"
    assert errors_of(text) == ["m.yaml:5:3: metric 'rate_hz' of kind 'trade_rate' has no "
                               "window_s; expected window_s: SECONDS for a windowed kind"]


def test_window_on_an_instantaneous_kind_is_reported_at_its_key():
    text = "metrics:\n  mid:\n    kind: mid\n    window_s: 5\n    doc: m\n"
    (err,) = errors_of(text)
    assert err.startswith("m.yaml:4:5: metric 'mid' of kind 'mid' is instantaneous")


def test_unknown_kind_is_reported_at_its_value():
    text = "metrics:\n  x:\n    kind: vwap\n    doc: d\n"
    (err,) = errors_of(text)
    assert err.startswith("m.yaml:3:11: metrics/x/kind: 'vwap' is not allowed; expected one of")


def test_unknown_property_and_bad_window_and_bad_name_are_all_reported():
    text = ("metrics:\n"
            "  a_1s:\n    kind: mid_move\n    window_s: 0\n    doc: d\n"
            "  b:\n    kind: mid\n    doc: d\n    unit: bps\n"
            "  Bad-Name:\n    kind: mid\n    doc: d\n")
    errs = errors_of(text)
    assert any(e.startswith("m.yaml:4:15: metrics/a_1s/window_s:") for e in errs), errs
    assert any(e.startswith("m.yaml:9:5: Additional properties") for e in errs), errs
    assert any(e.startswith("m.yaml:10:") and "Bad-Name" in e for e in errs), errs


def test_duplicate_metric_name_is_refused_with_both_lines():
    text = "metrics:\n  mid:\n    kind: mid\n    doc: a\n  mid:\n    kind: mid\n    doc: b\n"
    (err,) = errors_of(text)
    assert err.startswith("m.yaml:5:3: duplicate key 'mid'") and "line 2" in err


def test_same_kind_may_be_declared_with_several_windows():
    ms = parse_metric_set("metrics:\n"
                          "  mid_move_bps_1s: {kind: mid_move, window_s: 1, doc: a}\n"
                          "  mid_move_bps_10s: {kind: mid_move, window_s: 10, doc: b}\n")
    assert ms.names == ("mid_move_bps_1s", "mid_move_bps_10s")
    assert [m.window_ns for m in ms] == [1_000_000_000, 10_000_000_000]


def test_missing_file_is_a_spec_error_not_a_traceback():
    with pytest.raises(SpecErrors) as exc:
        load_metric_set("/nonexistent/metrics.yaml")
    assert "cannot read file" in str(exc.value)


def test_derived_kinds_need_an_earlier_source_and_their_own_options():
    text = ("metrics:\n"
            "  base:\n    kind: rolling_quantile\n    of: rate\n    window_s: 60\n    doc: d\n"
            "  rate:\n    kind: trade_rate\n    window_s: 10\n    quantile: 0.5\n    doc: r\n"
            "  smooth:\n    kind: ewma\n    of: rate\n    window_s: 5\n    doc: e\n"
            "  many:\n    kind: rolling_quantile\n    of: rate\n    quantile: 0.5\n"
            "    window_s: 86400\n    sample_s: 0.1\n    doc: d\n")
    errs = errors_of(text)
    assert any(e.startswith("m.yaml:4:9: metric 'base': of names 'rate', which is not "
                            "declared above it") for e in errs), errs
    assert any(e.startswith("m.yaml:2:3: metric 'base' of kind 'rolling_quantile' has no "
                            "quantile") for e in errs), errs
    assert any(e.startswith("m.yaml:10:5: metric 'rate' of kind 'trade_rate' takes no "
                            "quantile") for e in errs), errs
    assert any(e.startswith("m.yaml:12:3: metric 'smooth' of kind 'ewma' has no half_life_s")
               for e in errs), errs
    assert any(e.startswith("m.yaml:15:5: metric 'smooth' of kind 'ewma' is instantaneous")
               for e in errs), errs
    assert any(e.startswith("m.yaml:22:15: metric 'many': window_s / sample_s = 864000 samples")
               for e in errs), errs


def test_derived_options_are_read_with_their_defaults():
    ms = parse_metric_set("metrics:\n  rate:\n    kind: trade_rate\n    window_s: 10\n"
                          "    doc: r\n  base:\n    kind: rolling_quantile\n    of: rate\n"
                          "    quantile: 0.25\n    window_s: 1800\n    min_history_s: 60\n"
                          "    doc: d\n  smooth:\n    kind: ewma\n    of: base\n"
                          "    half_life_s: 1\n    doc: d\n")
    base, smooth = ms["base"], ms["smooth"]
    assert (base.of, base.quantile, base.sample_s, base.min_samples) == ("rate", 0.25, 1.0, 60)
    assert (smooth.of, smooth.half_life_s, smooth.min_samples, smooth.alpha) == ("base", 1.0, 1, 0.5)
