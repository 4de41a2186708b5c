"""The machine's own boundaries that no transition shows: how long a cached ``after:`` timer's
value is known to stay the same.

``timer_at`` answers the value of a cooldown that reads ``entries()`` and the event time from
which it may change (the oldest entry it counts leaving its window, a microsecond early). The
replay fast path screens a block up to that time; an answer in the past makes it screen again
on every row. An entry exactly one window old is no longer counted (``entries()``), so it must
not bound the value either.
"""

from framework.machines.machine import StateMachine
from tests.machines.test_gate import Pair, load

S = 1_000_000_000
FOREVER = 1 << 126
US = 1_000


def cooling(tmp_path) -> tuple[StateMachine, object]:
    """A machine entering B at 1 s; B's timer is 10.5 s while that entry is less than 2 s old,
    0.5 s after."""
    spec = load(tmp_path, [{"from": "A", "to": "B", "when": "metrics.a > 1"},
                           {"from": "B", "to": "A", "after": "0.5 + 10 * entries('B', 2)"}])
    pair = Pair(spec)
    pair.step(0, {"metrics": {"a": 0.0}})
    pair.step(S, {"metrics": {"a": 2.0}})
    m = pair.gated
    assert m.state == "B" and m.entered_ns == S
    after = next(a for rule, _w, _ns, a, _h in m.rules_by_state["B"] if a is not None)
    assert hasattr(after, "cache")  # the cached form under test
    return m, after


def test_a_cached_timer_is_known_until_its_entry_leaves_the_window(tmp_path):
    m, after = cooling(tmp_path)
    assert m.timer_at(after, 2 * S) == (10.5, 3 * S - US)
    assert m.timer_at(after, 3 * S - US - 1) == (10.5, 3 * S - US)


def test_an_entry_exactly_one_window_old_no_longer_bounds_the_timer(tmp_path):
    m, after = cooling(tmp_path)
    value, until = m.timer_at(after, 3 * S)  # the entry of 1 s is exactly 2 s old
    assert m.entries("B", 2) == 0
    assert (value, until) == (0.5, FOREVER)  # nothing left in the window can change it
    assert m.timer_at(after, 3 * S - 1) == (10.5, 3 * S - US)  # 1 ns earlier it still counts
