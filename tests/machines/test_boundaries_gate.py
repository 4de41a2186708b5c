"""The gate's own boundaries: where a skipped evaluation is allowed, exactly.

tests/machines/test_gate.py shows the gate never changes an outcome; these tests show it still
skips at the edges of what it may skip: a value exactly on a threshold or exactly on its cell's
bound, an evaluation at the very event time of the last one, an integer constant or an integer
valued expression as a threshold. A one-character change there (``<=`` to ``<``, ``!=`` to
``==``) changes no outcome, only the work done, so only the skip count can show it. Every test
still runs the reference beside the gated machine (``Pair``), so a skip that changed an outcome
fails too.
"""

import math

import pytest

from framework.machines.machine import StateMachine
from tests.machines.test_gate import Pair, load

S = 1_000_000_000
UP = math.nextafter(1.5, math.inf)  # the lowest value above the threshold 1.5
BELOW_2_5 = math.nextafter(2.5, -math.inf)  # the highest value below the threshold 2.5


def skips(pair: Pair) -> int:
    """Evaluations the gated machine skipped so far (counted also while its box lasts)."""
    return pair.gated.skipped + pair.gated._box_skips


def cell(m: StateMachine, key: str) -> tuple[float, float]:
    """The cell the gated machine keeps for ``metrics.key`` after its last evaluation."""
    assert m._box is not None, "no box was built"
    return next((lo, hi) for _, k, lo, hi in m._box.cells if k == key)


def test_a_value_exactly_on_a_threshold_stays_in_its_one_value_cell(tmp_path):
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > params.p_x"}]), backoff=False)
    pair.step(S, {"metrics": {"a": 1.5}})
    assert cell(pair.gated, "a") == (1.5, 1.5)
    pair.step(2 * S, {"metrics": {"a": 1.5}})  # lo <= v <= hi with lo == v == hi
    assert skips(pair) == 1
    pair.step(3 * S, {"metrics": {"a": UP}})  # one ulp above: the guard holds
    assert pair.ref.state == pair.gated.state == "B"


def test_values_exactly_on_a_cells_bounds_are_inside_it(tmp_path):
    band = "metrics.a > params.p_x and metrics.a < 2.5"
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": f"not ({band})"}]), backoff=False)
    pair.step(S, {"metrics": {"a": 2.0}})
    assert cell(pair.gated, "a") == (UP, BELOW_2_5)
    pair.step(2 * S, {"metrics": {"a": UP}})  # the cell's lower bound
    pair.step(3 * S, {"metrics": {"a": BELOW_2_5}})  # its upper bound
    assert skips(pair) == 2
    pair.step(4 * S, {"metrics": {"a": 2.5}})  # the threshold itself: out of the band
    assert pair.gated.state == pair.ref.state == "B"


def test_an_evaluation_at_the_same_event_time_as_the_last_is_skipped(tmp_path):
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > params.p_x"}]), backoff=False)
    pair.step(S, {"metrics": {"a": 1.0}})
    pair.step(S, {"metrics": {"a": 1.0}})  # a second event at the same time (a tick, a trade)
    assert skips(pair) == 1
    pair.step(S, {"metrics": {"a": 2.0}})
    assert pair.gated.state == pair.ref.state == "B"


def test_an_event_before_the_last_evaluation_is_not_covered_by_its_box(tmp_path):
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > params.p_x"}]), backoff=False)
    pair.step(S, {"metrics": {"a": 1.0}})
    pair.step(S - 1, {"metrics": {"a": 1.0}})  # time went back by 1 ns: evaluated again
    assert skips(pair) == 0


def test_an_integer_constant_is_a_threshold_like_a_float(tmp_path):
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > 2"}]), backoff=False)
    pair.step(S, {"metrics": {"a": 1.0}})
    assert cell(pair.gated, "a") == (-math.inf, math.nextafter(2.0, -math.inf))
    pair.step(2 * S, {"metrics": {"a": 1.75}})
    assert skips(pair) == 1
    pair.step(3 * S, {"metrics": {"a": 2.0}})  # exactly 2: still not above it
    pair.step(4 * S, {"metrics": {"a": math.nextafter(2.0, math.inf)}})
    assert pair.gated.state == pair.ref.state == "B"


def test_an_integer_valued_expression_bounds_the_cell_like_a_float(tmp_path):
    # the right side is 1 (an int) while metrics.b > 0: the cell of a is everything above 1
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a < (1 if metrics.b > 0 else 2)"}]),
                backoff=False)
    pair.step(S, {"metrics": {"a": 1.25, "b": 1.0}})
    assert cell(pair.gated, "a") == (math.nextafter(1.0, math.inf), math.inf)
    pair.step(2 * S, {"metrics": {"a": 3.0}})
    assert skips(pair) == 1
    pair.step(3 * S, {"metrics": {"a": 1.0}})  # exactly the expression's value: not below it
    assert pair.gated.state == pair.ref.state == "A"
    pair.step(4 * S, {"metrics": {"a": math.nextafter(1.0, -math.inf)}})
    assert pair.gated.state == pair.ref.state == "B"


@pytest.mark.parametrize("when, before", [("metrics.a != params.p_x", 1.5), ("not (metrics.a < params.p_x)", 1.0)])
def test_a_value_turning_nan_leaves_its_cell(tmp_path, when, before):
    # every comparison with NaN is false: these guards, false at the value before, hold at NaN
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": when}]), backoff=False)
    pair.step(S, {"metrics": {"a": before}})
    assert pair.gated.state == "A" and pair.gated._box is not None
    pair.step(2 * S, {"metrics": {"a": math.nan}})
    assert pair.gated.state == pair.ref.state == "B"


def test_a_nan_that_stays_nan_stays_in_the_nan_cell(tmp_path):
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > params.p_x"}]), backoff=False)
    pair.step(S, {"metrics": {"a": math.nan}})
    assert all(math.isnan(bound) for bound in cell(pair.gated, "a"))
    pair.step(2 * S, {"metrics": {"a": math.nan}})
    assert skips(pair) == 1


def test_an_integer_constant_no_float_can_hold_keeps_the_input_exact(tmp_path):
    # 2**53 + 1 lies between two floats; the input is kept exact rather than bounded by a
    # rounded threshold, and crossing the constant is seen
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": f"metrics.a > {2**53 + 1}"}]), backoff=False)
    pair.step(S, {"metrics": {"a": float(2**53)}})
    assert cell(pair.gated, "a") == (float(2**53), float(2**53))
    pair.step(2 * S, {"metrics": {"a": float(2**53 + 2)}})
    assert pair.gated.state == pair.ref.state == "B"


def test_a_derived_value_compared_with_a_constant_is_watched_through_its_inputs(tmp_path):
    # d1 is computed during an evaluation, so between evaluations it is stale: the gate must
    # watch what d1 reads (metrics.a), not d1's last value
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "d1 > 3"}], derive={"d1": "metrics.a * 2"}),
                backoff=False)
    pair.step(S, {"metrics": {"a": 1.0}})
    pair.step(2 * S, {"metrics": {"a": 2.0}})  # d1 = 4
    assert pair.gated.state == pair.ref.state == "B"


def test_an_input_changing_type_leaves_its_cell(tmp_path):
    # 'X' <= 1.5 raises TypeError: the box cannot compare, so the machine is evaluated
    pair = Pair(load(tmp_path, [{"from": "A", "to": "B", "when": "up.state != 'X'"}]), backoff=False)
    pair.step(S, {"up": {"state": "X"}})
    pair.step(2 * S, {"up": {"state": 1.5}})
    assert pair.gated.state == pair.ref.state == "B"
