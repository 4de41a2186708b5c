"""The live source against the fake Binance server on loopback: no socket mocks."""

from __future__ import annotations

import itertools

from conftest import SPOT_BTC
from market_helpers import feed, next_event, quote_frame, run, trade_frame

from framework.market.binance import BinanceSource, RateLimiter, plan_connections
from framework.market.events import FeedEvent, Quote, Trade
from framework.market.fake_server import FakeBinance
from framework.market.replay import open_replay, read_frames

FAST = dict(backoff_initial_s=0.001, backoff_max_s=0.01, stall_timeout_s=5.0)


def test_recorded_frames_arrive_decoded_and_stamped():
    frames = list(itertools.islice(read_frames(SPOT_BTC), 400))

    async def go():
        async with FakeBinance(frames) as srv, \
                BinanceSource(["btcusdt"], base_url=srv.url, **FAST) as src:
            got = []
            first = await next_event(src, feed("connect"))
            while len(got) < 300:
                ev = await next_event(src, lambda e: type(e) in (Trade, Quote))
                got.append(ev)
            return first, got, srv.history

    first, got, history = run(go())
    expected = [e for e in open_replay(SPOT_BTC) if type(e) in (Trade, Quote)][:300]
    assert history[0].streams == ("btcusdt@trade", "btcusdt@bookticker")
    assert [(type(e), e.symbol, getattr(e, "update_id", None), getattr(e, "trade_id", None))
            for e in got] == [(type(e), e.symbol, getattr(e, "update_id", None),
                               getattr(e, "trade_id", None)) for e in expected]
    # Stamped locally at arrival: after the connect event, in arrival order.
    stamps = [e.ts_ns for e in got]
    assert stamps == sorted(stamps) and stamps[0] >= first.ts_ns
    assert got[0].bid == expected[0].bid and got[0].ask == expected[0].ask


def test_forced_drop_gives_reconnect_with_gap_and_data_resumes():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, **FAST) as src:
            await srv.wait_connections(1, open_now=True)
            await srv.publish(quote_frame("BTCUSDT", 1))
            await next_event(src, lambda e: type(e) is Quote)
            assert srv.drop() == 1
            disc = await next_event(src, feed("disconnect"))
            rec = await next_event(src, feed("reconnect"))
            gap = await next_event(src, feed("gap"))
            await srv.wait_connections(2, open_now=False)
            await srv.wait_connections(1, open_now=True)
            await srv.publish(quote_frame("BTCUSDT", 2))
            q = await next_event(src, lambda e: type(e) is Quote)
            return disc, rec, gap, q, src.stats

    disc, rec, gap, q, stats = run(go())
    assert "connection lost" in disc.detail or "closed" in disc.detail
    assert rec.gap_ms > 0 and gap.symbol == "BTCUSDT" and gap.gap_ms == rec.gap_ms
    assert q.update_id == 2 and q.ts_ns > rec.ts_ns
    assert stats["reconnects"] == 1


def test_stall_gives_stall_event_growing_quote_age_then_reconnect():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, **{**FAST, "stall_timeout_s": 0.2}) as src:
            await srv.wait_connections(1, open_now=True)
            await srv.publish(quote_frame("BTCUSDT", 1))
            q = await next_event(src, lambda e: type(e) is Quote)
            age_at_quote = src.ages(q.ts_ns)["BTCUSDT"]
            srv.stall()  # sockets stay open, nothing is sent
            stall = await next_event(src, feed("stall"))
            age_at_stall = src.ages(stall.ts_ns)["BTCUSDT"]
            await next_event(src, feed("reconnect"))
            return age_at_quote, stall, age_at_stall

    age_at_quote, stall, age_at_stall = run(go())
    assert age_at_quote[0] == 0.0 and age_at_quote[1] == float("inf")
    assert stall.symbol == "BTCUSDT" and stall.gap_ms >= 200
    assert age_at_stall[0] >= 200 > age_at_quote[0]


def test_garbage_frames_are_counted_and_skipped_later_frames_still_arrive():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, **FAST) as src:
            await srv.wait_connections(1, open_now=True)
            await srv.send_raw("not json at all")
            await srv.send_raw(quote_frame("BTCUSDT", 1)[:40])  # truncated
            await srv.send_raw('{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT",'
                               '"b":"NaN","B":"1","a":"1","A":"1"}}')
            await srv.send_raw('{"result":null,"id":1}')  # an ack: ignored, not malformed
            await srv.publish(trade_frame("BTCUSDT", 7))
            bad = []
            while True:
                ev = await next_event(src, lambda e: type(e) in (Trade, FeedEvent)
                                      and getattr(e, "kind", "malformed") == "malformed")
                if type(ev) is Trade:
                    return bad, ev, src.decoder.counters

                bad.append(ev)

    bad, trade, counters = run(go())
    assert len(bad) == 3 and trade.trade_id == 7
    assert counters.malformed == {"bad json": 2, "bad price": 1}
    assert counters.ignored == {"ack": 1}
    assert all(len(e.detail) <= 140 for e in bad)


def test_oversized_frame_and_error_close_lead_to_reconnect():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, max_frame_bytes=4096, **FAST) as src:
            await srv.wait_connections(1, open_now=True)
            await srv.send_raw("x" * 10_000)
            d1 = await next_event(src, feed("disconnect"))
            await next_event(src, feed("reconnect"))
            await srv.wait_connections(2)
            await srv.close_all(1011, "boom")
            d2 = await next_event(src, feed("disconnect"))
            await next_event(src, feed("reconnect"))
            await srv.wait_connections(3)
            await srv.wait_connections(1, open_now=True)
            await srv.publish(quote_frame("BTCUSDT", 3))
            q = await next_event(src, lambda e: type(e) is Quote)
            return d1, d2, q

    d1, d2, q = run(go())
    assert "1009" in d1.detail
    assert "1011" in d2.detail and "boom" in d2.detail
    assert q.update_id == 3


def test_server_shutdown_notice_reconnects_at_once():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, backoff_initial_s=60,
                              stall_timeout_s=5) as src:
            await srv.wait_connections(1, open_now=True)
            await srv.server_shutdown()
            notice = await next_event(src, feed("server_shutdown"))
            await next_event(src, feed("reconnect"))  # no 60 s backoff after a notice
            return notice, src.stats

    notice, stats = run(go())
    assert stats["server_shutdowns"] == 1 and stats["reconnects"] == 1


def test_rollover_reconnects_before_the_connection_age_limit():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, rollover_s=0.05, backoff_initial_s=60,
                              stall_timeout_s=5) as src:
            roll = await next_event(src, feed("rollover"))
            await next_event(src, feed("reconnect"))
            return roll, src.stats

    roll, stats = run(go())
    assert stats["rollovers"] >= 1 and roll.kind == "rollover"


def test_pings_from_server_are_answered():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, ping_interval_s=None, **FAST):
            await srv.wait_connections(1, open_now=True)
            return await srv.ping_all()

    assert len(run(go())) == 1


def test_ignored_pongs_make_the_server_drop_and_the_client_reconnects():
    async def go():
        async with FakeBinance(ping_interval_s=0.05, ping_timeout_s=0.05) as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, ping_interval_s=None, **FAST) as src:
            srv.ignore_pongs = True
            d = await next_event(src, feed("disconnect"))
            srv.ignore_pongs = False
            await next_event(src, feed("reconnect"))
            return d

    assert "1011" in run(go()).detail


def test_sharding_above_the_per_connection_limit_covers_all_streams():
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"]

    async def go():
        async with FakeBinance(max_streams=3) as srv, \
                BinanceSource(symbols, base_url=srv.url, max_streams_per_connection=3,
                              **FAST) as src:
            await srv.wait_connections(4, open_now=True)
            for i, sym in enumerate(symbols):
                await srv.publish(quote_frame(sym, i))
            seen = set()
            while len(seen) < len(symbols):
                seen.add((await next_event(src, lambda e: type(e) is Quote)).symbol)
            return srv.history, srv.rejected, seen

    history, rejected, seen = run(go())
    assert len(history) == 4 and not rejected
    streams = [s for h in history for s in h.streams]
    assert sorted(streams) == sorted(f"{s.lower()}@{k}" for s in symbols
                                     for k in ("trade", "bookticker"))
    assert all(len(h.streams) <= 3 for h in history)
    assert seen == set(symbols)


def test_usdm_uses_routed_paths_and_receives_both_routes():
    async def go():
        async with FakeBinance() as srv, \
                BinanceSource(["BTCUSDT"], market="usdm", base_url=srv.url, **FAST) as src:
            await srv.wait_connections(2, open_now=True)
            await srv.publish('{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5,'
                              '"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30",'
                              '"A":"2.510","T":1723161256313,"E":1723161256313}}')
            await srv.publish('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":'
                              '"BTCUSDT","a":9,"p":"61800.30","q":"0.006","f":1,"l":2,"T":1,'
                              '"m":false,"X":"MARKET"}}')
            got = {}
            while len(got) < 2:
                ev = await next_event(src, lambda e: type(e) in (Quote, Trade))
                got[type(ev)] = ev  # the two routes are two connections: any order
            return srv.history, got[Quote], got[Trade]

    history, q, t = run(go())
    assert sorted((h.route, h.streams) for h in history) == [
        ("market", ("btcusdt@aggtrade",)), ("public", ("btcusdt@bookticker",))]
    assert q.event_time_ms == 1723161256313 and t.aggregated and t.order_type == "MARKET"


def test_connection_plan_defaults_and_limits():
    plan = plan_connections(["BTCUSDT"], ("trade", "bookTicker"))
    assert plan == [("wss://stream.binance.com:9443/stream?streams=btcusdt@trade/btcusdt@bookTicker",
                     ["btcusdt@trade", "btcusdt@bookTicker"])]
    fut = plan_connections(["BTCUSDT"], ("aggTrade", "bookTicker"), "usdm")
    assert [u for u, _ in fut] == [
        "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade",
        "wss://fstream.binance.com/public/stream?streams=btcusdt@bookTicker"]
    many = plan_connections([f"S{i}USDT" for i in range(600)], ("trade", "bookTicker"))
    assert [len(s) for _, s in many] == [1024, 176]
    many_f = plan_connections([f"S{i}USDT" for i in range(250)], ("aggTrade",), "usdm")
    assert [len(s) for _, s in many_f] == [200, 50]


def test_control_rate_limiter_stays_below_the_limit():
    now = [0.0]
    lim = RateLimiter(4.0, clock=lambda: now[0])
    delays = [lim.delay() for _ in range(5)]  # five at once: the bucket spaces them
    assert delays[0] == 0.0 and delays[1:] == [0.25, 0.5, 0.75, 1.0]
    now[0] = 10.0
    assert lim.delay() == 0.0  # refilled after a quiet period


def test_backoff_is_capped_jittered_and_seeded():
    import random

    from framework.market.binance import Backoff
    a = Backoff(0.5, 30.0, random.Random(1))
    b = Backoff(0.5, 30.0, random.Random(1))
    da = [a.next() for _ in range(12)]
    assert da == [b.next() for _ in range(12)]
    assert all(0.25 <= d <= 30.0 for d in da) and max(da) >= 15.0
    caps = [min(30.0, 0.5 * 2 ** i) for i in range(12)]
    assert all(c / 2 <= d <= c for c, d in zip(caps, da, strict=True))
