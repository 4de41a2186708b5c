"""`execlab runs` and `execlab compare` on real runs."""

import json
import shutil

from framework.cli import main


def _folder(tmp_path, shock_run, replay_run):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(shock_run, runs / "a-shock")
    shutil.copytree(replay_run, runs / "b-default")
    killed = runs / "c-killed"
    shutil.copytree(replay_run, killed)
    (killed / "summary.json").unlink()  # what a killed run leaves
    (runs / "notes").mkdir()  # not a run: ignored
    return runs


def test_runs_lists_each_run_with_its_figures(tmp_path, shock_run, replay_run, capsys):
    runs = _folder(tmp_path, shock_run, replay_run)
    assert main(["runs", str(runs), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["a-shock", "b-default", "c-killed"]
    summary = json.loads((replay_run / "summary.json").read_text())
    b = rows[1]
    assert b["session"] == "default" and b["events"] == summary["events"]
    assert b["orders"] == summary["symbols"]["BTCUSDT"]["execution"]["all"]["orders"]
    assert b["net_pnl_usd"] == round(summary["symbols"]["BTCUSDT"]["execution"]["net_pnl_usd"], 4)
    assert rows[2]["complete"] is False
    assert main(["runs", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "incomplete (no summary.json)" in text and "3 run(s)" in text


def test_runs_defaults_to_the_workspace_runs_folder(tmp_path, monkeypatch, capsys):
    assert main(["init", str(tmp_path / "ws")]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "ws" / "machines")
    assert main(["runs"]) == 0
    assert f"no runs in {tmp_path / 'ws' / 'runs'} yet" in capsys.readouterr().out


def test_compare_puts_runs_side_by_side(tmp_path, shock_run, replay_run, capsys):
    assert main(["compare", str(shock_run), str(replay_run), "--json"]) == 0
    rows = {r["figure"]: r["values"] for r in json.loads(capsys.readouterr().out)["rows"]}
    shock = json.loads((shock_run / "summary.json").read_text())
    default = json.loads((replay_run / "summary.json").read_text())
    assert rows["events"] == [shock["events"], default["events"]]
    assert rows["BTCUSDT regime transitions"] == [shock["symbols"]["BTCUSDT"]["transitions"]["regime"],
                                                 default["symbols"]["BTCUSDT"]["transitions"]["regime"]]
    assert any(k.startswith("BTCUSDT markout") for k in rows)
    assert main(["compare", str(shock_run), str(replay_run)]) == 0
    assert "fill ratio" in capsys.readouterr().out


def test_compare_needs_finished_runs(tmp_path, replay_run, capsys):
    assert main(["compare", str(replay_run)]) == 2
    assert "expected two or more" in capsys.readouterr().err
    assert main(["compare", str(replay_run), str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err
