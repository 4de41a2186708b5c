"""Replay of the shipped recordings and CSV dump, format detection, identity and pacing."""

from __future__ import annotations

import asyncio
import gzip
import zipfile
from collections import Counter

import pytest
from conftest import CSV_TRADES, SPOT_BTC, SPOT_ETH, USDM_BTC

from framework.market.decode import FrameDecoder
from framework.market.events import Quote, Tick, Trade
from framework.market.replay import (
    detect_format,
    open_replay,
    paced,
    read_frames,
    source_identity,
    to_ns,
)


def test_spot_btc_recording_replays_with_known_counts_and_the_rest_snapshot_ignored():
    dec = FrameDecoder()
    counts = Counter(type(e).__name__ for e in open_replay(SPOT_BTC, decoder=dec))
    assert counts == {"Quote": 28_040, "Trade": 9_757}
    assert dec.counters.ignored == {"depth": 3_451, "snapshot": 1}
    assert dec.counters.malformed == {}
    with gzip.open(SPOT_BTC, "rt") as f:
        line8 = [next(f) for _ in range(8)][-1]
    assert '"lastUpdateId"' in line8


@pytest.mark.parametrize("path", [SPOT_ETH, USDM_BTC])
def test_other_recordings_replay_without_error(path):
    dec = FrameDecoder()
    evs = list(open_replay(path, decoder=dec))
    counts = Counter(type(e).__name__ for e in evs)
    assert counts["Quote"] > 10_000 and counts["Trade"] > 5_000 and set(counts) == {"Quote", "Trade"}
    assert dec.counters.malformed == {}
    stamps = [e.ts_ns for e in evs]
    assert stamps == sorted(stamps) and 1.72e18 < stamps[0] < 1.73e18
    if path == USDM_BTC:
        assert counts == {"Quote": 66_089, "Trade": 21_313}
        assert all(e.event_time_ms > 0 for e in evs if type(e) is Quote)


def test_csv_dump_replays_with_exchange_time():
    evs = list(open_replay(CSV_TRADES))
    assert len(evs) == 652 and all(type(e) is Trade for e in evs)
    first = evs[0]
    assert (first.symbol, first.trade_id, first.price, first.qty, first.buyer_is_maker) == (
        "BTCUSDT", 847213059, 35246.87, 0.000886, False)
    assert first.ts_ns == 1621428969251 * 1_000_000 == first.trade_time_ms * 1_000_000
    assert max(e.price for e in evs) / min(e.price for e in evs) > 1.05  # the crash


def test_csv_variants_header_microseconds_zip_and_symbol_parameter(tmp_path):
    rows = CSV_TRADES.read_text().splitlines()[:3]
    us = [",".join(r.split(",")[:4] + [r.split(",")[4] + "123"] + r.split(",")[5:]) for r in rows]
    hdr = "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"
    p = tmp_path / "ETHUSDT-trades-2025-01-01.csv"
    p.write_text("\n".join([hdr, *us]) + "\n")
    evs = list(open_replay(p))
    assert [e.ts_ns for e in evs][0] == 1621428969251123 * 1000 and evs[0].symbol == "ETHUSDT"
    z = tmp_path / "dump.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("whatever.csv", "\n".join(rows))
    with pytest.raises(ValueError, match="symbol"):
        open_replay(z)
    assert len(list(open_replay(z, symbol="btcusdt"))) == 3
    agg = tmp_path / "BTCUSDT-aggTrades-2024-01-01.csv"
    agg.write_text("1,100.5,0.1,10,12,1704067200000,True,True\n")
    (t,) = open_replay(agg)
    assert t.aggregated and t.buyer_is_maker and t.trade_id == 1
    book = tmp_path / "BTCUSDT-bookTicker-2024-01-01.csv"
    book.write_text("update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,"
                    "transaction_time,event_time\n7,100.1,1,100.2,2,1704067200001,1704067200002\n")
    (q,) = open_replay(book)
    assert (q.bid, q.ask, q.update_id, q.ts_ns, q.transaction_time_ms) == (
        100.1, 100.2, 7, 1704067200002 * 10**6, 1704067200001)
    assert detect_format(book) == "csv:bookTicker"


def test_frame_stamps_in_micro_or_milliseconds_are_normalised(tmp_path):
    frames = list(zip(range(3), read_frames(SPOT_BTC), strict=False))
    for div, name in ((1_000, "us"), (1_000_000, "ms")):
        p = tmp_path / f"old-{name}.frames"
        p.write_text("".join(f"{ns // div} {raw}\n" for _, (ns, raw) in frames))
        got = [ns for ns, _ in read_frames(p)]
        assert got == [ns // div * div for _, (ns, _) in frames]
    assert to_ns(1_723_161_253) == 1_723_161_253 * 10**9


def test_symbol_filter_and_unknown_files(tmp_path):
    assert list(open_replay(SPOT_BTC, symbols=["ETHUSDT"])) == []
    bad = tmp_path / "x.txt"
    bad.write_text("hello world\n")
    with pytest.raises(ValueError, match="unrecognised"):
        open_replay(bad)
    with pytest.raises(ValueError, match="no such file"):
        open_replay(tmp_path / "missing.frames.gz")


def test_source_identity_names_format_and_digest():
    ident = source_identity(CSV_TRADES)
    assert ident["format"] == "csv:trades" and ident["size"] == 47_950
    assert len(ident["sha256"]) == 64
    assert source_identity(SPOT_BTC)["format"] == "frames"


def test_paced_keeps_order_and_events_at_full_speed_and_with_a_factor():
    evs = [Tick(i * 1_000_000) for i in range(50)]  # 1 ms apart

    async def collect(speed):
        return [e async for e in paced(evs, speed)]

    assert asyncio.run(collect(None)) == evs
    assert asyncio.run(collect(1000.0)) == evs  # 49 ms of event time in ~49 µs


def test_a_paced_wait_calls_waiting_before_the_next_event():
    """A gap in the data is a wait: the session's log writes what it holds meanwhile."""
    evs = [Tick(0), Tick(300_000_000)]  # 0.3 s apart, replayed in real time
    seen: list[str] = []

    async def collect():
        async for e in paced(evs, 1.0, waiting=lambda: seen.append("waiting")):
            seen.append(f"event {e.ts_ns}")

    asyncio.run(collect())
    assert seen[0] == "event 0" and seen[-1] == "event 300000000"
    assert set(seen[1:-1]) == {"waiting"} and len(seen) >= 3


def test_a_bad_first_line_does_not_hide_a_frames_file_and_bad_lines_are_counted(tmp_path):
    book = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}'
    eth_bad = '{"stream":"ethusdt@bookTicker","data":{"u":1,"s":"ETHUSDT","b":"NaN","B":"1","a":"2","A":"1"}}'
    p = tmp_path / "f.frames"
    p.write_text(f"garbage without a stamp\n1e19 {book}\n1723161254000000000 {book}\n"
                 f"1723161254000000001 {eth_bad}\n")
    assert detect_format(p) == "frames"
    dec = FrameDecoder()
    evs = list(open_replay(p, ["BTCUSDT"], decoder=dec))
    assert [type(e).__name__ for e in evs] == ["FeedEvent", "FeedEvent", "Quote", "FeedEvent"]
    assert [e.ts_ns for e in evs[:2]] == [1723161254000000000] * 2  # counted at the first stamp
    assert dec.counters.malformed == {"bad stamp": 2, "bad price": 1}  # another symbol's too


def test_a_csv_row_that_does_not_parse_is_a_malformed_feed_event_not_an_exception(tmp_path):
    p = tmp_path / "BTCUSDT-trades-2021-05-19.csv"
    p.write_text("1,100.0,0.5,50.0,1621382400000,true,true\n"
                 "2,abc,0.5,50.0,1621382400001,true,true\n"
                 "3,100.0\n"
                 "4,100.5,0.1,10.0,99999999999999999999999,false,true\n"
                 "5,101.0,0.2,20.2,1621382400002,false,true\n")
    evs = list(open_replay(p))
    assert [type(e).__name__ for e in evs] == ["Trade", "FeedEvent", "FeedEvent", "Trade", "Trade"]
    assert all(e.kind == "malformed" and e.detail.startswith("bad row: ") for e in evs[1:3])
    assert evs[3].ts_ns > 2**63  # parsed: the event time guard quarantines it downstream
