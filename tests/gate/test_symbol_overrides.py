"""Per-symbol overrides in session configs: `symbols:` entries with their own `overrides`."""

from __future__ import annotations

import pytest
import yaml

from framework.cli import main
from framework.runtime.run import run_session
from framework.spec.errors import SpecErrors
from framework.spec.session import load_session
from tests.support import REPO, read_records

ETH = REPO / "data" / "binance-usdm-ethusdt-20240808.frames.gz"


def config(tmp_path, symbols, **extra) -> str:
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["symbols"] = symbols
    data["source"]["path"] = str(ETH)
    data["output"] = {"dir": str(tmp_path / "runs")}
    data.update(extra)
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def param(session, symbol, machine, name):
    return next(m for m in session.machine_set_for(symbol).machines if m.name == machine).params[name].value


def test_a_symbol_entry_overrides_on_top_of_the_session_wide_overrides(tmp_path):
    path = config(tmp_path, [{"symbol": "BTCUSDT", "overrides": {"regime.fast_rate_x": 9}}, "ETHUSDT"],
                  overrides={"regime.fast_rate_x": 5, "regime.trend_x": 3})
    s = load_session(path)
    assert s.symbols == ["BTCUSDT", "ETHUSDT"]
    assert param(s, "BTCUSDT", "regime", "fast_rate_x") == 9
    assert param(s, "BTCUSDT", "regime", "trend_x") == 3  # the session-wide override still applies
    assert param(s, "ETHUSDT", "regime", "fast_rate_x") == 5


def test_a_replay_runs_the_symbols_own_params(tmp_path):
    path = config(tmp_path, [{"symbol": "ETHUSDT", "overrides": {"regime.unstable_spread_bps": 0.0001}}])
    run_session(load_session(path), tmp_path / "run")
    unstable = [r for r in read_records(tmp_path / "run")
                if r["kind"] == "transition" and r["machine"] == "regime" and r["to"] == "UNSTABLE"]
    assert unstable and unstable[0]["params"]["unstable_spread_bps"] == 0.0001


@pytest.mark.parametrize("overrides, needle", [
    ({"regim.fast_rate_x": 2}, "no machine or table named 'regim'"),
    ({"regime.fast_rate": 2}, "override of a param that does not exist: 'regime.fast_rate'"),
])
def test_unknown_machine_or_param_is_reported_at_its_line_and_exits_2(tmp_path, capsys, overrides, needle):
    path = config(tmp_path, ["BTCUSDT", {"symbol": "ETHUSDT", "overrides": overrides}])
    with pytest.raises(SpecErrors) as exc:
        load_session(path)
    (err,) = exc.value.errors
    key = next(iter(overrides))
    lines = open(path).read().splitlines()
    assert err.path == path and key in lines[err.line - 1] and needle in err.message
    assert main(["run", path]) == 2
    assert needle in capsys.readouterr().err


def test_a_symbol_listed_twice_is_refused(tmp_path):
    path = config(tmp_path, ["ETHUSDT", {"symbol": "ETHUSDT", "overrides": {"regime.trend_x": 3}}])
    with pytest.raises(SpecErrors, match="listed twice"):
        load_session(path)
