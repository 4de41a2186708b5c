"""Hostile and unlucky spec files: non-finite numbers, YAML bombs, binary text, look-alike
characters and cascading errors. Each is refused at its file:line:col, never with a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from framework.execution.config import ExecutionConfig, IntentConfig, RiskConfig
from framework.market.synthetic import load_scenario
from framework.spec.errors import SpecErrors
from framework.spec.loader import MAX_DEPTH, load_yaml, parse_yaml
from framework.spec.machines import load_machine_set
from framework.spec.metrics import parse_metric_set
from framework.spec.session import load_session, parse_set_option
from tests.support import REPO

MACHINES_DIR = REPO / "machines"
CONFIGS_DIR = REPO / "configs"

REPO = Path(__file__).resolve().parents[2]
METRICS = ("spread_bps", "quote_age_ms")
DATA = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"

TOY = """\
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
    for: 1
  - from: WILD
    to: CALM
    after: params.wait_s
"""

DECISION = """\
table: decision
doc: Toy decisions.
reads: [toy]
rules:
  - name: ok
    doc: Always.
    when: true
    then: {eligible: true, aggressiveness: take, risk_budget: 1}
"""


def machine_errors(tmp_path, machine_text, overrides=None):
    m = tmp_path / "toy.yaml"
    m.write_text(machine_text)
    d = tmp_path / "decision.yaml"
    d.write_text(DECISION)
    with pytest.raises(SpecErrors) as info:
        load_machine_set([m], d, METRICS, overrides)
    # the decision table reads the toy machine; its "not checked" note is a consequence
    return [(e.line, e.col, e.message) for e in info.value.errors if not e.consequence]


def errors_of(text, path="spec.yaml"):
    with pytest.raises(SpecErrors) as info:
        parse_yaml(text, path)
    return info.value.errors


def cli(*args, cwd=REPO):
    # timeout: a hang detector for the bombs, not a speed assertion
    return subprocess.run([sys.executable, "-m", "framework.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def config_text(extra=""):
    text = (CONFIGS_DIR / "default.yaml").read_text().replace("../", f"{REPO}/")
    return text + extra


# --- non-finite numbers ------------------------------------------------------------------

@pytest.mark.parametrize("spelling", [".nan", ".NaN", ".NAN"])
def test_nan_is_refused_by_the_loader_wherever_it_is(spelling):
    (err,) = errors_of(f"a:\n  b: [1, {spelling}]\n")
    assert (err.line, err.col) == (2, 10)
    assert "not a number" in err.message and "expected a finite number" in err.message


@pytest.mark.parametrize(("section", "old", "new"), [
    ("risk", "max_order_notional_usd: 1000", "max_order_notional_usd: .inf"),
    ("risk", "loss_limit_usd: 200", "loss_limit_usd: -.inf"),
    ("execution", "fees: {maker_bps: 10, taker_bps: 10}", "fees: {maker_bps: 10, taker_bps: .inf}"),
    ("execution", "latency: {fixed_ms: 25,", "latency: {fixed_ms: .inf,"),
    ("intents", "period_s: 5", "period_s: .inf"),
    ("intents", "ttl_s: 20\nexecution", "ttl_s: .inf\nexecution"),
    ("execution", "tick_size: 0.01", "tick_size: .inf"),
])
def test_infinity_is_refused_by_the_section_schemas(tmp_path, section, old, new):
    text = config_text()
    assert old in text
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecErrors) as info:
        load_session(cfg)
    errors = info.value.errors
    line = next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if ".inf" in t)
    assert {e.line for e in errors} == {line}
    assert any("is not finite; expected a finite number" in e.message for e in errors)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_section_configs_built_in_code_refuse_non_finite_numbers(value):
    with pytest.raises(SpecErrors):
        RiskConfig.from_dict({"max_order_notional_usd": value})
    with pytest.raises(SpecErrors):
        ExecutionConfig.from_dict({"passive": {"ttl_s": value}})
    with pytest.raises(SpecErrors):
        IntentConfig.from_dict({"probe": {"period_s": value}})


@pytest.mark.parametrize("field", ["tick_size: 0.01", "latency: {fixed_ms: 25", "passive: {ttl_s: 20}",
                                   "fees: {maker_bps: 10, taker_bps: 10}"])
def test_negative_execution_numbers_are_refused(tmp_path, field):
    text = config_text()
    cfg = tmp_path / "c.yaml"
    bad = field.replace("0.01", "-0.01").replace("25", "-25").replace("20", "-20").replace("taker_bps: 10", "taker_bps: -1")
    cfg.write_text(text.replace(field, bad, 1))
    with pytest.raises(SpecErrors, match="expected a value within range"):
        load_session(cfg)


def test_metric_window_must_be_finite_and_positive():
    base = "metrics:\n  r:\n    kind: quote_rate\n    doc: Rate.\n    window_s: {}\n"
    for bad in (".inf", "0", "-5"):
        with pytest.raises(SpecErrors) as info:
            parse_metric_set(base.format(bad), "m.yaml")
        assert info.value.errors[0].line == 5
    assert parse_metric_set(base.format("10"), "m.yaml").names == ("r",)


@pytest.mark.parametrize("bad", ["duration_s: .inf", "duration_s: .nan", "duration_s: -1"])
def test_scenario_numbers_must_be_finite_and_in_range(tmp_path, bad):
    text = (CONFIGS_DIR / "scenarios" / "calm.yaml").read_text()
    line_text = next(t for t in text.splitlines() if "duration_s:" in t)
    indent = line_text[: len(line_text) - len(line_text.lstrip())]
    p = tmp_path / "s.yaml"
    p.write_text(text.replace(line_text, indent + bad, 1))
    with pytest.raises(SpecErrors) as info:
        load_scenario(p)
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.strip() == bad)
    assert {e.line for e in info.value.errors} == {line}


def test_override_nan_from_a_config_is_refused_at_its_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text("overrides:\n  permission.cooldown_s: .nan\n"))
    with pytest.raises(SpecErrors) as info:
        load_session(cfg)
    (err,) = info.value.errors
    assert err.line == len(cfg.read_text().splitlines()) and err.col == 26


@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf", "nan", "1e999", "&a [*a]"])
def test_override_from_the_command_line_must_be_a_finite_number(raw):
    with pytest.raises(SpecErrors, match="expected a finite number or true/false"):
        parse_set_option(f"permission.cooldown_s={raw}")
    assert parse_set_option("permission.cooldown_s=12.5") == ("permission", "cooldown_s", 12.5)


def test_non_finite_override_passed_in_code_is_refused(tmp_path):
    errs = machine_errors(tmp_path, TOY, {"toy": {"wait_s": float("nan")}})
    assert any("toy.wait_s = nan is not finite" in m for _, _, m in errs)


def test_nan_param_value_is_refused(tmp_path):
    errs = machine_errors(tmp_path, TOY.replace("value: 5,", "value: .nan,"))
    assert errs[0][:2] == (5, 21)


@pytest.mark.parametrize(("old", "new", "line"), [
    ("    for: 1\n", "    for: -5\n", 15),
    ("    for: 1\n", "    for: 0 / 0\n", 15),
    ("after: params.wait_s", "after: params.wait_s - params.wide_bps", 18),
])
def test_constant_timer_that_is_negative_or_nan_is_a_load_error(tmp_path, old, new, line):
    errs = machine_errors(tmp_path, TOY.replace(old, new))
    assert [e[0] for e in errs] == [line]
    assert "expected a duration of 0 seconds or more" in errs[0][2]


@pytest.mark.parametrize("name", ["wait_s", "wait_ms", "rate_hz", "seen_count"])
def test_duration_rate_and_count_params_cannot_be_negative(tmp_path, name):
    text = TOY.replace("wait_s: {value: 2,", f"{name}: {{value: -2,").replace("params.wait_s", "2")
    errs = machine_errors(tmp_path, text)
    assert errs == [(6, 19 + len(name) - 6, f"toy.{name} = -2 is negative; expected 0 or more (a duration, rate or count)")]
    assert not any("negative" in m for _, _, m in machine_errors(tmp_path, text.replace(name, "delta_bps") + "x: 1\n"))


def test_zero_timer_is_allowed(tmp_path):
    m = tmp_path / "toy.yaml"
    m.write_text(TOY.replace("    for: 1\n", "    for: 0\n"))
    d = tmp_path / "decision.yaml"
    d.write_text(DECISION)
    load_machine_set([m], d, METRICS)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_refuses_nan_risk_limit_and_nan_cooldown(tmp_path, command):
    cfg = tmp_path / "nan.yaml"
    text = config_text("overrides:\n  permission.cooldown_s: .nan\n").replace(
        "max_order_notional_usd: 1000", "max_order_notional_usd: .nan")
    cfg.write_text(text)
    proc = cli(command, cfg)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = text.splitlines()
    risk_line = next(i for i, t in enumerate(lines, 1) if "max_order_notional_usd" in t)
    assert f"{cfg}:{risk_line}:27: '.nan' is not a number" in proc.stderr
    assert f"{cfg}:{len(lines)}:26: '.nan' is not a number" in proc.stderr
    assert not (tmp_path / "runs").exists()


# --- YAML bombs ------------------------------------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(9))
BOMBS = {
    "billion_laughs": (LAUGHS, "expands to more than"),
    "self_alias_sequence": ("a: &a [1, *a]\n", "refers to a node that contains it"),
    "self_alias_mapping": ("a: &a\n  b: *a\n", "refers to a node that contains it"),
    "nested_brackets": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than"),
    "nested_flow_mappings": ("a: " + "{k: " * 800 + "1" + "}" * 800 + "\n", "nesting deeper than"),
    "nested_block_mappings": ("".join(" " * i + f"k{i}:\n" for i in range(300)) + " " * 300 + "v\n",
                              "nesting deeper than"),
    "many_aliases": ("a: &a 1\nb: [" + ", ".join(["*a"] * 1000) + "]\n", "aliases"),
    "huge_document": ("a: [" + "1, " * 200_000 + "1]\n", "larger than a spec can be"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_yaml_bombs_are_refused_at_a_position(name):
    text, what = BOMBS[name]
    (err,) = errors_of(text)
    assert what in err.message
    assert err.line >= 1 and err.col >= 1


def test_the_bound_is_reported_where_it_is_crossed():
    (err,) = errors_of("a: " + "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10) + "\n")
    assert err.line == 1 and 3 < err.col <= 3 + MAX_DEPTH + 2
    (err,) = errors_of("ok: 1\nbad: &a {x: [*a]}\n")
    assert (err.line, err.col) == (2, 14)


@pytest.mark.parametrize(("text", "line", "col"), [("a:\n  &x : 1\n", 2, 3), ("a:\n  ON: {doc: x}\n", 2, 3),
                                                   ("a:\n  ? \n  : 1\n", 2, 4), ("a: {1: b}\n", 1, 5)])
def test_a_key_that_is_not_a_name_is_refused_at_its_position(text, line, col):
    (err,) = errors_of(text)
    assert (err.line, err.col) == (line, col) and "not a name" in err.message


def test_shared_aliases_within_bounds_still_load():
    doc = parse_yaml("base: &b {x: 1, y: 2}\nuse: [*b, *b]\n", "s.yaml")
    assert doc.data["use"] == [{"x": 1, "y": 2}] * 2


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("name", ["billion_laughs", "self_alias_mapping", "nested_brackets", "nested_flow_mappings"])
def test_cli_refuses_bombs_with_exit_2(tmp_path, command, name):
    text, what = BOMBS[name]
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(config_text().replace("output:", "bomb:\n  " + text.replace("\n", "\n  ").rstrip() + "\noutput:"))
    proc = cli(command, cfg)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{cfg}:" in proc.stderr and what in proc.stderr


# --- text that is not what it seems --------------------------------------------------------

def test_latin1_file_is_reported_at_the_first_bad_byte(tmp_path):
    p = tmp_path / "l.yaml"
    p.write_bytes("a: 1\ndoc: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecErrors) as info:
        load_yaml(p)
    (err,) = info.value.errors
    assert (err.line, err.col) == (2, 9) and "0xe9" in err.message


def test_binary_file_is_reported_at_the_first_bad_byte(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_bytes(b"a: 1\nb: 2\n  \x89PNG\r\n\x1a\n\x00")
    with pytest.raises(SpecErrors) as info:
        load_yaml(p)
    (err,) = info.value.errors
    assert (err.line, err.col) == (3, 3)


def test_control_character_in_utf8_text_is_reported_at_its_position():
    (err,) = errors_of("a: 1\nb: 'x\x00y'\n")
    assert (err.line, err.col) == (2, 6)


def test_file_larger_than_a_spec_is_refused_without_reading_it_all(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("a: 1\n" * 200_000)
    with pytest.raises(SpecErrors, match="larger than a spec can be"):
        load_yaml(p)


@pytest.mark.parametrize("text", ["ｍetrics.spread_bps > params.wide_bps",
                                  "metrics.spread_bps > params.ｗide_bps",
                                  "metrics.spread_bps > params.wide_bps and 'ＣALM' == 'CALM'"])
def test_non_ascii_in_an_expression_is_refused_at_its_column(tmp_path, text):
    errs = machine_errors(tmp_path, TOY.replace("metrics.spread_bps > params.wide_bps", text))
    (line, col, message) = errs[0]
    first = next(i for i, ch in enumerate(text) if ord(ch) > 127)
    assert (line, col) == (14, 11 + first)
    assert "is not ASCII" in message


# --- one error, not a cascade -------------------------------------------------------------

def test_misspelt_metric_in_one_machine_is_the_first_error_and_not_a_cascade(tmp_path):
    regime = tmp_path / "regime.yaml"
    regime.write_text((MACHINES_DIR / "regime.yaml").read_text().replace("metrics.spread_bps", "metrics.sprad_bps", 1))
    metrics = parse_metric_set((MACHINES_DIR / "metrics.yaml").read_text())
    with pytest.raises(SpecErrors) as info:
        load_machine_set([regime, MACHINES_DIR / "permission.yaml", MACHINES_DIR / "health.yaml"],
                         MACHINES_DIR / "decision.yaml", metrics.names)
    errors = info.value.errors
    assert errors[0].path == str(regime) and "metrics.sprad_bps" in errors[0].message
    assert "expected metrics.spread_bps?" in errors[0].message
    roots = [e for e in errors if not e.consequence]
    assert {e.path for e in roots} == {str(regime)}
    consequences = errors[len(roots):]
    assert all(e.consequence and "reads 'regime'" in e.message for e in consequences)
    assert len({e.path for e in consequences}) == len(consequences) <= 3


def test_cli_prints_the_root_cause_first(tmp_path):
    regime = tmp_path / "regime.yaml"
    regime.write_text((MACHINES_DIR / "regime.yaml").read_text().replace("metrics.spread_bps", "metrics.sprad_bps", 1))
    proc = cli("validate", regime, MACHINES_DIR / "permission.yaml")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{regime}:") and "sprad_bps" in lines[0]
    assert len(lines) <= 6, proc.stderr


def test_shipped_specs_still_load():
    load_session(CONFIGS_DIR / "default.yaml")
    for p in sorted((CONFIGS_DIR / "scenarios").glob("*.yaml")):
        load_scenario(p)


def test_a_spec_is_read_once_so_what_is_validated_is_what_is_snapshotted(tmp_path):
    session = load_session(CONFIGS_DIR / "default.yaml")
    assert session.snapshot["specs"]["regime"] == (MACHINES_DIR / "regime.yaml").read_text()
    assert session.snapshot["config"] == (CONFIGS_DIR / "default.yaml").read_text()


@pytest.mark.parametrize(("old", "new"), [
    ("    for: 1\n", "    for: 1.0e+299\n"),
    ("    for: 1\n", "    for: 2e9\n"),
    ("    after: params.wait_s\n", "    after: params.wait_s * 1.0e+299\n"),
    ("    after: params.wait_s\n", "    after: params.wait_s + entries('WILD', 1.0e+299)\n"),
])
def test_a_timer_too_long_to_count_in_nanoseconds_is_refused(tmp_path, old, new):
    errs = machine_errors(tmp_path, TOY.replace(old, new))
    assert len(errs) == 1 and "at most 1e+09" in errs[0][2]


@pytest.mark.parametrize(("field", "value"), [("order_window_s", "1.0e+300"), ("stale_quote_ms", "1.0e+300"),
                                              ("kill_switch_reset_s", "1.0e+300")])
def test_risk_durations_are_bounded(field, value):
    with pytest.raises(SpecErrors, match="is greater than the maximum"):
        RiskConfig.from_dict({field: float(value)})


def test_scenario_start_and_rates_are_bounded(tmp_path):
    text = (CONFIGS_DIR / "scenarios" / "calm.yaml").read_text()
    p = tmp_path / "s.yaml"
    p.write_text(text.replace("symbol:", "start_ns: 99999999999999999999999\nsymbol:", 1))
    with pytest.raises(SpecErrors, match="start_ns"):
        load_scenario(p)


@pytest.mark.parametrize("value", ["[regime]", "{a: 1}", "12", "null"])
def test_validate_a_machine_whose_name_is_not_text(tmp_path, value):
    p = tmp_path / "m.yaml"
    p.write_text(TOY.replace("machine: toy", f"machine: {value}"))
    proc = cli("validate", p)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{p}:1:10:" in proc.stderr


def test_a_fifo_or_device_is_refused_without_reading_it(tmp_path):
    import os

    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for path in (fifo, "/dev/zero"):
        with pytest.raises(SpecErrors, match="not a regular file"):
            load_yaml(path)
