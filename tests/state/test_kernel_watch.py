"""The kernel's watched cells (``KernelMetrics.watch_slot``): a slot stays armed exactly while
every value it watches has stayed in its cell after every event since it was armed.

A brute-force reference checks the values dict after every event with the comparison the gate's
``Box.holds`` makes in Python; the kernel must agree at every event, for random streams, random
cells (exact, NaN, one ulp wide, unbounded) and re-arming at random events.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import build_events
from test_kernel import MANY, step

from framework.state import SymbolMetrics
from framework.state.kernel import MAX_WATCH_SLOTS, WATCH_SLOTS, KernelMetrics


def in_cell(v: float, lo: float, hi: float) -> bool:
    """``Box.holds``' test of one cell: inside, or NaN in the NaN cell."""
    return (lo <= v <= hi) or (v != v and lo != lo)


def cell_around(v: float, shape: str) -> tuple[float, float]:
    if v != v:
        return math.nan, math.nan
    if shape == "exact":
        return v, v
    if shape == "ulp":
        return math.nextafter(v, -math.inf), math.nextafter(v, math.inf)
    if shape == "above":
        return v, math.inf
    if shape == "below":
        return -math.inf, v
    return -math.inf, math.inf  # "any"


shape = st.sampled_from(["exact", "ulp", "above", "below", "any"])
arming = st.tuples(st.integers(0, 5), st.lists(st.tuples(st.integers(0, 10_000), shape), max_size=6))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=120), st.lists(st.tuples(st.integers(0, 119), arming), max_size=12))
def test_a_slot_stays_armed_exactly_while_every_value_stays_in_its_cell(steps, armings):
    events = build_events(steps)
    got = KernelMetrics(MANY, "X")
    slots = [got.watch_slot(f"m{i}") for i in range(6)]  # more than the initial room: the arrays grow
    names = list(got.watch_slot("probe").columns)
    cells: dict[int, list[tuple[str, float, float]]] = {}  # slot -> cells of the live arming
    at = {}
    same: dict[tuple, list[int]] = {}
    for i, (slot, picks) in armings:
        at.setdefault(i % len(events), []).append((slot, picks))
    for i, ev in enumerate(events):
        got.on_event(ev)
        for s, watched in list(cells.items()):  # the reference: every value in its cell, event by event
            if not all(in_cell(got.values[n], lo, hi) for n, lo, hi in watched):
                del cells[s]
        for s in range(len(slots)):
            assert bool(got.armed & slots[s].bit) == (s in cells), f"slot {s} after event {i}"
        for s, picks in at.get(i, []):  # arm after the event, around the values now
            watched = []
            for pick, how in picks:
                name = names[pick % len(names)]
                if name not in (n for n, _, _ in watched):
                    watched.append((name, *cell_around(got.values[name], how)))
            columns = [slots[s].columns[n] for n, _, _ in watched]
            columns = same.setdefault(tuple(columns), columns)  # as a gate: one list object per set of columns
            bit = slots[s].arm(columns, [lo for _, lo, _ in watched], [hi for _, _, hi in watched])
            assert bit == (slots[s].bit if watched else 0)
            cells.pop(s, None)
            if watched:
                cells[s] = watched
            assert bool(got.armed & slots[s].bit) == bool(watched)


def test_an_owner_keeps_its_slot_and_growing_keeps_the_cells_armed():
    m = KernelMetrics(MANY, "X")
    ev = build_events([(0, ("q", 100.0, 100.5, 1.0, 1.0))])[0]
    m.on_event(ev)
    first = m.watch_slot("regime")
    col = first.columns["spread"]
    assert first.arm([col], [0.5], [0.5]) == first.bit
    for i in range(WATCH_SLOTS + 3):  # new arrays, a new address table, the old cells copied
        m.watch_slot(f"other{i}")
    m.on_event(build_events([(1_000, ("q", 100.0, 100.5, 2.0, 1.0))])[0])
    assert m.armed & first.bit  # the spread did not move
    m.on_event(build_events([(2_000, ("q", 100.0, 100.6, 2.0, 1.0))])[0])
    assert not m.armed & first.bit
    first.arm([col], [0.6], [0.6])
    assert m.armed & first.bit
    again = m.watch_slot("regime")  # a machine rebuilt (a hot reload) takes the slot, unarmed
    assert again.slot == first.slot and not m.armed & first.bit


def test_slots_run_out_at_62_and_a_block_disarms_every_slot():
    m = KernelMetrics(MANY, "X")
    slots = [m.watch_slot(f"m{i}") for i in range(MAX_WATCH_SLOTS)]
    assert all(s is not None for s in slots) and m.watch_slot("one too many") is None
    k = m._kernel
    last = slots[-1]
    last.arm([0], [-math.inf], [math.inf])
    assert m.armed & last.bit
    one = np.zeros(1)
    k.run(np.zeros(1, np.int8), np.full(1, 10**18, np.int64), one + 100, one + 1, one + 101, one + 1, one, one,
          np.zeros(1, np.bool_))
    assert k.armed == 0  # a block's events are not checked one by one


def test_the_reference_engine_has_no_slots():
    assert SymbolMetrics(MANY, "X").watch_slot("regime") is None
