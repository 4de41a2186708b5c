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


def test_refused_intents_get_counterfactual_markouts_by_rule():
    """A buy refused at t: filled at the ask of the first sample at or after t, marked at the
    mid of the first sample at or after each horizon; the sent orders' own markouts beside it."""
    from framework.audit.analysis import facts
    from framework.audit.score import score_facts

    s, t0 = 1_000_000_000, 1_700_000_000_000_000_000
    mids = {0: 100.0, 1: 100.5, 2: 101.0, 5: 99.0, 6: 99.0}
    records = [{"kind": "session_start", "ts_ns": t0, "symbol": "", "symbols": ["X"],
                "initial": {"X": {"permission": "BLOCKED"}}, "decision": {"X": {"eligible": False}}}]
    records += [{"kind": "metrics", "ts_ns": t0 + k * s, "symbol": "X", "values": {"mid": m, "spread": 0.02}}
                for k, m in sorted(mids.items())]
    records += [{"kind": "intent", "ts_ns": t0 + s // 2, "symbol": "X", "intent_id": "i1", "side": "buy"},
                {"kind": "reject", "ts_ns": t0 + s // 2, "symbol": "X", "intent_id": "i1", "stage": "decision",
                 "rule": "not_permitted"},
                {"kind": "order_result", "ts_ns": t0 + 6 * s, "symbol": "X", "order_id": "o1",
                 "markout_bps": {"1s": 2.0, "5s": -1.0}},
                {"kind": "session_end", "ts_ns": t0 + 6 * s, "symbol": ""}]
    got = score_facts(facts(records))["symbols"]["X"]["markouts"]
    fill = 100.5 + 0.01  # the ask of the sample at t0 + 1 s
    assert got["refused:not_permitted"]["markout_bps"] == {
        "1s": round((101.0 - fill) / fill * 1e4, 3), "5s": round((99.0 - fill) / fill * 1e4, 3)}
    assert got["sent"] == {"n": 1, "markout_bps": {"1s": 2.0, "5s": -1.0}}
