"""Frame fuzzing: hostile lines mixed into real recorded frames, through both replay paths.

Each example takes real frames from data/, mixes in generated bad input (wrong types,
NaN/inf/negative/zero numbers, crossed books, empty symbols, duplicates, out-of-order and absurd
stamps, unknown streams, truncated lines, garbage bytes), writes a frames file and replays it
event by event and a block at a time. It asserts: no exception, no hang (a watchdog alarm far
above the time an example takes: a hang detector, not a speed test), both logs identical, and
every input that must be refused counted as a `malformed` or `quarantined` feed incident.

The default run is short. ``EXECLAB_FUZZ_EXAMPLES=N`` (and ``EXECLAB_FUZZ_SEED``) runs a larger
seeded campaign for nightly use; with ``-s`` the figures are printed at the end. Examples are
not shrunk (a whole session per try would take minutes): a failure prints the splices.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from framework.market.replay import read_frames
from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import Runtime, run_events
from framework.runtime.sources import replay_events
from framework.spec.session import load_session
from tests.support import REPO

S = 1_000_000_000
EXAMPLES = int(os.environ.get("EXECLAB_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("EXECLAB_FUZZ_SEED", "20261130"))
WATCHDOG_S = 120  # an example takes a second or two: only a hang reaches this

SPOT = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 1500))
USDM = [raw for _, raw in itertools.islice(read_frames(REPO / "data" / "binance-usdm-btcusdt-20240808.frames.gz"), 300)
        if "bookTicker" in raw or "@trade" in raw or "aggTrade" in raw]
BOOK = next(raw for _, raw in SPOT if "bookTicker" in raw)
TRADE = next(raw for _, raw in SPOT if "@trade" in raw)
FIGURES = {"examples": 0, "frames": 0, "hostile": 0, "crashes": 0, "hangs": 0, "mismatches": 0}


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    print(f"\nframe fuzz: {FIGURES['examples']} examples, {FIGURES['frames']} frames fuzzed "
          f"({FIGURES['hostile']} hostile), crashes {FIGURES['crashes']}, hangs {FIGURES['hangs']}, "
          f"path mismatches {FIGURES['mismatches']}")


# -- strategies ---------------------------------------------------------------------------------
json_junk = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                      st.text(max_size=8), st.just([]), st.just({}))
bad_numbers = st.sampled_from(["NaN", "nan", "inf", "-inf", "Infinity", "-1", "0", "-0", "1e400", "", "abc",
                               "0x10", "1,5"])


def _with(raw: str, **changes) -> str:
    msg = json.loads(raw)
    msg["data"].update(changes)
    return json.dumps(msg)


# (frame text or bytes, whether it must be refused)
@st.composite
def hostile(draw, stamp: int):
    kind = draw(st.sampled_from(["wrong type", "bad number", "crossed", "no symbol", "duplicate", "late",
                                 "absurd stamp", "text stamp", "unknown stream", "truncated", "garbage",
                                 "usdm"]))
    base = draw(st.sampled_from([BOOK, TRADE]))
    if kind == "wrong type":
        field = draw(st.sampled_from(["b", "a", "B", "A", "u"] if base is BOOK else ["p", "q", "t", "T", "m", "E"]))
        return [(stamp, _with(base, **{field: draw(json_junk)}))], False  # "1" or 1 may still decode
    if kind == "bad number":
        field = draw(st.sampled_from(["b", "a"] if base is BOOK else ["p"]))
        value = draw(bad_numbers)
        refused = value not in ("0x10",)  # all of these are no price; "0x10" is not a number either
        return [(stamp, _with(base, **{field: value}))], refused
    if kind == "crossed":
        bid = draw(st.floats(1.0, 1e6))
        return [(stamp, _with(BOOK, b=repr(bid * 1.01), a=repr(bid)))], True
    if kind == "no symbol":
        return [(stamp, _with(base, s=draw(st.sampled_from(["", " ", "BTC USDT", "ＢＴＣ", "A" * 40]))))], True
    if kind == "duplicate":
        return [(stamp, base)] * draw(st.integers(2, 4)), False
    if kind == "late":
        return [(stamp - draw(st.integers(0, 30 * S)), base)], False  # quarantined only beyond 10 s
    if kind == "absurd stamp":
        return [(draw(st.sampled_from([10**19, 2**63, 2**64, -1, -5 * S])), base)], True
    if kind == "text stamp":
        return [(draw(st.sampled_from(["1e19", "abc", "12.5", "٣٤٥", "-"])), base)], True
    if kind == "unknown stream":
        return [(stamp, json.dumps({"stream": draw(st.sampled_from(["btcusdt@nonsense", "", "@", "x@y@z"])),
                                    "data": json.loads(base)["data"]}))], True
    if kind == "truncated":
        raw = draw(st.sampled_from([BOOK, TRADE, *USDM[:5]]))
        return [(stamp, raw[:draw(st.integers(0, len(raw) - 1))])], True
    if kind == "garbage":
        junk = draw(st.binary(min_size=1, max_size=80)).replace(b"\n", b"")
        return [(stamp, junk or b"\x00")], True
    return [(stamp, draw(st.sampled_from(USDM)))], False  # another market's format, same symbol


@st.composite
def splices(draw):
    """Hostile lines for distinct places in the real frames (at least 5 real frames apart, so
    absurd stamps never confirm one another as a real gap would): [(index, lines, refused)]."""
    n = len(SPOT)
    spots = draw(st.lists(st.integers(0, n // 5 - 1), min_size=1, max_size=40, unique=True))
    ahead = draw(st.booleans())
    out = []
    for pos in sorted(spots, reverse=True):
        at = pos * 5
        if ahead and pos % 7 == 0:  # one stamp far ahead, contradicted by the frames after it
            bad, must = [(SPOT[at][0] + draw(st.integers(120, 300 * 86_400)) * S, BOOK)], True
        else:
            bad, must = draw(hostile(SPOT[at][0]))
        out.append((at, bad, must))
    # and maybe a real gap in the recording (the recorder offline), which must be kept
    gap_s = draw(st.sampled_from([0, 0, 90, 3600, 400 * 86_400]))
    return out, (draw(st.integers(100, n - 100)), gap_s * S)


def splice(drawn) -> tuple[list, int, int]:
    spliced, (gap_at, gap) = drawn
    lines: list = SPOT[:gap_at] + [(ts + gap, raw) for ts, raw in SPOT[gap_at:]]
    hostile_count = refused = 0
    for at, bad, must in spliced:  # from the end: earlier indexes stay valid
        if at >= gap_at:  # stamped as the frames around it
            bad = [(stamp + gap if isinstance(stamp, int) else stamp, raw) for stamp, raw in bad]
        lines[at:at] = bad
        hostile_count += len(bad)
        refused += len(bad) if must else 0
    return lines, hostile_count, refused


def _write(path, lines) -> None:
    with gzip.open(path, "wb", compresslevel=1) as f:
        for stamp, raw in lines:
            f.write(str(stamp).encode() + b" " + (raw if isinstance(raw, bytes) else raw.encode("utf-8")) + b"\n")


def _run(session, path, blocks: bool) -> list[str]:
    records: list = []
    runtime = Runtime(session, records.append)
    events, _ = replay_events(session, [str(path)])
    if blocks:
        BlockRunner(runtime, block_rows=256).run(events)
    else:
        run_events(runtime, events)
    records.append({"summary": runtime.finish()})
    return [json.dumps(r, sort_keys=True, default=str) for r in records]


class Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise Hang(f"an example ran for more than {WATCHDOG_S} s")


SESSION = load_session(REPO / "configs" / "default.yaml")


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(spliced=splices())
def test_hostile_frames_never_crash_never_hang_are_counted_and_both_paths_agree(tmp_path, spliced):
    lines, hostile_count, refused = splice(spliced)
    path = tmp_path / "fuzz.frames.gz"
    _write(path, lines)
    FIGURES["examples"] += 1
    FIGURES["frames"] += len(lines)
    FIGURES["hostile"] += hostile_count
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(WATCHDOG_S)
    try:
        scalar = _run(SESSION, path, blocks=False)
        fast = _run(SESSION, path, blocks=True)
    except Hang:
        FIGURES["hangs"] += 1
        raise
    except Exception:
        FIGURES["crashes"] += 1
        raise
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if scalar != fast:
        FIGURES["mismatches"] += 1
    assert scalar == fast
    summary = json.loads(scalar[-1])["summary"]
    flagged = summary["feed"].get("malformed", 0) + summary["feed"].get("quarantined", 0)
    assert flagged >= refused, (summary["feed"], refused)
