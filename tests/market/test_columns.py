"""A block of frames decoded into columns (``FrameDecoder.decode_columns``, ``EventBlock``) against
the frame-by-frame decoder (``decode_bytes``): the same events, the same counters, or a refusal
that counts nothing; on real frames and on hostile payloads inside well-formed envelopes."""

from __future__ import annotations

import gzip

import numpy as np
from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.market.columns import OTHER, QUOTE, TRADE, BlockStream, EventBlock
from framework.market.decode import FrameDecoder
from framework.market.events import FeedEvent, Quote, Trade
from framework.market.replay import _PLAIN_LINE

RECORDINGS = sorted(DATA.glob("*.frames.gz"))


def _plain_lines(path, n: int) -> list[bytes]:
    out = []
    with gzip.open(path, "rb") as f:
        for line in f:
            if line.startswith(b"17") and b'{"stream":"' in line[:40]:
                out.append(line.rstrip(b"\n"))
            if len(out) >= n:
                break
    return out


SPOT = _plain_lines(RECORDINGS[0], 400)  # spot BTCUSDT: quotes, trades, depth
USDM = _plain_lines(RECORDINGS[2], 400)  # USD-M BTCUSDT: quotes with times, trades with order types


def _split(lines: list[bytes]):
    found = [_PLAIN_LINE.match(ln).groups() for ln in lines]
    stamps, raws, names, payloads = (list(c) for c in zip(*found, strict=True))
    return [int(s) for s in stamps], names, raws, payloads


def _warm(dec: FrameDecoder, lines: list[bytes]) -> None:
    """Frame by frame first, so the counters know every key (as a replay's first lines do)."""
    stamps, _, raws, _ = _split(lines)
    for raw, t in zip(raws, stamps, strict=True):
        dec.decode_bytes(raw, t)


def _frame_by_frame(lines: list[bytes], symbols):
    dec = FrameDecoder()
    _warm(dec, SPOT + USDM)
    stamps, _, raws, _ = _split(lines)
    events = [dec.decode_bytes(raw, t) for raw, t in zip(raws, stamps, strict=True)]
    keep = [ev for ev in events if ev is not None and (symbols is None or ev.symbol in symbols)]
    return keep, events, dec.counters.as_dict()


def _columns(lines: list[bytes], symbols):
    dec = FrameDecoder()
    _warm(dec, SPOT + USDM)
    before = dec.counters.as_dict()
    got = dec.decode_columns(*_split(lines), symbols)
    return got, before, dec.counters.as_dict()


def test_real_frames_give_the_same_events_and_counters():
    for lines in (SPOT, USDM):
        for symbols in (None, {"BTCUSDT"}, {"ETHUSDT"}):
            want, _, c_want = _frame_by_frame(lines, symbols)
            got, _, c_got = _columns(lines, symbols)
            assert type(got) is EventBlock
            assert list(got) == want and c_got == c_want
            assert len(got) == len(want) and (symbols == {"ETHUSDT"}) == (len(want) == 0)
            # the columns hold what the events hold
            q = [i for i, ev in enumerate(want) if type(ev) is Quote]
            t = [i for i, ev in enumerate(want) if type(ev) is Trade]
            assert got.ts.tolist() == [ev.ts_ns for ev in want]
            assert got.book[q].tolist() == [[ev.bid, ev.bid_qty, ev.ask, ev.ask_qty] for ev in (want[i] for i in q)]
            assert got.prints[t].tolist() == [[ev.price, ev.qty] for ev in (want[i] for i in t)]
            assert got.maker[t].tolist() == [ev.buyer_is_maker for ev in (want[i] for i in t)]
            assert [got.symbols[s] for s in got.sym.tolist()] == [ev.symbol for ev in want]
            assert set(got.kind.tolist()) <= {QUOTE, TRADE}


def test_a_row_gives_the_same_object_every_time_and_through_any_cut():
    got, _, _ = _columns(SPOT, None)
    cut = got[10:50]
    some = got.take(np.array([3, 12, 40]))
    assert cut[2] is got[12] is some[1]  # built once, shared by the blocks cut from it
    assert list(got[5:9]) == [got[i] for i in range(5, 9)]
    again = EventBlock.from_events(list(got))
    for name in ("ts", "kind", "sym", "book", "prints", "maker"):
        assert getattr(again, name).tolist() == getattr(got, name).tolist()
    assert EventBlock.from_events(again) is again


def test_events_of_any_kind_as_a_block():
    evs = [Quote(5, "BTCUSDT", 1.0, 2.0, 3.0, 4.0, 7), FeedEvent(6, "malformed", "ETHUSDT", "x"),
           Trade(7, "ETHUSDT", 9.0, 0.5, True, 1, 2, 3)]
    b = EventBlock.from_events(evs)
    assert b.kind.tolist() == [QUOTE, OTHER, TRADE]
    assert [b.symbol_of(i) for i in range(3)] == ["BTCUSDT", "ETHUSDT", "ETHUSDT"]
    assert b.prints[2].tolist() == [9.0, 0.5] and b.maker.tolist() == [False, False, True]
    assert list(b) == evs and b[1] is evs[1]


def test_a_stream_of_blocks_is_read_either_way():
    blocks = [[1, 2], [], [3]]
    assert list(BlockStream(iter(blocks))) == [1, 2, 3]
    assert list(BlockStream(iter(blocks)).blocks) == blocks


# -- hostile payloads inside well-formed envelopes -------------------------------------------------

_VALUES = [b'"0"', b'"-1"', b'"1e999"', b'"NaN"', b'"abc"', b"true", b"null", b"1", b'"0.0"', b'"99999999"',
           b'"1"', b'"btcusdt"', b'""', b'"BTC\\u0055SDT"', b'"BTC-USDT"', b"18446744073709551616", b"-3",
           b'{"x":1}', b"[1]", b'"\\"}"', b'"}', b'{"', b"false"]


@st.composite
def hostile_payload_line(draw) -> bytes:
    line = draw(st.sampled_from(SPOT + USDM))
    stamp, _, raw = line.partition(b" ")
    if b"@depth" in raw[:50]:  # a skipped stream: judged by its envelope only
        tail = draw(st.sampled_from([b"", b',"stream":null', b',"stream":"ethusdt@depth"', b',"data":{}',
                                     b',"data":[', b',"x":"\\"']))
        return stamp + b" " + raw[:-1] + tail + b"}"
    how = draw(st.sampled_from(["keep", "value", "drop", "dup", "extra", "swap", "split"]))
    head, _, payload = raw.partition(b'"data":')
    payload = payload[:-1]
    keys = [k for k in (b'"u":', b'"s":', b'"b":', b'"B":', b'"a":', b'"A":', b'"p":', b'"q":', b'"m":',
                        b'"t":', b'"T":', b'"E":', b'"X":') if k in payload]
    key = draw(st.sampled_from(keys))
    at = payload.index(key) + len(key)
    end = min(i for i in (payload.find(b",", at), payload.find(b"}", at)) if i >= 0)
    if how == "value":
        payload = payload[:at] + draw(st.sampled_from(_VALUES)) + payload[end:]
    elif how == "drop":
        payload = payload[:at - len(key)] + payload[end + 1:] if payload[end:end + 1] == b"," else payload
    elif how == "dup":
        payload = payload[:-1] + b"," + key + draw(st.sampled_from(_VALUES)) + b"}"
    elif how == "extra":
        payload = b'{"zz":' + draw(st.sampled_from(_VALUES)) + b"," + payload[1:]
    elif how == "swap":  # a quote's payload under a trade's stream name, or the other way
        other = draw(st.sampled_from(SPOT + USDM))
        payload = other.partition(b'"data":')[2][:-1]
    elif how == "split":  # payloads whose joined text could pair up across frames
        payload = draw(st.sampled_from([b'{"s":"}', b'{"u":1,"s":"', b'{"x":"},{"u":1}', b"{}"]))
    return stamp + b" " + head + b'"data":' + payload + b"}"


@settings(max_examples=200, deadline=None)
@given(picks=st.lists(hostile_payload_line() | st.sampled_from(SPOT + USDM), min_size=1, max_size=40),
       symbols=st.sampled_from([None, {"BTCUSDT"}, {"ETHUSDT"}]))
def test_hostile_payloads_give_the_same_events_or_a_refusal_that_counts_nothing(picks, symbols):
    lines = [ln for ln in picks if _PLAIN_LINE.match(ln) and _PLAIN_LINE.match(ln).group(1)]
    if not lines:
        return
    want, every, c_want = _frame_by_frame(lines, symbols)
    got, before, after = _columns(lines, symbols)
    if got is None:
        assert after == before
        # refused only where one frame is not a plain quote, trade or skipped stream
        assert any(type(ev) is FeedEvent for ev in every)
        return
    assert list(got) == want
    assert after == c_want
