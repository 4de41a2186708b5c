"""Machines on event time: timers, hysteresis, priority, and the transition record."""

import pytest

from framework.machines.decision import DecisionTable
from framework.machines.machine import StateMachine
from framework.spec.machines import load_machine_set
from framework.spec.session import MACHINES_DIR

S = 1_000_000_000
METRICS = ("spread_bps", "quote_age_ms")

GATE = """\
machine: gate
doc: A permission-like gate.
reads: [metrics]
params:
  wide_bps: {value: 5, doc: Wide.}
  cooldown_s: {value: 10, doc: Base cooldown.}
  cooldown_max_s: {value: 35, doc: Cap.}
  window_s: {value: 100, doc: Escalation window.}
  calm_s: {value: 3, doc: Calm must hold this long.}
initial: OPEN
states:
  OPEN: {doc: Open.}
  BLOCKED: {doc: Blocked.}
  COOLDOWN: {doc: Cooling down.}
  HALF: {doc: Half open.}
transitions:
  - from: [OPEN, COOLDOWN, HALF]
    to: BLOCKED
    when: metrics.spread_bps > params.wide_bps
  - from: BLOCKED
    to: COOLDOWN
    when: metrics.spread_bps <= params.wide_bps
  - from: COOLDOWN
    to: HALF
    after: min(params.cooldown_s * 2 ** max(entries('BLOCKED', params.window_s) - 1, 0), params.cooldown_max_s)
  - from: HALF
    to: OPEN
    when: metrics.quote_age_ms < 100
    for: params.calm_s
  - from: HALF
    to: COOLDOWN
    when: metrics.spread_bps > 3
"""

DECISION = """\
table: decision
doc: d
reads: [gate]
rules:
  - {name: open, doc: o, when: "gate.state == 'OPEN'", then: {eligible: true, aggressiveness: take, risk_budget: 1}}
  - {name: rest, doc: r, when: true, then: {eligible: false, aggressiveness: none, risk_budget: 0}}
"""


@pytest.fixture
def gate(tmp_path):
    (tmp_path / "gate.yaml").write_text(GATE)
    (tmp_path / "decision.yaml").write_text(DECISION)
    ms = load_machine_set([tmp_path / "gate.yaml"], tmp_path / "decision.yaml", METRICS)
    metrics = {"spread_bps": 1.0, "quote_age_ms": 10.0}
    records = []
    m = StateMachine(ms.machines[0], "BTCUSDT", {"metrics": metrics}, records.append)
    return m, metrics, records


def run_ticks(m, start_s, end_s, step_s=0.1):
    """Evaluate on clock ticks only (no market events): how timers expire in a quiet market."""
    t = start_s
    while t <= end_s + 1e-9:
        m.evaluate(round(t * S))
        t += step_s


def test_cooldown_expires_on_ticks_with_no_market_events(gate):
    m, metrics, records = gate
    m.evaluate(0)
    metrics["spread_bps"] = 9
    m.evaluate(1 * S)
    metrics["spread_bps"] = 1
    m.evaluate(2 * S)
    assert m.state == "COOLDOWN"
    run_ticks(m, 2.1, 11.9)  # the quiet market: only ticks
    assert m.state == "COOLDOWN"
    m.evaluate(12 * S)  # 10 s of event time after entering COOLDOWN at 2 s
    assert m.state == "HALF"
    assert records[-1]["ts_ns"] == 12 * S


def test_cooldown_escalates_when_instability_repeats(gate):
    m, metrics, records = gate
    m.evaluate(0)
    durations = []
    t = 0
    for _ in range(4):
        metrics["spread_bps"] = 9
        t += S
        m.evaluate(t)
        metrics["spread_bps"] = 1
        t += S
        m.evaluate(t)
        entered = t
        while m.state == "COOLDOWN":
            t += S // 10
            m.evaluate(t)
        durations.append((t - entered) / S)
    assert durations == pytest.approx([10, 20, 35, 35])  # doubled, then capped


def test_for_resets_when_the_guard_breaks(gate):
    m, metrics, records = gate
    m.evaluate(0)
    metrics["spread_bps"] = 9
    m.evaluate(S)
    metrics["spread_bps"] = 1
    m.evaluate(2 * S)
    run_ticks(m, 2.1, 12)
    assert m.state == "HALF"
    entered = 12
    metrics["quote_age_ms"] = 50
    run_ticks(m, entered + 0.1, entered + 2.5)  # held 2.4 s of the 3 s needed
    metrics["quote_age_ms"] = 5000  # rule 4's guard breaks once; nothing else holds
    m.evaluate(round((entered + 2.6) * S))
    assert m.state == "HALF"
    metrics["quote_age_ms"] = 50
    run_ticks(m, entered + 2.7, entered + 5.6)  # 2.9 s since the guard came back: not yet
    assert m.state == "HALF"
    run_ticks(m, entered + 5.7, entered + 5.8)
    assert m.state == "OPEN"
    assert records[-1]["inputs"]["held_s"] == pytest.approx(3.0, abs=0.11)


def test_priority_is_document_order_and_one_transition_per_evaluation(gate):
    m, metrics, records = gate
    m.evaluate(0)
    metrics["spread_bps"] = 9
    m.evaluate(S)
    metrics["spread_bps"] = 1
    m.evaluate(2 * S)
    run_ticks(m, 2.1, 12)
    assert m.state == "HALF"
    # Both rule 4 (after holding) and rule 5 hold; rule 1 too if the spread widens: rule 1 wins.
    metrics["spread_bps"] = 9
    metrics["quote_age_ms"] = 50
    n = len(records)
    m.evaluate(13 * S)
    assert m.state == "BLOCKED" and records[-1]["rule"] == 1
    assert len(records) == n + 1  # one transition per evaluation, even though rule 2 now holds
    metrics["spread_bps"] = 1
    m.evaluate(14 * S)
    assert m.state == "COOLDOWN"


def test_transition_record_contents(gate):
    m, metrics, records = gate
    m.evaluate(0)
    metrics["spread_bps"] = 7.5
    m.evaluate(5 * S)
    (rec,) = records
    assert rec == {
        "ts_ns": 5 * S,
        "symbol": "BTCUSDT",
        "kind": "transition",
        "machine": "gate",
        "from": "OPEN",
        "to": "BLOCKED",
        "rule": 1,
        "guard": "when metrics.spread_bps > params.wide_bps",
        "inputs": {"metrics.spread_bps": 7.5},
        "params": {"wide_bps": 5},
    }


def test_transitions_library_holds_the_same_state(gate):
    m, metrics, records = gate
    m.evaluate(0)
    metrics["spread_bps"] = 9
    m.evaluate(S)
    assert m._model.state == m.state == "BLOCKED"


def test_shipped_machines_shock_then_calm(tmp_path):
    """The default specs: a shock blocks everything; calm goes through cooldown and probation."""
    from framework.spec.metrics import load_metric_set

    metric_set = load_metric_set(MACHINES_DIR / "metrics.yaml")
    ms = load_machine_set([MACHINES_DIR / f"{n}.yaml" for n in ("regime", "permission", "health")],
                          MACHINES_DIR / "decision.yaml", metric_set.names)
    metrics = {n: 0.0 for n in metric_set.names}
    metrics.update(spread_bps=0.01, quote_age_ms=20.0, spread_to_median_60s=1.0)
    metrics.update({m.name: float("nan") for m in metric_set.book})  # no depth: no book to read
    risk = {"kill_switch": False, "stale": False, "position_notional_usd": 0.0, "pnl_usd": 0.0,
            "drawdown_usd": 0.0, "orders_in_window": 0}
    ns = {"metrics": metrics, "risk": risk}
    records = []
    machines = [StateMachine(spec, "BTCUSDT", ns, records.append) for spec in ms.machines]
    decision = DecisionTable(ms.decision, ns)
    seen = []

    def step(t):
        for mm in machines:
            mm.evaluate(t)
        decision.evaluate()
        seen.append((ns["permission"]["state"], ns["decision"]["aggressiveness"]))

    t = 0
    for _ in range(3000):  # 300 s of calm
        t += S // 10
        step(t)
    assert ns["permission"]["state"] == "ALLOWED" and ns["decision"]["aggressiveness"] == "take"
    metrics["spread_bps"] = 10.0  # liquidity shock
    t += S // 10
    step(t)
    assert (ns["regime"]["state"], ns["permission"]["state"], ns["health"]["state"]) == ("UNSTABLE", "BLOCKED", "RED")
    assert ns["decision"]["eligible"] is False
    metrics["spread_bps"] = 0.01
    path = []
    for _ in range(3000):
        t += S // 10
        step(t)
        if not path or path[-1] != ns["permission"]["state"]:
            path.append(ns["permission"]["state"])
    assert path == ["BLOCKED", "COOLDOWN", "PROBATION", "ALLOWED"]
    # While blocked or cooling down the decision never allowed an order.
    assert all(a == "none" for p, a in seen if p in ("BLOCKED", "COOLDOWN"))
    risk["kill_switch"] = True
    t += S // 10
    step(t)
    assert ns["permission"]["state"] == "BLOCKED" and ns["decision"]["rule"] == "kill_switch"
