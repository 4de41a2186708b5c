"""The gate's interval boxes: a computed number (a score, a sum of clipped terms) compared with
constants is skipped while every input stays in a box that keeps the number in its cell.

As in ``test_gate.py``, a gated machine runs beside the same machine evaluating every event
and both are compared after every event (records, state, holds in progress). The input walks
here move by small steps (where boxes last and are put to the test at their ends), land exactly
on values that put the score on a threshold, and jump to NaN, infinities and signed zeros.
"""

import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.machines.bounds import Unbounded, analyse, compile_bounds
from framework.machines.machine import StateMachine
from framework.spec.expr import Binding, Env, InputType, compile_expr
from framework.spec.machines import load_machine_set
from framework.spec.metrics import load_metric_set
from framework.spec.session import MACHINE_FILES, MACHINES_DIR
from tests.machines.test_gate import METRICS, Pair, load

S = 1_000_000_000
OPS = ["<", "<=", ">", ">=", "==", "!="]


def _pair_walk(spec, walk, backoff=True):
    pair = Pair(spec, backoff)
    ts = 0
    for dt, values in walk:
        ts += dt
        pair.step(ts, values)
    return pair


# -- the health score's shape: skipped, and identical --------------------------------------------

SCORE = {
    "la": "1 - clip(metrics.a / 4, 0, 1)",
    "lb": "1 - clip(metrics.b / 2000, 0, 1)",
    "score": "0 if risk.stale or metrics.c > 5 else 0.5 * la + 0.25 * lb + 0.25 * (1 if up.state == 'X' else 0)",
}
SCORE_RULES = [
    {"from": "A", "to": "B", "when": "not (score >= 0.8)"},
    {"from": "B", "to": "A", "when": "score >= 0.85", "for": 0.5},
    {"from": "B", "to": "C", "when": "not (score >= 0.5)"},
    {"from": "C", "to": "B", "when": "score >= 0.55", "for": "params.h_s"},
]


def test_a_score_moving_inside_its_cell_is_skipped_and_leaving_it_is_seen(tmp_path):
    spec = load(tmp_path, SCORE_RULES, SCORE)
    walk = []
    a, b = 0.1, 0.0
    for i in range(400):  # small moves of both inputs: the score stays near 0.97
        a = 0.1 + 0.01 * ((i * 7) % 13) / 13
        b = 50.0 * ((i * 5) % 11) / 11
        walk.append((S // 100, {"metrics": {"a": a, "b": b}}))
    for i in range(200):  # the spread widens to 4: the score falls through 0.8 and 0.5
        walk.append((S // 100, {"metrics": {"a": 0.1 + 4.0 * i / 200}}))
    for i in range(300):  # and recovers
        walk.append((S // 100, {"metrics": {"a": 4.0 - 4.0 * i / 300}}))
    pair = _pair_walk(spec, walk)
    assert pair.ref.transition_count >= 4
    assert pair.gated.skipped + pair.gated._box_skips > 300  # the first 400 events mostly skipped


def test_the_health_machine_as_shipped_is_gated_by_its_score(tmp_path):
    """machines/health.yaml: GREEN's score thresholds box the three continuous inputs."""
    ms = load_machine_set([MACHINES_DIR / f"{m}.yaml" for m in MACHINE_FILES], MACHINES_DIR / "decision.yaml",
                          _metric_names())
    spec = ms.machine("health")
    metrics = dict.fromkeys(_metric_names(), 0.0)
    metrics.update(spread_bps=0.2, quote_age_ms=10.0, mid_move_bps_1s=0.5, book_in_sync=math.nan,
                   book_age_ms=math.nan)
    ns = {"metrics": metrics, "risk": {"kill_switch": False, "stale": False}, "regime": {"state": "NORMAL"},
          "permission": {"state": "ALLOWED"}}
    m = StateMachine(spec, "SYM", ns, lambda r: None, state="GREEN")
    assert m.gates["GREEN"].sums  # the score is bounded, not kept exact
    assert not m.evaluate(0)  # stays GREEN; its box is built from the values it computed
    box = m._box
    cells = {k: (lo, hi) for _, k, lo, hi in box.cells}
    assert cells["spread_bps"][0] < 0.2 < cells["spread_bps"][1]
    assert cells["quote_age_ms"][0] < 10.0 < cells["quote_age_ms"][1] < 500  # and its own threshold
    assert cells["mid_move_bps_1s"][0] < 0.5 < cells["mid_move_bps_1s"][1]
    assert math.isnan(cells["book_in_sync"][0])  # NaN without depth: the NaN cell


def _metric_names():
    return tuple(load_metric_set(MACHINES_DIR / "metrics.yaml").names)


# -- the interval bounds themselves, against evaluation at many points ---------------------------

def _bind(text, values):
    env = Env(inputs={f"metrics.{k}": InputType("num") for k in METRICS})
    e = compile_expr(text, env)
    ns = {"metrics": dict(values)}
    return e, ns, Binding(ns)


terms = st.sampled_from([
    "clip(metrics.a / 4, 0, 1)", "1 - clip(metrics.b * 0.5, -1, 1)", "abs(metrics.c)", "min(metrics.a, metrics.b)",
    "max(metrics.a - metrics.c, 0.25)", "-metrics.b", "metrics.a * -3", "metrics.c / -0.7", "(metrics.a + 1e300)",
    "clip(metrics.a, 0, 0)",
])
sums = st.lists(st.tuples(st.sampled_from(["0.3", "1", "0.1", "-2", "1e-300", "7e299"]), terms), min_size=1,
                max_size=4).map(lambda ts: " + ".join(f"{w} * {t}" for w, t in ts))
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@settings(max_examples=300, deadline=None)
@given(text=sums, a=finite, b=finite, c=finite, r=st.sampled_from([0.0, 1e-12, 1e-3, 0.5, 10.0]),
       points=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=20))
def test_the_interval_encloses_every_value_computed_inside_the_box(text, a, b, c, r, points):
    e, ns, binding = _bind(text, {"a": a, "b": b, "c": c})
    assert analyse(e.root, {}) is not None
    bounds = compile_bounds(e.root, {}, binding)
    centre = {"a": a, "b": b, "c": c}
    box = {("metrics", k): (v - r * (abs(v) + 1), v + r * (abs(v) + 1)) for k, v in centre.items()}
    try:
        lo, hi = bounds(box)
    except Unbounded:
        return
    fn = e.bind(binding)
    ends = {k: box[("metrics", k)] for k in "abc"}
    corners = [{k: ends[k][0] if f < 0.5 else ends[k][1] for k, f in zip("abc", p, strict=True)} for p in points]
    inside = [{k: min(max(ends[k][0] + f * (ends[k][1] - ends[k][0]), ends[k][0]), ends[k][1])
               for k, f in zip("abc", p, strict=True)} for p in points]
    for values in [centre, *corners, *inside]:
        ns["metrics"].update(values)
        v = fn()
        assert lo <= v <= hi, (values, v, lo, hi)


# -- the property: random scores, random thresholds, walks by small and exact steps ---------------

term = st.sampled_from([
    "clip(metrics.a / 4, 0, 1)", "(1 - clip(metrics.b / 2, 0, 1))", "clip(metrics.c, -1, 1)", "abs(metrics.a)",
    "min(metrics.a, metrics.b)", "max(metrics.b, metrics.c * 2)", "(metrics.a - metrics.c)", "(-metrics.b)",
    "(1 if metrics.c > 0.5 else 0)", "(metrics.a if risk.stale else metrics.b)", "d2n",
])
weight = st.sampled_from(["0.25", "0.5", "1", "0.3", "-0.5", "2"])
score = st.lists(st.tuples(weight, term), min_size=1, max_size=4).map(
    lambda ts: " + ".join(f"{w} * {t}" for w, t in ts))
threshold = st.sampled_from(["0", "0.5", "0.75", "1", "1.5", "-0.25", "0.3", "params.p_x"])
guard = st.one_of(st.tuples(st.sampled_from(["d1", "score2"]), st.sampled_from(OPS), threshold).map(
    lambda t: f"{t[0]} {t[1]} {t[2]}"), st.tuples(threshold, st.sampled_from(OPS), st.sampled_from(["d1", "score2"])).map(
    lambda t: f"{t[0]} {t[1]} {t[2]}"))
guards = st.one_of(guard, st.tuples(guard, guard).map(lambda t: f"({t[0]}) and not ({t[1]})"),
                   st.tuples(guard, guard).map(lambda t: f"({t[0]}) or ({t[1]})"),
                   st.tuples(guard, st.sampled_from(["risk.kill_switch", "metrics.a < 1", "up.state == 'Y'"])).map(
                       lambda t: f"{t[0]} and not {t[1]}"))
rule = st.fixed_dictionaries(
    {"from": st.sampled_from(["A", "B", "C"]), "to": st.sampled_from(["A", "B", "C"]), "when": guards},
    optional={"for": st.sampled_from([0.2, 0.5, "params.h_s"]), "after": st.sampled_from([0.3, 1])},
).filter(lambda r: r["to"] != r["from"])
# Steps: tiny and small moves (boxes tested at their ends), dyadic ones (exact threshold hits),
# and jumps to special values.
special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, 1.0, 1.5, 2.0, 0.25, 1e300])
move = st.one_of(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.just("+"),
              st.sampled_from([1e-12, -1e-12, 1e-6, -1e-6, 0.01, -0.01, 0.125, -0.125, 0.25, -0.5, 1.0])),
    st.tuples(st.sampled_from(["a", "b", "c"]), st.just("="), special),
    st.tuples(st.just("stale"), st.just("="), st.booleans()),
    st.tuples(st.just("up"), st.just("="), st.sampled_from(["X", "Y"])),
    st.none(),
)
step = st.tuples(st.sampled_from([0, 1, S // 20, S // 10, S // 3]), st.lists(move, max_size=3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(rule, min_size=1, max_size=4), d1=score, extra=score, steps=st.lists(step, min_size=1, max_size=120),
       published=st.booleans(), backoff=st.booleans())
def test_gated_score_machine_matches_evaluating_every_event(tmp_path, rules, d1, extra, steps, published, backoff):
    derive = {"d2n": "metrics.c * 0.5 + 0.125", "d1": d1.replace("d2n", "metrics.c"), "score2": extra}
    try:
        spec = load(tmp_path, rules, derive, published)
    except Exception as exc:  # a generated expression the loader refuses
        assert "expected" in str(exc)
        return
    pair = Pair(spec, backoff)
    values = {"a": 0.5, "b": 0.25, "c": 0.0}
    ts = 0
    for dt, moves in steps:
        ts += dt
        change = {"metrics": {}, "risk": {}, "up": {}}
        for mv in moves:
            if mv is None:
                continue
            key, how, v = mv
            if key == "stale":
                change["risk"]["stale"] = v
            elif key == "up":
                change["up"]["state"] = v
            else:
                values[key] = values[key] + v if how == "+" else v
                change["metrics"][key] = values[key]
        pair.step(ts, change)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(rule, min_size=1, max_size=4), d1=score, extra=score, seed=st.integers(0, 2**32 - 1),
       published=st.booleans())
def test_long_smooth_walks_match_evaluating_every_event(tmp_path, rules, d1, extra, seed, published):
    """Long walks by small random steps (where boxes last for many events), with exact steps
    and special values now and then."""
    derive = {"d2n": "metrics.c * 0.5 + 0.125", "d1": d1.replace("d2n", "metrics.c"), "score2": extra}
    try:
        spec = load(tmp_path, rules, derive, published)
    except Exception as exc:
        assert "expected" in str(exc)
        return
    rng = random.Random(seed)
    pair = Pair(spec, backoff=rng.random() < 0.5)
    values = {"a": 0.5, "b": 0.25, "c": 0.0}
    ts = 0
    for _ in range(300):
        ts += rng.choice([0, 1, S // 50, S // 20, S // 10])
        change = {"metrics": {}, "risk": {}, "up": {}}
        roll = rng.random()
        key = rng.choice("abc")
        if roll < 0.8:
            values[key] += rng.uniform(-1, 1) * rng.choice([1e-9, 1e-4, 1e-2, 0.05])
        elif roll < 0.9:
            values[key] = rng.choice([-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])  # lands on thresholds
        elif roll < 0.94:
            values[key] = rng.choice([math.nan, math.inf, -math.inf, -0.0, 1e300])
        elif roll < 0.97:
            change["risk"]["stale"] = rng.random() < 0.3
        else:
            change["up"]["state"] = rng.choice("XY")
        if values[key] != values[key] or abs(values[key]) > 1e6:
            values[key] = values[key] if rng.random() < 0.7 else 0.5
        change["metrics"][key] = values[key]
        pair.step(ts, change)
