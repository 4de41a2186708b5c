"""The byte reader of frame files (``_frame_events``, ``FrameDecoder.decode_bytes``) against the
text reference (``_frame_events_text``, ``FrameDecoder.decode``): the same events in the same
order and the same counters, on the shipped recordings and on hostile input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.market.decode import FrameDecoder
from framework.market.replay import _frame_events, _frame_events_text, open_replay

RECORDINGS = sorted(DATA.glob("*.frames.gz"))


def _both(path: Path, symbols: set[str] | None = None):
    fast, ref = FrameDecoder(), FrameDecoder()
    got = list(_frame_events(path, symbols, fast))
    want = list(_frame_events_text(path, symbols, ref))
    return got, want, fast.counters.as_dict(), ref.counters.as_dict()


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_shipped_recordings_give_the_same_events_and_counters(path):
    got, want, c_fast, c_ref = _both(path)
    assert len(got) > 30_000
    assert got == want
    assert c_fast == c_ref
    assert list(c_fast["ignored"]) == list(c_ref["ignored"])  # same order of first sight too
    assert c_fast["ignored"]["depth"] > 3_000  # depth frames were skipped by their prefix


def test_symbol_filter_is_the_same(tmp_path):
    path = DATA / "binance-spot-btcusdt-20240808.frames.gz"
    got, want, _, _ = _both(path, {"ETHUSDT"})
    assert got == want == []  # nothing of another symbol leaks through


# -- hostile input ------------------------------------------------------------------------------

def _sample_lines() -> list[bytes]:
    """A few real lines of every kind from the shipped recordings (each without its newline)."""
    out: list[bytes] = []
    for path in RECORDINGS[:3]:
        kinds: dict[bytes, int] = {}
        with gzip.open(path, "rb") as f:
            for line in f:
                key = line.split(b'"', 4)[3] if b'"stream"' in line[:40] else line[20:40]
                if kinds.get(key, 0) < 3:
                    kinds[key] = kinds.get(key, 0) + 1
                    out.append(line.rstrip(b"\n"))
                if len(out) > 60:
                    break
    return out


SAMPLES = _sample_lines()
SKIPPED_BODY = b'"data":{"e":"depthUpdate"'  # a stream the decoder skips without parsing its body

_junk = st.binary(min_size=0, max_size=6) | st.sampled_from(
    [b"\xff", b"\xe2\x82", b"\x00", b"\r", b"\\", b'"', b"}", b"{", b"-", b"\xd9\xa3", b" ", b"1e999",
     b"NaN", b"\\u0041", b"\t", b"\x1c"])


@st.composite
def hostile_line(draw) -> bytes:
    line = draw(st.sampled_from(SAMPLES))
    stamp, _, raw = line.partition(b" ")
    how = draw(st.sampled_from(["keep", "cut", "insert", "replace", "stamp", "bare", "blank", "cr"]))
    skipped = SKIPPED_BODY in raw[:80]
    if how == "cut":
        # the body of a skipped stream is not parsed: cut it where its closing braces go
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] if not skipped else raw[:-draw(st.integers(1, 2))]
    elif how in ("insert", "replace"):
        # a skipped stream's frame is judged by its envelope only: break that, not its body
        hi = 40 if skipped else len(raw)
        at = draw(st.integers(0, hi))
        junk = draw(_junk)
        raw = raw[:at] + junk + raw[at + (len(junk) if how == "replace" else 0):]
    elif how == "stamp":
        stamp = draw(st.sampled_from([b"", b"-5", b"x1723161254", b"1_000", b"\xd9\xa3\xd9\xa3", b"12",
                                      b"1723161254", b"1723161254000", b"99999999999999999999999",
                                      b" 1723161254087891268", b"1723161254087891268\r"]))
    elif how == "bare" and raw.startswith(b'{"stream"'):
        raw = raw[raw.find(b'"data":') + 7:-1]  # the payload without its envelope
    elif how == "blank":
        return draw(st.sampled_from([b"", b"   ", b"\r", b"\x1c", b"\t \x0b"]))
    elif how == "cr":
        raw += b"\r" * draw(st.integers(1, 2))
    return stamp + b" " + raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(hostile_line(), min_size=1, max_size=12),
       ending=st.sampled_from([b"\n", b"", b"\r\n"]), gz=st.booleans())
def test_hostile_input_gives_the_same_events_and_counters(tmp_path, lines, ending, gz):
    body = b"\n".join(lines) + ending
    path = tmp_path / ("f.frames.gz" if gz else "f.frames")
    path.write_bytes(gzip.compress(body) if gz else body)
    got, want, c_fast, c_ref = _both(path)
    assert got == want
    assert c_fast == c_ref
    for key in ("events", "ignored", "malformed"):
        assert list(c_fast[key]) == list(c_ref[key])


def test_gzip_cut_short_ends_at_the_last_complete_line(tmp_path):
    lines = (DATA / "binance-spot-btcusdt-20240808.frames.gz").read_bytes()
    whole = gzip.decompress(lines)[:2_000_000]
    blob = gzip.compress(whole)
    path = tmp_path / "cut.frames.gz"
    path.write_bytes(blob[: len(blob) * 2 // 3])  # no trailer, cut inside a block
    got, want, c_fast, c_ref = _both(path)
    assert len(got) > 1_000 and got == want and c_fast == c_ref


def test_a_skipped_stream_is_skipped_unparsed_yet_judged_as_the_text_reader_does(tmp_path):
    """A frame of a stream the session does not use is counted as ignored without its body being
    parsed into objects; one whose JSON is broken is malformed, as the text reader says. A frame
    of a used stream is always decoded, whatever its stream name says."""
    depth = b'1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","u":5}}'
    broken = b'1723161253937085769 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",oops}}'
    quote = (b'1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT",'
             b'"b":"100.0","B":"1","a":"100.5","A":"2"}}')
    disguised = (b'1723161254087891269 {"stream":"btcusdt@bookTicker2","data":{"u":2,"s":"BTCUSDT",'
                 b'"b":"100.0","B":"1","a":"100.5","A":"2"}}')  # unknown kind: decoded, malformed
    path = tmp_path / "f.frames"
    path.write_bytes(b"\n".join([depth, broken, quote, disguised]) + b"\n")
    dec = FrameDecoder()
    evs = list(open_replay(path, decoder=dec))
    assert [type(e).__name__ for e in evs] == ["FeedEvent", "Quote", "FeedEvent"]
    assert evs[0].kind == "malformed" and evs[0].detail.startswith("bad json")
    assert evs[1].bid == 100.0 and evs[2].detail.startswith("unknown stream")
    assert dec.counters.ignored == {"depth": 1} and dec.counters.frames == 4


# -- a chunk of plain frames decoded at once -----------------------------------------------------

WARM_UP = [ln for ln in SAMPLES if b'"stream":"' in ln[:40]]  # every kind of plain frame once or more


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(hostile_line() | st.sampled_from(SAMPLES), min_size=1, max_size=30),
       chunk=st.integers(64, 3000), symbols=st.sampled_from([None, {"BTCUSDT"}, {"ETHUSDT", "BTCUSDT"}, {"ETHUSDT"}]))
def test_chunks_decoded_at_once_give_the_same_events_and_counters(tmp_path, monkeypatch, lines, chunk, symbols):
    """Small chunks, after real frames of every kind (so the counters know their keys and clean
    chunks are decoded at once), then hostile lines: the same events and counters as the text
    reader, whichever chunks were decoded at once and whichever line by line."""
    import framework.market.replay as replay

    monkeypatch.setattr(replay, "READ_CHUNK", chunk)
    path = tmp_path / "f.frames"
    path.write_bytes(b"\n".join(WARM_UP + lines + WARM_UP) + b"\n")
    got, want, c_fast, c_ref = _both(path, symbols)
    assert got == want
    assert c_fast == c_ref
    for key in ("events", "ignored", "malformed"):
        assert list(c_fast[key]) == list(c_ref[key])


def test_a_plain_chunk_is_decoded_at_once_or_not_at_all():
    """``decode_plain_block`` gives what ``decode_bytes`` gives frame by frame; a chunk with one
    frame it does not take whole is refused without counting anything."""
    frames = [ln.partition(b" ") for ln in WARM_UP]
    stamps = [int(s) for s, _, _ in frames]
    raws = [raw for _, _, raw in frames]
    names = [raw[11:raw.index(b'"', 11)] for raw in raws]
    one_by_one = FrameDecoder()
    want = [ev for ev in map(one_by_one.decode_bytes, raws, stamps) if ev is not None]
    dec = FrameDecoder()
    assert dec.decode_plain_block(stamps, names, raws, None) is None  # keys not yet seen: frame by frame
    for raw, t in zip(raws, stamps, strict=True):
        dec.decode_bytes(raw, t)
    before = dec.counters.as_dict()
    got = dec.decode_plain_block(stamps, names, raws, None)
    assert got == want and len(got) > 5
    after = dec.counters.as_dict()
    assert after["frames"] == 2 * before["frames"] and after["events"] == {k: 2 * v for k, v in before["events"].items()}
    crossed = raws[:]
    i = next(i for i, n in enumerate(names) if n.endswith(b"@bookTicker"))
    crossed[i] = crossed[i].replace(b'"b":"', b'"b":"9', 1)  # bid above ask: malformed, said frame by frame
    assert dec.decode_plain_block(stamps, names, crossed, None) is None
    assert dec.counters.as_dict() == after
    assert dec.decode_plain_block(stamps, names, raws, {"ETHUSDT"}) == [ev for ev in want if ev.symbol == "ETHUSDT"]
