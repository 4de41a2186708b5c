"""Event time protection: a frame whose stamp is implausible is quarantined, not fed.

One source (a recording file, a live connection) stamps every frame with one local receive
clock, so its frames' stamps move together. Against the source's recent time (the latest stamp
accepted):

- a stamp outside ``[0, 2**63)`` can be no time at all: quarantined;
- a stamp more than ``max_behind_s`` behind: quarantined (a clock cannot go back that far);
- a stamp more than ``max_ahead_s`` ahead is *suspect*: held, with the frames that follow it,
  until ``confirm_frames`` following frames agree with it (none more than ``max_behind_s``
  behind the suspect). Then the jump is real (a recorder offline for hours, then data resumes)
  and every held frame is released in order. A following frame back at the old time instead
  quarantines the suspect and whatever agreed with it. At the end of the input an unconfirmed
  suspect is quarantined.
- The very first frame has no recent time to be judged against: it is a suspect too, so one
  absurd first stamp cannot pin the clock.

A quarantined frame becomes a ``FeedEvent(kind="quarantined")`` stamped at the source's recent
time (so it never moves the clock), naming the stamp and the reason in ``detail``. It is logged
as a ``feed`` record and counted like any feed incident; the layers never see the frame.
Quarantine notices that come before any time is known wait for the first accepted frame.

The guard is a pure function of the sequence of events it is given: live and replay, and both
replay paths, see the same events for the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np

from .columns import EventBlock
from .events import FeedEvent

NS = 1_000_000_000
MAX_STAMP = (1 << 63) - 1


@dataclass(frozen=True)
class EventTimePolicy:
    """Thresholds of the guard (session config ``clock:``; docs/sessions.md)."""

    max_ahead_s: float = 60.0
    max_behind_s: float = 10.0
    confirm_frames: int = 3

    @classmethod
    def from_clock(cls, clock: dict[str, Any] | None) -> EventTimePolicy:
        clock = clock or {}
        d = cls()
        return cls(float(clock.get("max_ahead_s", d.max_ahead_s)), float(clock.get("max_behind_s", d.max_behind_s)),
                   int(clock.get("confirm_frames", d.confirm_frames)))


class EventTimeGuard:
    """Push events in arrival order; get back the ones to feed (see the module doc)."""

    def __init__(self, policy: EventTimePolicy | None = None):
        p = policy or EventTimePolicy()
        self.policy = p
        self.ahead_ns = int(p.max_ahead_s * NS)
        self.behind_ns = int(p.max_behind_s * NS)
        self.confirm = max(int(p.confirm_frames), 0)
        self.recent: int | None = None  # the latest accepted stamp
        self.held: list = []  # a suspect jump and the frames that followed it
        self.held_top = 0  # the latest stamp among them
        self.notices: list[tuple[Any, str]] = []  # quarantined before any time was known
        self.quarantined = 0

    # -- the decision ------------------------------------------------------------------------
    def push(self, ev: Any) -> list:
        """The events to feed now, in order (often just ``[ev]``)."""
        ts = ev.ts_ns
        out: list = []
        if not (type(ts) is int and 0 <= ts <= MAX_STAMP):
            self._quarantine(ev, "stamp out of range", out)
            return out
        held = self.held
        recent = self.recent
        if held:
            if ts >= self.held_top - self.behind_ns:  # agrees with the suspect
                held.append(ev)
                if ts > self.held_top:
                    self.held_top = ts
                if len(held) > self.confirm:
                    self._accept_held(out)
                return out
            if recent is not None and ts > recent + self.ahead_ns:  # late against the suspect only
                self._quarantine(ev, "stamp far behind", out)
                return out
            self.held = []
            for h in held:  # back at the old time: the jump was one bad stamp (or a few)
                self._quarantine(h, "stamp jumps ahead and is not confirmed", out)
        if recent is None or ts > recent + self.ahead_ns:
            self.held = [ev]
            self.held_top = ts
            if self.confirm == 0:
                self._accept_held(out)
        elif ts < recent - self.behind_ns:
            self._quarantine(ev, "stamp far behind", out)
        else:
            if ts > recent:
                self.recent = ts
            out.append(ev)
        return out

    def flush(self) -> list:
        """The end of the input: an unconfirmed suspect is quarantined (the first frames of an
        input too short to confirm them are accepted: nothing contradicts them)."""
        out: list = []
        if self.held:
            if self.recent is None:
                self._accept_held(out)
            else:
                held, self.held = self.held, []
                for h in held:
                    self._quarantine(h, "stamp jumps ahead and is not confirmed", out)
        if self.notices:  # nothing ever gave a time: the notices go out at time 0
            self.recent = 0
            self._release_notices(out)
        return out

    # -- helpers -------------------------------------------------------------------------------
    def _accept_held(self, out: list) -> None:
        held, self.held = self.held, []
        self.recent = self.held_top if self.recent is None else max(self.recent, self.held_top)
        self._release_notices(out)
        out.extend(held)

    def _quarantine(self, ev: Any, reason: str, out: list) -> None:
        self.quarantined += 1
        if self.recent is None:
            self.notices.append((ev, reason))
            return
        out.append(self._notice(ev, reason))

    def _release_notices(self, out: list) -> None:
        notices, self.notices = self.notices, []
        out.extend(self._notice(ev, reason) for ev, reason in notices)

    def _notice(self, ev: Any, reason: str) -> FeedEvent:
        what = type(ev).__name__.lower()
        if type(ev) is FeedEvent:
            what = f"feed {ev.kind}"
        return FeedEvent(ts_ns=self.recent, kind="quarantined", symbol=getattr(ev, "symbol", ""),
                         detail=f"{reason}: {what} stamped {ev.ts_ns}")


def guarded(events: Iterable, policy: EventTimePolicy | None = None) -> Iterator:
    """``events`` through one ``EventTimeGuard`` (one source)."""
    guard = EventTimeGuard(policy)
    push = guard.push
    ahead, behind = guard.ahead_ns, guard.behind_ns
    lo, hi = 1, 0  # the plausible window around the recent time while nothing is held (empty)
    for ev in events:
        ts = ev.ts_ns
        if lo <= ts <= hi and type(ts) is int:  # the common case, without a call
            if ts > guard.recent:
                guard.recent = ts
                lo, hi = max(ts - behind, 0), min(ts + ahead, MAX_STAMP)
            yield ev
            continue
        yield from push(ev)
        if guard.held or guard.recent is None:
            lo, hi = 1, 0  # empty: everything goes through push()
        else:
            lo, hi = max(guard.recent - behind, 0), min(guard.recent + ahead, MAX_STAMP)
    yield from guard.flush()


_TS = attrgetter("ts_ns")


def guarded_blocks(blocks: Iterable[list | EventBlock], policy: EventTimePolicy | None = None) -> Iterator[list | EventBlock]:
    """:func:`guarded` a list of events (or an ``EventBlock``) at a time (one source): the same
    events in the same order; a block all of whose stamps pass is given on as it came. While
    nothing is held, the plausible window around the recent time is checked for a whole list at once (the recent time before each event is the running maximum of the stamps
    before it); from the first event outside it, the rest of the list goes through ``push``."""
    guard = EventTimeGuard(policy)
    push = guard.push
    ahead, behind = guard.ahead_ns, guard.behind_ns
    for events in blocks:
        n = len(events)
        start = 0
        if n and not guard.held and guard.recent is not None:
            if type(events) is EventBlock:
                ts = events.ts
            else:
                try:
                    ts = np.fromiter(map(_TS, events), np.int64, n)
                except (OverflowError, TypeError):  # a stamp that is no int64: push() quarantines it
                    ts = None
            if ts is not None:
                before = np.maximum.accumulate(np.concatenate(([guard.recent], ts[:-1])))
                inside = (ts >= np.maximum(before - behind, 0)) & (ts <= np.minimum(before, MAX_STAMP - ahead) + ahead)
                start = n if inside.all() else int(np.argmin(inside))
                if start:
                    guard.recent = max(guard.recent, int(ts[:start].max()))
        if start == n:
            if n:
                yield events
            continue
        out = list(events[:start])
        for ev in events[start:]:
            out += push(ev)
        yield out
    yield guard.flush()
