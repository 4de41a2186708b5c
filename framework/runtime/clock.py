"""The clock: event time and the ticks the runtime inserts at fixed event-time boundaries.

A tick falls due every ``tick_ns`` of event time, at the multiples of ``tick_ns`` after the first
event; every tick at or before an event's stamp comes before that event. Ticks let timers expire
in a quiet market, and a replay sees exactly the ticks a live run saw. Both replay paths and the
live path take their ticks from here: one at a time (``run_ticks``, event by event) or as an
array (``block_ticks``, the replay fast path), and the quiet part of a gap in the data is crossed
here too (``run_ticks``, with the proofs of ``quiet.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .quiet import last_quiet_tick, settle_ns

STOP_EVERY = 1024  # a long run of ticks asks whether to stop this often


class Clock:
    """The clock of one session: the next tick due, event time so far, and what the quiet part of
    a gap needs (the latest data stamp, whether a quiet tick went through since)."""

    def __init__(self, tick_ns: int, metric_set: Callable[[], Any] | None = None):
        self.tick_ns = tick_ns
        self.metric_set = metric_set  # the session's metric set now (a hot reload may change it)
        self.first_ns: int | None = None  # the first event's stamp: the clock's origin
        self.next_tick: int | None = None
        self.now_ns = 0  # the latest stamp of an event or tick processed
        self.last_data_ns: int | None = None  # the latest stamp of any event fed
        self.quiet_seen = False  # a tick of the current gap's quiet part went through in full
        self._settle: tuple[Any, int] = (None, 0)  # (metric set, its settle_ns)

    def start(self, ts: int) -> None:
        self.first_ns = ts
        self.next_tick = (ts // self.tick_ns + 1) * self.tick_ns

    @property
    def settle_ns(self) -> int:
        """How long after the last event the metric windows have drained (``quiet.py``)."""
        ms = self.metric_set()
        if self._settle[0] is not ms:
            self._settle = (ms, settle_ns(ms))
        return self._settle[1]

    def is_quiet(self, t: int) -> bool:
        """Whether the tick at ``t`` is in the quiet part of a gap in the data."""
        return self.last_data_ns is not None and t > self.last_data_ns + self.settle_ns

    def saw_data(self, ts: int) -> None:
        """An event stamped ``ts`` was fed: any gap in the data is over."""
        if self.last_data_ns is None or ts > self.last_data_ns:
            self.last_data_ns = ts
        self.quiet_seen = False

    # -- the ticks due --------------------------------------------------------------------------
    def run_ticks(self, until: int, prove: Callable[[int, int], bool], on_tick: Callable[[int, bool], None],
                  stop: Callable[[], bool] | None = None) -> bool:
        """Every tick at or before ``until`` in order, each through ``on_tick(t, quiet)`` with
        ``now_ns`` at ``t``; ``quiet``: the tick is in the quiet part of a gap. Once one such
        tick went through, the longest run of ticks that ``prove(t0, t1)`` shows change nothing
        is skipped. Returns False when ``stop`` said stop: asked only every ``STOP_EVERY`` ticks,
        so a short run never depends on when a signal came."""
        tick = self.tick_ns
        n = 0
        while self.next_tick <= until:
            n += 1
            if n % STOP_EVERY == 0 and stop is not None and stop():
                return False
            t = self.next_tick
            quiet = self.is_quiet(t)
            if quiet and self.quiet_seen:
                last = last_quiet_tick(prove, t, until - (until - t) % tick, tick)
                if last >= t:
                    self.next_tick = last + tick
                    continue
            self.next_tick = t + tick
            self.now_ns = t
            on_tick(t, quiet)
            if quiet:
                self.quiet_seen = True
        return True

    def block_ticks(self, end: int) -> np.ndarray:
        """Every tick at or before ``end`` not given out yet, as int64 stamps (each comes before
        the events stamped at or after it); the clock moves past them."""
        nxt = self.next_tick
        if nxt > end:
            return np.empty(0, np.int64)
        ticks = np.arange(nxt, end + 1, self.tick_ns, dtype=np.int64)
        self.next_tick = int(ticks[-1]) + self.tick_ns
        return ticks

    def first_quiet_gap(self, seen: np.ndarray) -> int:
        """The first of a block's events (``seen``: the latest stamp so far before each, in
        order) that a tick of the quiet part of a gap comes before; ``len(seen)`` when none."""
        last = self.last_data_ns if self.last_data_ns is not None else int(seen[0])
        before = np.maximum(np.concatenate(([last], seen[:-1])), last)  # the data before each event
        last_tick = seen - seen % self.tick_ns  # the last tick before each event
        # (a tick past ``before`` + settle is past ``before``: due before this event, not earlier)
        quiet_gap = (last_tick >= self.next_tick) & (last_tick > before + self.settle_ns)
        return int(np.argmax(quiet_gap)) if quiet_gap.any() else len(seen)
