"""The clock's ticks against brute force: random tick lengths, first stamps, event stamps (equal
ones, backwards ones, gaps), and the quiet part of a gap; and its two views, one tick at a time
(event by event) and arrays of ticks (the replay fast path), against each other."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.runtime.clock import Clock
from framework.runtime.quiet import SETTLE_MARGIN_NS

steps = st.one_of(st.integers(-30, 30), st.just(0), st.integers(100, 3000))  # equal, backwards, gaps
streams = st.tuples(st.integers(1, 97), st.integers(-5000, 5000), st.lists(steps, min_size=1, max_size=40))


def stamps_of(first: int, deltas: list[int]) -> list[int]:
    out = [first]
    for d in deltas[1:]:
        out.append(out[-1] + d)
    return out


def settle_for(stamps: list[int], data) -> int:
    """Any settle time, or one that ends exactly on a later stamp (the boundary cases)."""
    gaps = sorted({b - a for a in stamps for b in stamps if b > a}) or [1]
    return data.draw(st.one_of(st.integers(1, 400), st.sampled_from(gaps)))


def clock_with_settle(tick: int, settle: int) -> Clock:
    """A clock whose quiet part of a gap starts ``settle`` after the last event."""
    metric_set = [SimpleNamespace(window_ns=settle - SETTLE_MARGIN_NS)]
    clock = Clock(tick, lambda: metric_set)
    assert clock.settle_ns == settle
    return clock


def brute_force(tick: int, stamps: list[int]) -> list[tuple[str, int]]:
    """Every multiple of ``tick`` after the first stamp up to the latest, each placed before the
    first event stamped at or after it; found by trying every integer."""
    out = []
    due = [t for t in range(stamps[0] + 1, max(stamps) + 1) if t % tick == 0]
    for ts in stamps:
        while due and due[0] <= ts:
            out.append(("tick", due.pop(0)))
        out.append(("event", ts))
    return out


def one_at_a_time(clock: Clock, stamps: list[int], prove=None, data: bool = False) -> list[tuple]:
    """What ``Runtime.feed`` asks of the clock, event by event; ``data``: with the data stamps."""
    out: list[tuple] = []

    def on_tick(t: int, quiet: bool) -> None:
        assert clock.now_ns == t
        out.append(("tick", t, quiet) if data else ("tick", t))

    for ts in stamps:
        if clock.first_ns is None:
            clock.start(ts)
        if clock.next_tick <= ts:
            assert clock.run_ticks(ts, prove, on_tick)
        if data:
            clock.saw_data(ts)
        out.append(("event", ts))
    return out


@settings(max_examples=300, deadline=None)
@given(streams)
def test_ticks_one_at_a_time_are_every_boundary_before_each_event(stream):
    tick, first, deltas = stream
    stamps = stamps_of(first, deltas)
    assert one_at_a_time(Clock(tick), stamps) == brute_force(tick, stamps)


@settings(max_examples=300, deadline=None)
@given(streams, st.data())
def test_ticks_in_blocks_are_the_ticks_one_at_a_time(stream, data):
    """Blocks cut anywhere, with blocks of no events that end anywhere before the next event (a
    stretch of a gap): placed as the replay fast path places them, the same sequence."""
    tick, first, deltas = stream
    stamps = stamps_of(first, deltas)
    clock = Clock(tick)
    clock.start(stamps[0])
    out: list[tuple] = []
    i, latest = 0, stamps[0]
    while i < len(stamps):
        if data.draw(st.booleans()):  # ticks only, up to some time before the next event
            until = data.draw(st.integers(latest, max(latest, stamps[i] - 1)))
            out += [("tick", t) for t in clock.block_ticks(until).tolist()]
            continue
        j = data.draw(st.integers(i + 1, len(stamps)))
        block = np.array(stamps[i:j], np.int64)
        seen = np.maximum.accumulate(block)
        ticks = clock.block_ticks(int(seen[-1]))
        assert ticks.dtype == np.int64
        at = np.searchsorted(seen, ticks, "left").tolist()  # the event each tick comes before
        for k, ts in enumerate(block.tolist()):
            out += [("tick", int(t)) for t, a in zip(ticks, at, strict=True) if a == k]
            out.append(("event", ts))
        i, latest = j, max(latest, int(seen[-1]))
    assert out == one_at_a_time(Clock(tick), stamps)


@settings(max_examples=300, deadline=None)
@given(streams, st.sets(st.integers(0, 400)), st.data())
def test_a_quiet_gap_is_crossed_skipping_only_what_is_proven_quiet(stream, busy_steps, data):
    """Past ``settle`` after the last event a tick is quiet; the first goes through, then every
    run of ticks the proof calls quiet is skipped and the next one goes through in full."""
    tick, first, deltas = stream
    stamps = stamps_of(first, deltas)
    settle = settle_for(stamps, data)
    busy = {(stamps[0] // tick + s) * tick for s in busy_steps}  # ticks a proof must not skip

    def prove(t0: int, t1: int) -> bool:
        assert t0 <= t1 and t0 % tick == 0 and t1 % tick == 0
        return not any(t0 <= b <= t1 for b in busy)

    want, last, seen_quiet = [], stamps[0], False
    for kind, t in brute_force(tick, stamps):
        if kind == "event":
            want.append((kind, t))
            last, seen_quiet = max(last, t), False
            continue
        quiet = t > last + settle
        if not quiet or not seen_quiet or t in busy:
            want.append(("tick", t, quiet))
        seen_quiet = seen_quiet or quiet
    assert one_at_a_time(clock_with_settle(tick, settle), stamps, prove, data=True) == want


@settings(max_examples=300, deadline=None)
@given(streams, st.data())
def test_the_first_quiet_gap_of_a_block_is_where_one_at_a_time_meets_a_quiet_tick(stream, data):
    """``first_quiet_gap``, from any point of a stream on: the first event of the block that a
    tick of a gap's quiet part comes before, as event by event finds it."""
    tick, first, deltas = stream
    stamps = stamps_of(first, deltas)
    settle = settle_for(stamps, data)
    cut = data.draw(st.integers(0, len(stamps) - 1))
    block = stamps[cut:]
    clock = clock_with_settle(tick, settle)
    def never_quiet(t0: int, t1: int) -> bool:  # every tick goes through
        return False

    one_at_a_time(clock, stamps[:cut], never_quiet, data=True)
    if clock.first_ns is None:
        clock.start(block[0])
    reference = copy.copy(clock)
    rows = one_at_a_time(reference, block, never_quiet, data=True)
    quiet_at = next((k for k, r in enumerate(rows) if r[0] == "tick" and r[2]), len(rows))
    want = sum(r[0] == "event" for r in rows[:quiet_at])
    assert clock.first_quiet_gap(np.maximum.accumulate(np.array(block, np.int64))) == want
