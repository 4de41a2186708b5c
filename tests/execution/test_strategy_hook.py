"""`intents: {generator: python, class: ...}`: a user's class in a workspace sees events,
metrics, states and the decision, and its intents go through the gate like the probe's."""

import sys
import textwrap

from framework.cli import main
from framework.runtime.run import run_session
from framework.spec import workspace
from framework.spec.session import load_session
from tests.support import read_records

STRATEGY = '''
from framework.execution.strategy import Strategy
from framework.market.events import Quote, Trade

SEEN = {"events": 0, "quotes": 0, "trades": 0, "ticks": 0, "views": []}


class Recorder(Strategy):
    def on_event(self, event, view):
        SEEN["events"] += 1
        SEEN["quotes" if type(event) is Quote else "trades"] += 1
        return ()

    def on_tick(self, view):
        SEEN["ticks"] += 1
        if SEEN["ticks"] == int(self.params["ask_at_tick"]):
            SEEN["views"].append((view.symbol, dict(view.metrics), view.states, view.decision, view.open_orders))
            return [view.intent("buy", 100.0, "take", tag="rec")]
        return ()


class NotAStrategy:
    pass
'''

CONFIG = """\
session: strategy-test
doc: a user strategy from the workspace's own folder
symbols: [BTCUSDT]
source: {kind: replay, path: ../data/binance-spot-btcusdt-20240808.frames.gz}
intents:
  generator: python
  class: %s
  params: {ask_at_tick: 5}
"""


def _workspace(tmp_path, class_path):
    ws = tmp_path / "ws"
    workspace.init(ws)
    (ws / "mystrats").mkdir()
    (ws / "mystrats" / "recorder.py").write_text(textwrap.dedent(STRATEGY))
    cfg = ws / "configs" / "strategy.yaml"
    cfg.write_text(CONFIG % class_path)
    return ws, cfg


def test_a_workspace_strategy_sees_events_views_and_goes_through_the_gate(tmp_path):
    ws, cfg = _workspace(tmp_path, "mystrats.recorder:Recorder")
    sys.modules.pop("mystrats.recorder", None)
    try:
        run_session(load_session(cfg), tmp_path / "run")
        seen = sys.modules["mystrats.recorder"].SEEN
    finally:
        sys.modules.pop("mystrats.recorder", None)
        sys.modules.pop("mystrats", None)
        if str(ws) in sys.path:
            sys.path.remove(str(ws))
    records = read_records(tmp_path / "run")
    end = next(r for r in records if r["kind"] == "session_end")
    assert seen["events"] == seen["quotes"] + seen["trades"] and seen["quotes"] > 0 and seen["trades"] > 0
    assert seen["events"] <= end["events"]
    (symbol, metrics, states, decision, open_orders), = seen["views"]
    assert symbol == "BTCUSDT" and "mid" in metrics and set(states) == {"regime", "permission", "health"}
    assert set(decision) == {"eligible", "aggressiveness", "risk_budget", "rule"} and open_orders == 0
    intent = next(r for r in records if r["kind"] == "intent")
    assert intent["intent_id"] == "BTCUSDT-rec-1" and intent["decision"] == decision
    # at the fifth tick the machines still hold their cautious start states: the gate refuses
    reject = next(r for r in records if r["kind"] == "reject" and r["intent_id"] == "BTCUSDT-rec-1")
    assert reject["stage"] == "decision" and not decision["eligible"]


def test_a_class_that_cannot_be_loaded_is_a_clear_error(tmp_path, capsys, monkeypatch):
    ws, cfg = _workspace(tmp_path, "mystrats.nowhere:Recorder")
    monkeypatch.chdir(ws)
    assert main(["run", str(cfg), "--out", str(tmp_path / "r1"), "--no-progress"]) == 2
    assert "intents.class:0:0: cannot import 'mystrats.nowhere'" in capsys.readouterr().err
    cfg.write_text(CONFIG % "mystrats.recorder:NotAStrategy")
    assert main(["run", str(cfg), "--out", str(tmp_path / "r2"), "--no-progress"]) == 2
    assert "'NotAStrategy' is not a Strategy subclass" in capsys.readouterr().err
    for name in ("mystrats.recorder", "mystrats"):
        sys.modules.pop(name, None)
    if str(ws) in sys.path:
        sys.path.remove(str(ws))


def test_generator_python_needs_a_class(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("session: s\ndoc: d\nsource: {kind: replay, path: x.frames.gz}\nintents: {generator: python}\n")
    assert main(["validate", str(cfg)]) == 2
    assert "'class' is a required property" in capsys.readouterr().err
