"""Config sections: defaults, schema errors with positions."""

import pytest

from framework.execution import ExecutionConfig, IntentConfig, RiskConfig
from framework.spec.errors import SpecErrors
from framework.spec.loader import parse_yaml
from framework.spec.schema import schema


def test_defaults():
    c = ExecutionConfig.from_dict({})
    assert c.markout_horizons_s == (1.0, 5.0, 30.0) and c.taker.impact == "partial"
    assert c.passive.cancel_ahead_fraction == 0.0 and c.fees.taker_bps == 10.0
    r = RiskConfig.from_dict(None)
    assert r.kill_switch_on == ("loss_limit", "max_drawdown") and r.kill_switch_reset_s is None
    assert IntentConfig.from_dict({}).generator == "probe"


@pytest.mark.parametrize("name,cls", [("execution", ExecutionConfig), ("risk", RiskConfig), ("intents", IntentConfig)])
def test_schema_defaults_match_the_dataclass_defaults(name, cls):
    def defaults(s):
        return {k: (defaults(v) if v.get("type") == "object" else v.get("default"))
                for k, v in s.get("properties", {}).items() if "default" in v or v.get("properties")}
    d = {k: v for k, v in defaults(schema(name)).items() if k != "file"}
    built = cls.from_dict(d)
    assert built == cls.from_dict({})


def test_errors_in_a_session_file_carry_line_and_column():
    doc = parse_yaml("execution:\n  taker:\n    impact: sweep\n  fees:\n    maker_bp: 1\n", "s.yaml")
    with pytest.raises(SpecErrors) as exc:
        ExecutionConfig.from_document(doc)
    got = sorted((e.line, e.col) for e in exc.value.errors)
    assert got == [(3, 13), (5, 5)]


def test_file_generator_needs_a_path():
    with pytest.raises(SpecErrors):
        IntentConfig.from_dict({"generator": "file"})
