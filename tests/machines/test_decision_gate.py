"""The decision table recomputes only when one of its inputs changed: the same outputs, event by
event, as a table built afresh (which always computes) on the same inputs."""

from hypothesis import given, settings
from hypothesis import strategies as st

from framework.machines.decision import DecisionTable
from framework.spec.machines import load_machine_set
from framework.spec.metrics import load_metric_set
from framework.spec.session import MACHINE_FILES, MACHINES_DIR

MS = load_machine_set([MACHINES_DIR / f"{m}.yaml" for m in MACHINE_FILES], MACHINES_DIR / "decision.yaml",
                      load_metric_set(MACHINES_DIR / "metrics.yaml").names)
STATES = {m.name: sorted(m.states) for m in MS.machines}

change = st.one_of(
    st.tuples(st.sampled_from(sorted(STATES)), st.just("state"), st.sampled_from(sorted({s for v in STATES.values() for s in v}))),
    st.tuples(st.just("risk"), st.sampled_from(["kill_switch", "stale"]), st.booleans()),
)


def _namespaces():
    ns = {name: {"state": states[0]} for name, states in STATES.items()}
    ns["risk"] = {"kill_switch": False, "stale": False}
    return ns


@settings(max_examples=150, deadline=None)
@given(changes=st.lists(st.lists(change, max_size=3), min_size=1, max_size=40))
def test_skipping_unchanged_inputs_gives_the_outputs_of_a_fresh_table(changes):
    ns = _namespaces()
    table = DecisionTable(MS.decision, ns)
    table.evaluate()
    for step in changes:
        before = dict(table.out)
        for space, key, value in step:
            if space in STATES and value not in STATES[space]:
                continue
            ns[space][key] = value
        changed = table.evaluate()
        fresh = DecisionTable(MS.decision, {k: dict(v) for k, v in ns.items()})
        fresh.evaluate()
        assert table.out == fresh.out
        assert changed == (before["rule"] != table.out["rule"] or before["risk_budget"] != table.out["risk_budget"])

