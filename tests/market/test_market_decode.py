"""FrameDecoder: field mapping, ignored kinds, malformed frames, never raising."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from framework.market.decode import FrameDecoder
from framework.market.events import FeedEvent, Quote, Trade

SPOT_TRADE_OLD = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT",'
                  '"t":3735683259,"p":"61837.63000000","q":"0.02000000","b":1,"a":2,'
                  '"T":1723161255342,"m":true,"M":true}}')
USDM_BOOK = ('{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,'
             '"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510",'
             '"T":1723161256313,"E":1723161256314}}')
USDM_TRADE = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256321,'
              '"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}')
SPOT_AGG = ('{"e":"aggTrade","E":1,"s":"ethusdt","a":26129,"p":"0.01633102","q":"4.70443515",'
            '"f":27781,"l":27781,"T":2,"m":true,"M":true}')
SPOT_BOOK_BARE = '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'


def test_old_spot_trade_with_order_ids_decodes():
    ev = FrameDecoder().decode(SPOT_TRADE_OLD, 7)
    assert ev == Trade(7, "BTCUSDT", 61837.63, 0.02, True, 3735683259, 1723161255342,
                       1723161255343, False, "")
    assert not ev.aggressor_buy


def test_futures_book_ticker_keeps_exchange_times():
    ev = FrameDecoder().decode(USDM_BOOK, 9)
    assert ev == Quote(9, "BTCUSDT", 61800.2, 2.507, 61800.3, 2.51, 5123107839020,
                       1723161256314, 1723161256313)


def test_futures_trade_keeps_order_type_and_has_no_M():
    ev = FrameDecoder().decode(USDM_TRADE, 1)
    assert ev.order_type == "MARKET" and ev.trade_id == 5266583935 and ev.aggressor_buy


def test_bare_agg_trade_and_bare_spot_book_ticker_decode_and_upper_case_symbols():
    d = FrameDecoder()
    agg = d.decode(SPOT_AGG, 1)
    assert agg.aggregated and agg.trade_id == 26129 and agg.symbol == "ETHUSDT"
    q = d.decode(SPOT_BOOK_BARE, 2)
    assert q.symbol == "BNBUSDT" and q.update_id == 400900217 and q.event_time_ms == 0
    assert d.counters.events == {"trade": 1, "quote": 1}


def test_non_market_frames_are_ignored_and_counted_by_kind():
    d = FrameDecoder()
    frames = [
        '{"result":null,"id":1}',
        '{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}',
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}',
        '{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}',
    ]
    assert [d.decode(f, 1) for f in frames] == [None] * 4
    assert d.counters.ignored == {"ack": 1, "snapshot": 1, "depth": 2}
    assert d.counters.malformed == {} and d.counters.frames == 4


def test_malformed_frames_become_feed_events_with_reason_and_excerpt():
    d = FrameDecoder()
    book = '{{"stream":"btcusdt@bookTicker","data":{{"u":1,"s":"BTCUSDT","b":{b},"B":"1","a":{a},"A":{A}}}}}'
    cases = {
        SPOT_TRADE_OLD[:50]: "bad json",
        '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT"}}': "missing field",
        '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":true,"q":"1","T":1,"m":true}}': "wrong type",
        '{"stream":"btcusdt@nonsense","data":{}}': "unknown stream",
        book.format(b='"NaN"', a='"1"', A='"1"'): "bad price",
        book.format(b='"inf"', a='"1"', A='"1"'): "bad price",
        book.format(b='"0"', a='"1"', A='"1"'): "bad price",
        book.format(b='"-1"', a='"1"', A='"1"'): "bad price",
        book.format(b='"1"', a='"2"', A='"-0.5"'): "bad qty",
        book.format(b='"2.5"', a='"2.4"', A='"1"'): "crossed book",
        '[1, 2, 3]': "wrong type",
        '': "bad json",
    }
    for frame, reason in cases.items():
        ev = d.decode(frame, 42)
        assert type(ev) is FeedEvent and ev.kind == "malformed", frame
        assert ev.detail.startswith(reason + ": "), (frame, ev.detail)
        assert len(ev.detail) <= len(reason) + 2 + 120
        assert ev.ts_ns == 42
    assert d.decode(book.format(b='"2.5"', a='"2.4"', A='"1"'), 1).symbol == "BTCUSDT"
    assert sum(d.counters.malformed.values()) == len(cases) + 1
    assert d.counters.malformed["bad price"] == 4


def test_a_quote_or_trade_without_a_plain_symbol_is_malformed_not_an_event_of_no_symbol():
    """An event of symbol "" belongs to no pipeline: the replay paths used to disagree on it."""
    d = FrameDecoder()
    book = '{{"u":1,"s":{s},"b":"1","B":"1","a":"2","A":"1"}}'
    trade = '{{"e":"trade","E":1,"s":{s},"t":1,"p":"1","q":"1","T":1,"m":true}}'
    for bad in ('""', '"btc usdt"', '"BTC/USDT"', '"ＢＴＣ"', '"' + "A" * 33 + '"'):
        for frame in (book.format(s=bad), trade.format(s=bad),
                      '{"stream":"btcusdt@bookTicker","data":' + book.format(s=bad) + "}"):
            ev = d.decode(frame, 7)
            assert type(ev) is FeedEvent and ev.detail.startswith("bad symbol: "), frame
    assert d.counters.malformed == {"bad symbol": 15}
    assert type(d.decode(book.format(s='"bnbusdt"'), 7)) is Quote


def test_a_trade_of_no_quantity_is_malformed():
    ev = FrameDecoder().decode('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"0","T":1,"m":true}', 7)
    assert type(ev) is FeedEvent and ev.detail.startswith("bad qty: ")


def test_long_garbage_excerpt_is_short():
    ev = FrameDecoder().decode("{" + "x" * 5000, 1)
    assert ev.kind == "malformed" and len(ev.detail) < 140


def test_server_shutdown_event_is_a_feed_event():
    ev = FrameDecoder().decode('{"e":"serverShutdown","E":1}', 5)
    assert ev == FeedEvent(5, "server_shutdown", detail='{"e":"serverShutdown","E":1}')


# --- properties --------------------------------------------------------------------------------

prices = st.decimals(min_value="0.00000001", max_value="9999999", places=8, allow_nan=False,
                     allow_infinity=False)
qtys = st.decimals(min_value="0", max_value="99999999", places=8, allow_nan=False,
                   allow_infinity=False)
symbols = st.from_regex(r"[A-Za-z0-9]{2,12}", fullmatch=True)
ints = st.integers(min_value=0, max_value=2**62)


@settings(max_examples=300, deadline=None)
@given(sym=symbols, t=ints, e=ints, tt=ints, p=prices, q=qtys, m=st.booleans(),
       agg=st.booleans(), envelope=st.booleans(), x=st.sampled_from(["", "MARKET", "LIQUIDATION"]))
def test_random_valid_trades_decode_to_their_fields(sym, t, e, tt, p, q, m, agg, envelope, x):
    data = {"e": "aggTrade" if agg else "trade", "E": e, "s": sym, "p": str(p), "q": str(q),
            "T": tt, "m": m}
    data["a" if agg else "t"] = t
    if agg:
        data.update(f=1, l=2)
    if x:
        data["X"] = x
    stream = f"{sym.lower()}@{data['e']}"
    frame = json.dumps({"stream": stream, "data": data} if envelope else data)
    ev = FrameDecoder().decode(frame, 123)
    if p == 0 or q == 0:  # a print of nothing at no price did not happen
        assert ev.kind == "malformed"
        return
    assert type(ev) is Trade
    assert (ev.ts_ns, ev.symbol, ev.price, ev.qty, ev.buyer_is_maker, ev.trade_id,
            ev.trade_time_ms, ev.event_time_ms, ev.aggregated, ev.order_type) == (
        123, sym.upper(), float(str(p)), float(str(q)), m, t, tt, e, agg, x)
    assert repr(ev.price) == repr(float(p))  # exact decimal text survives


@settings(max_examples=300, deadline=None)
@given(sym=symbols, u=ints, b=prices, spread=prices, bq=qtys, aq=qtys, futures=st.booleans(),
       e=ints, tt=ints)
def test_random_valid_book_tickers_decode_to_their_fields(sym, u, b, spread, bq, aq, futures, e, tt):
    a = b + spread
    data = {"u": u, "s": sym, "b": str(b), "B": str(bq), "a": str(a), "A": str(aq)}
    if futures:
        data.update(e="bookTicker", T=tt, E=e)
    frame = json.dumps({"stream": f"{sym.lower()}@bookTicker", "data": data})
    ev = FrameDecoder().decode(frame, 5)
    assert type(ev) is Quote
    assert (ev.symbol, ev.bid, ev.bid_qty, ev.ask, ev.ask_qty, ev.update_id) == (
        sym.upper(), float(b), float(bq), float(a), float(aq), u)
    assert (ev.event_time_ms, ev.transaction_time_ms) == ((e, tt) if futures else (0, 0))
    assert ev.bid <= ev.ask and math.isfinite(ev.mid)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["stream", "data", "e", "E", "s", "t", "p", "q", "T", "m", "u", "b",
                         "B", "a", "A", "result", "id", "lastUpdateId", "X"]), inner, max_size=8),
    max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(junk=st.one_of(st.text(max_size=200), st.binary(max_size=200),
                      json_values.map(lambda v: json.dumps(v)),
                      st.sampled_from([USDM_BOOK, USDM_TRADE, SPOT_AGG, SPOT_TRADE_OLD]).flatmap(
                          lambda f: st.integers(0, len(f)).map(lambda n: f[:n]))))
def test_random_garbage_never_raises_and_is_always_accounted_for(junk):
    d = FrameDecoder()
    ev = d.decode(junk, 1)
    c = d.counters
    assert c.frames == 1
    assert sum(c.events.values()) + sum(c.ignored.values()) == 1
    assert ev is None or type(ev) in (Trade, Quote, FeedEvent)
    if type(ev) is FeedEvent and ev.kind == "malformed":
        assert sum(c.malformed.values()) == 1
    if type(ev) is Quote:
        assert 0 < ev.bid <= ev.ask and math.isfinite(ev.ask)
    if type(ev) is Trade:
        assert ev.price > 0 and math.isfinite(ev.price) and ev.qty >= 0
