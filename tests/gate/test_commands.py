"""execlab scenario inject and execlab score from the command line."""

from __future__ import annotations

import json

from framework.cli import main
from tests.support import REPO

BASE = REPO / "data" / "binance-spot-ethusdt-20240808.frames.gz"


def test_inject_run_score_one_line_per_run_and_json(tmp_path, capsys):
    rec = tmp_path / "eth.frames.gz"
    assert main(["scenario", "inject", str(BASE), "--shock", "100:3", "--gap", "150:4", "--repeat", "2",
                 "--every", "100", "--garbage", "0.001", "--out", str(rec)]) == 0
    assert (tmp_path / "eth.frames.gz.labels.json").is_file()
    run = tmp_path / "run"
    assert main(["run", "--replay", str(rec), "--symbols", "ETHUSDT", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["score", str(run), str(run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "ETHUSDT: tradable" in lines[0] and "windows 4:" in lines[0]
    assert main(["score", str(run), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    eth = card["symbols"]["ETHUSDT"]
    assert [w["kind"] for w in eth["windows"]] == ["shock", "gap", "shock", "gap"]
    assert all(w["orders_inside"] == 0 and w["to_blocked_s"] <= 2.5 for w in eth["windows"])
    assert json.loads((run / "summary.json").read_text())["scorecard"] == card


def test_user_mistakes_exit_2_with_a_message(tmp_path, capsys):
    out = str(tmp_path / "x.frames.gz")
    assert main(["scenario", "inject", str(BASE), "--out", out]) == 2
    assert "nothing to inject" in capsys.readouterr().err
    assert main(["scenario", "inject", str(BASE), "--shock", "10", "--out", out]) == 2
    assert "is not AT:LEN" in capsys.readouterr().err
    assert main(["scenario", "inject", str(tmp_path / "none.gz"), "--gap", "1:1", "--out", out]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["score", str(tmp_path)]) == 2
    assert "expected a run directory" in capsys.readouterr().err
