"""execlab calibrate: per-symbol params proposed from a recording, and their effect."""

from __future__ import annotations

import yaml

from framework.cli import main
from framework.spec.session import load_session
from tests.support import REPO

REC = REPO / "data" / "binance-usdm-ethusdt-20240808.frames.gz"


def test_overlay_names_its_quantiles_and_loads_as_per_symbol_overrides(tmp_path, capsys):
    out = tmp_path / "overlay.yaml"
    assert main(["calibrate", str(REC), "--symbols", "ETHUSDT", "--out", str(out)]) == 0
    text = out.read_text()
    assert "p95 of trade_rate_hz_10s / trade_rate_base_hz" in text and REC.name in text
    overlay = yaml.safe_load(text)
    (entry,) = overlay["symbols"]
    assert entry["symbol"] == "ETHUSDT"
    assert set(entry["overrides"]) == {"regime.fast_rate_x", "regime.fast_move_x", "regime.fast_vol_x",
                                       "regime.trend_x"}
    assert all(v > 1 for v in entry["overrides"].values())  # a quantile of a ratio to a median
    # the overlay merged into a session config is a valid config
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["symbols"] = overlay["symbols"]
    cfg = tmp_path / "calibrated.yaml"
    cfg.write_text(yaml.safe_dump(data))
    s = load_session(cfg)
    regime = next(m for m in s.machine_set_for("ETHUSDT").machines if m.name == "regime")
    assert regime.params["fast_rate_x"].value == entry["overrides"]["regime.fast_rate_x"]
    shown = capsys.readouterr().out
    assert "ETHUSDT binance-usdm-ethusdt-20240808.frames.gz: share of time in state, current -> proposed" in shown
    assert "regime" in shown and "NORMAL" in shown and "->" in shown


def test_nothing_to_calibrate_exits_2(tmp_path, capsys):
    assert main(["calibrate", str(tmp_path / "none.frames.gz")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["calibrate", str(REC), "--symbols", "DOGEUSDT", "--no-compare"]) == 2
    assert "not enough data" in capsys.readouterr().err
