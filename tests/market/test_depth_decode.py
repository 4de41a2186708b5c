"""Diff-depth and snapshot decoding: typed, and never raises."""

from __future__ import annotations

import json

import pytest
from conftest import SPOT_BTC
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.market.depth import DepthError, DepthSnapshot, DepthUpdate, decode_depth
from framework.market.replay import read_frames

SPOT = {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 10, "u": 12,
        "b": [["61737.63000000", "0.00000000"], ["61730.17", "1.5"]],
        "a": [["61837.64000000", "1.54698000"]]}
USDM = {"e": "depthUpdate", "E": 1723161256299, "T": 1723161256298, "s": "BTCUSDT",
        "U": 20, "u": 25, "pu": 19, "b": [["58710.20", "0.014"]], "a": []}


def frame(stream: str, data) -> str:
    return json.dumps({"stream": stream, "data": data})


def test_spot_diff_in_envelope():
    d = decode_depth(frame("btcusdt@depth@100ms", SPOT), 7)
    assert isinstance(d, DepthUpdate)
    assert (d.recv_ns, d.symbol, d.first_id, d.final_id, d.prev_final_id) == (7, "BTCUSDT", 10, 12, -1)
    assert d.bids == ((61737.63, 0.0), (61730.17, 1.5))
    assert d.asks == ((61837.64, 1.54698),)
    assert not d.futures and d.transaction_time_ms == 0


@pytest.mark.parametrize("stream", ["btcusdt@depth@0ms", "btcusdt@depth@100ms",
                                    "btcusdt@depth@250ms", "btcusdt@depth@500ms", "btcusdt@depth"])
def test_usdm_diff_every_speed(stream):
    d = decode_depth(frame(stream, USDM), 1)
    assert isinstance(d, DepthUpdate) and d.futures
    assert (d.first_id, d.final_id, d.prev_final_id, d.transaction_time_ms) == (20, 25, 19, 1723161256298)


def test_bare_diff_and_snapshot():
    assert isinstance(decode_depth(json.dumps(SPOT), 1), DepthUpdate)
    s = decode_depth('{"lastUpdateId": 99, "bids": [["1.5", "2"]], "asks": [["1.6", "3"]]}', 5)
    assert isinstance(s, DepthSnapshot)
    assert (s.last_update_id, s.bids, s.asks, s.symbol) == (99, ((1.5, 2.0),), ((1.6, 3.0),), "")


def test_recorded_snapshot_line_8():
    lines = list(read_frames(SPOT_BTC))
    s = decode_depth(lines[7][1], lines[7][0])
    assert isinstance(s, DepthSnapshot)
    assert s.last_update_id == 50093239218 and len(s.bids) == 1000 and len(s.asks) == 1000
    assert s.bids[0] == (61837.63, 3.78826)


@pytest.mark.parametrize("raw", [
    '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}',
    '{"stream":"btcusdt@trade","data":{}}', '{"result":null,"id":1}', "not json", "", "[]",
    '{"e":"trade"}'])
def test_not_depth_gives_none(raw):
    assert decode_depth(raw, 0) is None


@pytest.mark.parametrize("data, reason", [
    ({**SPOT, "U": None}, "wrong type"),
    ({k: v for k, v in SPOT.items() if k != "u"}, "missing field"),
    ({**SPOT, "b": [["abc", "1"]]}, "wrong type"),
    ({**SPOT, "b": [["0", "1"]]}, "bad price"),
    ({**SPOT, "a": [["NaN", "1"]]}, "bad price"),
    ({**SPOT, "a": [["1", "-1"]]}, "bad qty"),
    ({**SPOT, "a": [["1", "Infinity"]]}, "bad qty"),
    ({**SPOT, "U": 13}, "bad update ids"),
    ({**USDM, "pu": 20}, "bad update ids"),
    ({**SPOT, "b": [["1"]]}, "wrong type"),
])
def test_malformed_depth_gives_a_reason(data, reason):
    e = decode_depth(frame("btcusdt@depth@100ms", data), 3)
    assert isinstance(e, DepthError)
    assert e.reason == reason and e.symbol == "BTCUSDT" and e.excerpt


def test_truncated_and_dataless():
    raw = frame("btcusdt@depth@100ms", SPOT)
    assert decode_depth('{"stream":"btcusdt@depth@100ms"}', 0).reason == "envelope without data"
    assert decode_depth(raw[:-1], 0) is None  # not JSON: not judged here (the market decoder reports it)
    bad = decode_depth('{"lastUpdateId": 5, "bids": [["1", "x"]], "asks": []}', 0)
    assert isinstance(bad, DepthError) and bad.reason == "wrong type"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.binary(max_size=60),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                              lambda c: st.lists(c, max_size=3) | st.dictionaries(
                                  st.sampled_from(["e", "U", "u", "pu", "b", "a", "s", "E",
                                                   "lastUpdateId", "bids", "asks", "stream", "data"]),
                                  c, max_size=6), max_leaves=12).map(json.dumps)))
def test_never_raises(raw):
    out = decode_depth(raw, 0)
    assert out is None or isinstance(out, (DepthUpdate, DepthSnapshot, DepthError))
