"""The gate skips an evaluation only where it would repeat the last one.

Every test runs a gated machine and the same machine evaluating every event (``gate=False``,
the reference) in lockstep on the same inputs, and compares after every event: the records
written (transitions with their inputs and params), the state, and the holds in progress.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.machines.gate import compile_state
from framework.machines.machine import StateMachine
from framework.spec.expr import Binding
from framework.spec.machines import load_machine_set

S = 1_000_000_000
METRICS = ("a", "b", "c")

UPSTREAM = """\
machine: up
doc: An upstream machine whose state the machine under test reads.
initial: X
states:
  X: {doc: x}
  Y: {doc: y}
  Z: {doc: z}
transitions:
  - {from: X, to: Y, when: "false"}
  - {from: Y, to: Z, when: "false"}
  - {from: Z, to: X, when: "false"}
"""

DECISION = """\
table: decision
doc: d
reads: [up]
rules:
  - {name: rest, doc: r, when: true, then: {eligible: false, aggressiveness: none, risk_budget: 0}}
"""


def machine_yaml(rules: list[dict], derive: dict[str, str]) -> str:
    lines = ["machine: m", "doc: Under test.", "reads: [metrics, risk, up]",
             "params:", "  p_x: {value: 1.5, doc: p}", "  h_s: {value: 0.3, doc: h}"]
    if derive:
        lines.append("derive:")
        for name, expr in derive.items():
            lines.append(f"  {name}: {{expr: {expr!r}, doc: d}}")
    lines += ["initial: A", "states:", "  A: {doc: a}", "  B: {doc: b}", "  C: {doc: c}", "transitions:"]
    ring = [{"from": s, "to": t, "when": "false"} for s, t in (("A", "B"), ("B", "C"), ("C", "A"))]
    for r in rules + ring:  # the ring, never firing, keeps every state reachable and left
        parts = [f"from: {r['from']}", f"to: {r['to']}"]
        for key in ("when", "for", "after"):
            if key in r:
                parts.append(f"{key}: {r[key]!r}")
        lines.append("  - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def load(tmp_path, rules, derive=None, published=False):
    """The machine; ``published``: the decision table reads its derived value d1."""
    (tmp_path / "up.yaml").write_text(UPSTREAM)
    (tmp_path / "m.yaml").write_text(machine_yaml(rules, derive or {}))
    decision = DECISION
    if published:
        decision = decision.replace("reads: [up]", "reads: [up, m]").replace("when: true", "when: m.d1 > 0 or true")
    (tmp_path / "decision.yaml").write_text(decision)
    ms = load_machine_set([tmp_path / "up.yaml", tmp_path / "m.yaml"], tmp_path / "decision.yaml", METRICS)
    return ms.machine("m")


class Pair:
    """A gated machine and the reference, each on its own copy of the inputs."""

    def __init__(self, spec, backoff=True):
        self.ns = [{"metrics": {k: 0.0 for k in METRICS}, "risk": {"kill_switch": False, "stale": False},
                    "up": {"state": "X"}} for _ in range(2)]
        self.records = ([], [])
        self.gated = StateMachine(spec, "SYM", self.ns[0], self.records[0].append)
        self.ref = StateMachine(spec, "SYM", self.ns[1], self.records[1].append, gate=False)
        if not backoff:  # a box after every evaluation, however often the inputs leave it
            self.gated.box_backoff_max = 0

    def step(self, ts: int, values: dict) -> None:
        for ns in self.ns:
            for space, kv in values.items():
                ns[space].update(kv)
        fired_g = self.gated.evaluate(ts)
        fired_r = self.ref.evaluate(ts)
        assert fired_g == fired_r
        assert self.gated.state == self.ref.state
        assert self.gated.held_since == self.ref.held_since
        assert _same(self.records[0], self.records[1])
        if self.gated.spec.derived_read_by:  # published: every derived value as evaluated
            assert _same(dict(self.gated.out), dict(self.ref.out))
            assert all(math.copysign(1, v) == math.copysign(1, self.ref.out[k])
                       for k, v in self.gated.out.items() if type(v) is float)


def _same(x, y):
    """Records equal, NaN equal to NaN (the records carry the inputs as read)."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return x == y and type(x) is type(y)


# -- boundaries: each comparison operator, the value exactly at the threshold, one ulp either side

OPS = ["<", "<=", ">", ">=", "==", "!="]
UP = math.nextafter(1.5, math.inf)
DOWN = math.nextafter(1.5, -math.inf)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("form", ["metrics.a {op} params.p_x", "params.p_x {op} metrics.a",
                                  "metrics.a {op} metrics.b * 0.5"])
def test_each_comparison_fires_at_the_same_event_as_the_reference(tmp_path, op, form):
    when = form.format(op=op)
    spec = load(tmp_path, [{"from": "A", "to": "B", "when": when}, {"from": "B", "to": "A", "when": f"not ({when})"}])
    pair = Pair(spec)
    seq = [0.0, 1.0, DOWN, 1.5, UP, 2.0, 1.5, 1.5, UP, UP, DOWN, math.nan, math.nan, 1.5, math.inf, -math.inf,
           1.4, 1.45, 1.5, 1.6, 1.7, 1.5, 1.0, 1.0]
    ts = 0
    for i, v in enumerate(seq):
        ts += S // 10
        pair.step(ts, {"metrics": {"a": v, "b": 3.0 if i % 7 else UP * 2}})
    assert pair.ref.transition_count > 0
    assert pair.gated.skipped > 0  # the repeated values were skipped, not evaluated


@pytest.mark.parametrize("when", ["metrics.a > metrics.b", "metrics.a > metrics.b * 0.5", "metrics.b * 0.5 < metrics.a"])
def test_the_other_side_of_a_comparison_moving_alone_is_seen(tmp_path, when):
    spec = load(tmp_path, [{"from": "A", "to": "B", "when": when}])
    pair = Pair(spec, backoff=False)
    pair.step(S, {"metrics": {"a": 1.0, "b": 4.0}})
    pair.step(2 * S, {"metrics": {"c": 3.0}})  # nothing it reads: skipped
    assert pair.gated.skipped + pair.gated._box_skips == 1
    pair.step(3 * S, {"metrics": {"b": 0.5}})  # a stays, the threshold it is compared with moves
    assert pair.ref.state == "B"


def test_hold_fires_when_it_falls_due_between_events_that_change_nothing(tmp_path):
    spec = load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > 1", "for": "params.h_s"}])
    pair = Pair(spec)
    ts = 0
    for v in [0.0, 2.0, 2.0, 2.0, 2.5, 2.0, 2.0, 2.0]:  # 0.1 s apart: the hold of 0.3 s falls due
        ts += S // 10
        pair.step(ts, {"metrics": {"a": v}})
    assert pair.ref.state == "B"
    assert pair.gated.skipped > 0


def test_after_timer_and_cached_cooldown_fall_due(tmp_path):
    spec = load(tmp_path, [
        {"from": "A", "to": "B", "when": "metrics.a > 1", "after": 0.35},
        {"from": "B", "to": "C", "when": "metrics.a > 1"},
        {"from": "C", "to": "A", "after": "min(0.2 * 2 ** entries('C', 5), 3)"},
    ])
    pair = Pair(spec)
    ts = 0
    for i in range(120):
        ts += S // 20
        pair.step(ts, {"metrics": {"a": 2.0 if i % 30 < 20 else 0.0}})
    assert pair.ref.transition_count >= 6
    assert pair.gated.skipped > 0


def test_strings_booleans_and_in_lists(tmp_path):
    spec = load(tmp_path, [
        {"from": "A", "to": "B", "when": "up.state in ['Y', 'Z'] and not risk.stale"},
        {"from": "B", "to": "A", "when": "up.state == 'X' or risk.kill_switch"},
    ])
    pair = Pair(spec)
    ts = 0
    for i, (state, stale, kill) in enumerate([("X", False, False)] * 3 + [("Y", True, False)] * 3
                                            + [("Y", False, False)] * 3 + [("Z", False, True)] * 3
                                            + [("X", False, False)] * 3):
        ts += S // 10 + i
        pair.step(ts, {"up": {"state": state}, "risk": {"stale": stale, "kill_switch": kill}})
    assert pair.ref.transition_count == 4  # B at Y; A at the kill switch; B again at Z; A at X


def test_a_clock_read_in_a_guard_leaves_the_state_ungated(tmp_path):
    spec = load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > 1 and time_in_state() > 2"},
                           {"from": "B", "to": "A", "when": "metrics.a < 0"}])
    m = StateMachine(spec, "SYM", {"metrics": {"a": 0.0, "b": 0.0, "c": 0.0}, "risk": {}, "up": {}}, lambda r: None)
    assert m.gates["A"] is None
    assert m.gates["B"] is not None


def test_thresholds_of_a_state_are_the_constants_its_rules_compare_with(tmp_path):
    spec = load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > 2 or metrics.a <= params.p_x and ready"},
                           {"from": "B", "to": "A", "when": "metrics.c > 0"}],
                derive={"ready": "metrics.b >= 0"})
    ns = {"metrics": {"a": 0.0, "b": 0.0, "c": 0.0}, "risk": {}, "up": {}}
    m = StateMachine(spec, "SYM", ns, lambda r: None)
    binding = Binding({**ns, "derived": m.out})
    gate = compile_state(m.rules_by_state["A"], {n: e for n, (e, _) in spec.derive.items()}, binding)
    keys = {k.key: k for _, ks in gate.groups for k in ks}
    assert set(keys) == {"a", "b"}  # c is read only in B
    assert keys["a"].thresholds == (1.5, 2.0) and keys["b"].thresholds == (0.0,)
    ns["metrics"]["a"] = 1.7
    box = gate.box(0, 0, {})
    cell = next((lo, hi) for _, k, lo, hi in box.cells if k == "a")
    assert cell == (math.nextafter(1.5, math.inf), math.nextafter(2.0, -math.inf))


def test_derived_values_read_by_another_layer_are_computed_and_kept_exact(tmp_path):
    (tmp_path / "up.yaml").write_text(UPSTREAM)
    (tmp_path / "m.yaml").write_text(machine_yaml([{"from": "A", "to": "B", "when": "metrics.a > 1"}],
                                                  {"score": "metrics.a * 2"}))
    (tmp_path / "decision.yaml").write_text(DECISION.replace("reads: [up]", "reads: [up, m]").replace(
        "when: true", "when: m.score > 0 or true"))
    ms = load_machine_set([tmp_path / "up.yaml", tmp_path / "m.yaml"], tmp_path / "decision.yaml", METRICS)
    spec = ms.machine("m")
    assert spec.derived_read_by == ("decision",)
    ns = {"metrics": {"a": 0.7, "b": 0.0, "c": 0.0}, "risk": {}, "up": {}}
    m = StateMachine(spec, "SYM", ns, lambda r: None)
    assert m.derive_by_state["B"] == m.derive_by_state["A"] != []  # computed in every state
    box = m.gates["A"].box(0, 0, {})
    assert [(k, lo, hi) for _, k, lo, hi in box.cells] == [("a", 0.7, 0.7)]  # exact: score is published
    ns["metrics"]["a"] = 0.0
    assert m.gates["A"].box(0, 0, {}) is None  # -0.0 would pass as 0.0 and give a score of -0.0


# -- the property: random guards, random inputs ---------------------------------------------

num_leaf = st.one_of(st.sampled_from(["metrics.a", "metrics.b", "metrics.c", "params.p_x", "d1"]),
                     st.sampled_from(["0", "1", "1.5", "-1", "2.5", "0.5"]))


def num_expr(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda x: f"(-{x})"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        children.map(lambda x: f"abs({x})"),
        children.map(lambda x: f"clip({x}, 0, 1)"),
    )


nums = st.recursive(num_leaf, num_expr, max_leaves=4)
plain = st.sampled_from(["metrics.a", "metrics.b", "metrics.c"])
# Each shape the gate treats on its own: input OP constant (thresholds), constant OP input,
# input OP input and input OP expression (the other side's inputs exact, a threshold at its
# value), expression OP expression (exact inputs).
comparison = st.one_of(
    st.tuples(plain, st.sampled_from(OPS), st.sampled_from(["1", "1.5", "params.p_x", "-1", "0"])),
    st.tuples(st.sampled_from(["1", "params.p_x"]), st.sampled_from(OPS), plain),
    st.tuples(plain, st.sampled_from(OPS), plain),
    st.tuples(plain, st.sampled_from(OPS), plain.map(lambda x: f"{x} * 0.5")),
    st.tuples(plain, st.sampled_from(OPS), nums),
    st.tuples(nums, st.sampled_from(OPS), nums),
).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
bool_leaf = st.one_of(comparison, comparison, st.sampled_from([
    "risk.stale", "risk.kill_switch", "d2", "up.state == 'Y'", "up.state in ['X', 'Z']", "0 < metrics.a < 2"]))


def bool_expr(children):
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(" + " and ".join(xs) + ")"),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(" + " or ".join(xs) + ")"),
        children.map(lambda x: f"(not {x})"),
        st.tuples(children, children, children).map(lambda t: f"({t[1]} if {t[0]} else {t[2]})"),
    )


bools = st.recursive(bool_leaf, bool_expr, max_leaves=5)
rule = st.fixed_dictionaries(
    {"from": st.sampled_from(["A", "B", "C", "[A, B]", "[B, C]"]), "to": st.sampled_from(["A", "B", "C"]), "when": bools},
    optional={"for": st.sampled_from([0.2, 0.5, "params.h_s", 0]), "after": st.sampled_from([0.3, 1, "params.h_s"])},
).filter(lambda r: r["to"] not in r["from"])
# Values at the constants (where < and <= differ), one ulp off, NaN, infinities, repeats.
value = st.sampled_from([0.0, 1.0, 1.5, UP, DOWN, -1.0, 2.5, 0.5, 3.0, math.nan, math.inf, -math.inf, -0.0, 0.75])
# One input changes per event, or none, so boxes last and are put to the test.
change = st.tuples(
    st.sampled_from([0, 1, S // 20, S // 10, S // 10, S // 3, S, -S // 10]),
    st.one_of(st.tuples(st.sampled_from(["a", "b", "c"]), value), st.tuples(st.just("stale"), st.booleans()),
              st.tuples(st.just("kill"), st.booleans()), st.tuples(st.just("up"), st.sampled_from(["X", "Y", "Z"])),
              st.none(), st.none()))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(rule, min_size=1, max_size=5), d1=nums.filter(lambda t: "d1" not in t), d2=bools.filter(lambda t: "d2" not in t),
       changes=st.lists(change, min_size=1, max_size=80), published=st.booleans(), backoff=st.booleans())
def test_gated_machine_matches_evaluating_every_event(tmp_path, rules, d1, d2, changes, published, backoff):
    try:
        spec = load(tmp_path, rules, {"d1": d1, "d2": d2}, published)
    except Exception as exc:  # a generated expression the loader refuses (e.g. a huge exponent)
        assert "expected" in str(exc)
        return
    pair = Pair(spec, backoff)
    ts = 0
    for dt, ch in changes:
        ts += dt
        values = {"metrics": {}, "risk": {}, "up": {}}
        if ch is not None:
            key, v = ch
            space, key = {"stale": ("risk", "stale"), "kill": ("risk", "kill_switch"), "up": ("up", "state")}.get(
                key, ("metrics", key))
            values[space][key] = v
        pair.step(ts, values)
