"""The example strategy (examples/strategies/imbalance.py) through the whole gate."""

from framework.audit.verify import verify_run
from framework.runtime.run import run_session
from framework.spec.session import load_session
from tests.support import REPO, read_records


def test_the_example_strategy_trades_through_the_gate_and_verifies(tmp_path):
    session = load_session(REPO / "examples" / "imbalance.yaml")
    result = run_session(session, tmp_path / "run")
    records = read_records(tmp_path / "run")
    intents = [r for r in records if r["kind"] == "intent"]
    orders = [r for r in records if r["kind"] == "order"]
    assert intents and orders
    assert all(r["intent_id"].startswith("BTCUSDT-imbalance-") for r in intents)
    # the strategy only asks when the decision allows it, so nothing it asks is refused there
    assert not [r for r in records if r["kind"] == "reject" and r.get("stage") == "decision"]
    # each order is the strategy's side, sized by the decision's risk budget
    by_id = {r["intent_id"]: r for r in intents}
    for o in orders:
        i = by_id[o["intent_id"]]
        assert o["side"] == i["side"]
        assert o["notional_usd"] == i["notional_usd"] * i["decision"]["risk_budget"]
    assert result.summary["wall"]["path"] == "events"  # a strategy sees every event
    assert verify_run(tmp_path / "run").identical
