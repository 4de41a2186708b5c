"""The event time guard: implausible stamps are quarantined, a real gap in a recording is not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from framework.market.events import FeedEvent, Quote, Trade
from framework.market.eventtime import EventTimeGuard, EventTimePolicy, guarded, guarded_blocks

S = 1_000_000_000
T0 = 1_723_161_254_000_000_000


def q(ts: int, symbol: str = "BTCUSDT") -> Quote:
    return Quote(ts, symbol, 100.0, 1.0, 100.5, 1.0, 1)


def t(ts: int) -> Trade:
    return Trade(ts, "BTCUSDT", 100.0, 1.0, False, 1, 0, 0)


def run(events, **policy):
    return list(guarded(events, EventTimePolicy(**policy)))


def stamps(out):
    return [(e.kind if type(e) is FeedEvent else "ev", e.ts_ns) for e in out]


def test_a_steady_stream_passes_untouched_and_in_order():
    evs = [q(T0 + i * 10_000_000) if i % 3 else t(T0 + i * 10_000_000) for i in range(50)]
    assert run(evs) == evs


def test_one_frame_a_year_ahead_is_quarantined_and_never_moves_the_clock():
    year = 365 * 86_400 * S
    evs = [q(T0 + i * S) for i in range(10)]
    evs.insert(5, t(T0 + 4 * S + year))
    out = run(evs)
    assert [e for e in out if type(e) is not FeedEvent] == [e for e in evs if e.ts_ns < T0 + year]
    (notice,) = [e for e in out if type(e) is FeedEvent]
    assert notice.kind == "quarantined" and notice.ts_ns == T0 + 4 * S  # the stream's time, not the stamp
    assert str(T0 + 4 * S + year) in notice.detail and "not confirmed" in notice.detail
    assert out.index(notice) == 5  # noticed as soon as the next frame contradicts it


def test_a_real_gap_of_hours_is_accepted_once_the_following_frames_confirm_it():
    before = [q(T0 + i * S) for i in range(5)]
    after = [q(T0 + 5 * 3600 * S + i * S) for i in range(5)]
    assert run(before + after, confirm_frames=3) == before + after


def test_a_jump_the_input_ends_on_is_not_confirmed():
    evs = [q(T0 + i * S) for i in range(5)] + [q(T0 + 86_400 * S), q(T0 + 86_401 * S)]
    out = run(evs, confirm_frames=3)
    assert out[:5] == evs[:5]
    assert [e.kind for e in out[5:]] == ["quarantined", "quarantined"]


def test_a_stamp_far_behind_is_quarantined_and_a_little_late_is_kept():
    evs = [q(T0 + i * S) for i in range(20)]
    evs.insert(10, q(T0 + 9 * S - 3 * S))  # 3 s late: kept (the pipeline clamps it)
    evs.insert(15, q(T0 - 3600 * S))  # an hour behind
    out = run(evs, max_behind_s=10)
    assert stamps(out).count(("quarantined", T0 + 13 * S)) == 1
    assert sum(type(e) is Quote for e in out) == 21  # every frame but the one an hour behind


def test_stamps_beyond_int64_or_negative_never_raise_and_are_quarantined():
    evs = [q(T0), q(10**19), q(2**63), q(-5), q(T0 + S), q(T0 + 2 * S), q(T0 + 3 * S), q(T0 + 4 * S)]
    out = run(evs)
    assert [e for e in out if type(e) is Quote] == [evs[0]] + evs[4:]
    notices = [e for e in out if type(e) is FeedEvent]
    # the first frame waits for confirmation, and the notices with it: stamped when time is known
    assert len(notices) == 3 and all("out of range" in n.detail and n.ts_ns == T0 + 3 * S for n in notices)


def test_an_absurd_first_stamp_does_not_pin_the_clock():
    evs = [q(T0 + 400 * 86_400 * S)] + [q(T0 + i * S) for i in range(6)]
    out = run(evs)
    assert [e for e in out if type(e) is Quote] == evs[1:]
    assert [e.ts_ns for e in out if type(e) is FeedEvent] == [T0 + 3 * S]  # told once a time is known


def test_notices_before_any_time_wait_for_the_first_accepted_frame():
    out = run([q(-1), q(2**64), q(T0), q(T0 + S), q(T0 + 2 * S), q(T0 + 3 * S)])
    assert stamps(out)[:2] == [("quarantined", T0 + 3 * S)] * 2


def test_a_tiny_input_too_short_to_confirm_is_accepted():
    assert run([q(T0), t(T0 + 1)]) == [q(T0), t(T0 + 1)]
    assert stamps(run([q(-1)])) == [("quarantined", 0)]


def test_policy_from_the_session_clock_section():
    p = EventTimePolicy.from_clock({"tick_ms": 100, "max_ahead_s": 5, "confirm_frames": 1})
    assert (p.max_ahead_s, p.max_behind_s, p.confirm_frames) == (5.0, 10.0, 1)
    assert EventTimePolicy.from_clock(None) == EventTimePolicy()


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.one_of(st.integers(0, 2 * S), st.integers(-10**20, 10**20),
                                st.sampled_from([2**63, 2**63 - 1, -1, 365 * 86_400 * S])), max_size=60),
       confirm=st.integers(0, 4), ahead=st.sampled_from([1, 60, 3600]), behind=st.sampled_from([0, 10]),
       start=st.sampled_from([T0, 0, 2**63 - 1]))
def test_every_event_comes_out_once_fed_or_quarantined_and_the_accepted_clock_is_sane(steps, confirm, ahead, behind,
                                                                                      start):
    evs, ts = [], start
    for i, step in enumerate(steps):
        ts = ts + step if abs(step) <= 2 * S else step  # small steps walk, large ones are absolute
        evs.append(q(ts) if i % 2 else t(ts))
    guard = EventTimeGuard(EventTimePolicy(max_ahead_s=ahead, max_behind_s=behind, confirm_frames=confirm))
    out = [o for e in evs for o in guard.push(e)] + guard.flush()
    assert list(guarded(evs, guard.policy)) == out  # the streaming form takes a shortcut: same result
    fed = [e for e in out if type(e) is not FeedEvent]
    notices = [e for e in out if type(e) is FeedEvent]
    assert len(fed) + len(notices) == len(evs) and len(notices) == guard.quarantined
    assert all(0 <= e.ts_ns < 2**63 for e in out)
    assert [id(e) for e in fed] == [id(e) for e in evs if any(e is f for f in fed)]  # order kept
    top = None
    for e in out:  # accepted time never runs back further than max_behind_s, notices never move it
        if type(e) is FeedEvent:
            assert top is None or e.ts_ns <= top
            continue
        assert top is None or e.ts_ns >= top - behind * S
        top = e.ts_ns if top is None else max(top, e.ts_ns)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.one_of(st.integers(-2 * S, 2 * S), st.integers(-10**20, 10**20),
                                st.sampled_from([2**63, 2**63 - 1, -1, 365 * 86_400 * S, 11 * S, 61 * S])),
                      max_size=80),
       cuts=st.lists(st.integers(0, 80), max_size=8),
       confirm=st.integers(0, 4), ahead=st.sampled_from([1, 60, 3600]), behind=st.sampled_from([0, 1, 10]),
       start=st.sampled_from([T0, 0, 2**63 - 1, 2**63 - 30 * S]))
def test_the_guard_a_list_at_a_time_gives_what_it_gives_event_by_event(steps, cuts, confirm, ahead, behind, start):
    """``guarded_blocks`` (the window checked for a whole list at once) against ``push`` one
    event at a time, the lists cut anywhere (empty ones too)."""
    evs, ts = [], start
    for i, step in enumerate(steps):
        ts = ts + step if abs(step) <= 2 * S else step
        evs.append(q(ts) if i % 2 else t(ts))
    policy = EventTimePolicy(max_ahead_s=ahead, max_behind_s=behind, confirm_frames=confirm)
    guard = EventTimeGuard(policy)
    want = [o for e in evs for o in guard.push(e)] + guard.flush()
    bounds = sorted({0, len(evs), *(min(c, len(evs)) for c in cuts)})
    lists = [evs[a:b] for a, b in zip(bounds, bounds[1:], strict=False)] + [[]]
    got = [e for block in guarded_blocks(lists, policy) for e in block]
    assert got == want
    assert [id(e) for e in got if type(e) is not FeedEvent] == [id(e) for e in want if type(e) is not FeedEvent]
