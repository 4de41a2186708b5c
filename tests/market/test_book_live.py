"""Live depth against the real local fake server: the REST snapshot endpoint, and the resync
Binance documents (buffer the diffs, fetch a snapshot, bridge it) on the first diff and after a
lost frame. Nothing is mocked: websocket and HTTP both go over loopback to FakeBinance."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from market_helpers import run

from framework.market.binance import BinanceSource
from framework.market.book import OrderBook
from framework.market.book_feed import DepthFrameDecoder, SymbolBook
from framework.market.book_live import DepthResync, rest_url_for
from framework.market.depth import DepthSnapshot, DepthUpdate
from framework.market.events import FeedEvent
from framework.market.fake_server import FakeBinance
from framework.market.replay import open_replay
from tests.support import REPO

SYM = "BTCUSDT"


def diff(first: int, last: int, bids=(), asks=(), futures: bool = False, prev: int = 0) -> str:
    data = {"e": "depthUpdate", "E": 1_700_000_000_000 + last, "s": SYM, "U": first, "u": last,
            "b": [[f"{p:.2f}", f"{q:.5f}"] for p, q in bids], "a": [[f"{p:.2f}", f"{q:.5f}"] for p, q in asks]}
    if futures:
        data["pu"] = prev
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data})


def _levels(book: OrderBook) -> tuple[list, list]:
    return book.levels("bid"), book.levels("ask")


def test_rest_snapshot_endpoint_answers_the_book_of_the_frames_sent():
    async def go():
        async with FakeBinance() as srv:
            srv.keep_book(diff(10, 12, bids=[(100.0, 1.0), (99.5, 2.0)], asks=[(100.5, 3.0)]))
            srv.keep_book(diff(13, 13, bids=[(99.5, 0.0)], asks=[(101.0, 0.5)]))
            base = rest_url_for(srv.url, "spot")

            def get(path):
                try:
                    with urllib.request.urlopen(base + path, timeout=5) as r:
                        return r.status, json.loads(r.read())
                except urllib.error.HTTPError as exc:
                    return exc.code, json.loads(exc.read())

            ok = await asyncio.to_thread(get, f"/api/v3/depth?symbol={SYM}&limit=1")
            fut = await asyncio.to_thread(get, f"/fapi/v1/depth?symbol={SYM}&limit=10")
            bad = await asyncio.to_thread(get, "/api/v3/depth?symbol=NOPE&limit=10")
            return ok, fut, bad, list(srv.snapshot_requests)

    ok, fut, bad, asked = run(go())
    assert ok == (200, {"lastUpdateId": 13, "bids": [["100.0", "1.0"]], "asks": [["100.5", "3.0"]]})
    assert fut[0] == 200 and fut[1]["lastUpdateId"] == 13 and "E" in fut[1] and len(fut[1]["asks"]) == 2
    assert bad[0] == 400 and bad[1]["code"] == -1121
    assert len(asked) == 2  # the refused one is not counted


def test_live_book_resyncs_from_a_rest_snapshot_after_a_lost_frame(tmp_path):
    """First diff -> snapshot; a frame lost -> the chain breaks -> a new snapshot; the book ends
    equal to the server's, and the snapshots are recorded as frames a replay reads back."""
    recorded: list[tuple[int, str]] = []

    async def go():
        async with FakeBinance() as srv:
            srv.keep_book(diff(1, 5, bids=[(100.0, 1.0), (99.0, 2.0)], asks=[(101.0, 1.0), (102.0, 4.0)]))
            source = BinanceSource([SYM], streams=["depth@100ms"], base_url=srv.url,
                                   decoder=DepthFrameDecoder([SYM]))
            resync = DepthResync(source, rest_url=rest_url_for(srv.url, "spot"), levels=100)
            resync.on_frame = lambda ns, raw: recorded.append((ns, raw))
            sb = SymbolBook(SYM, rebuild_from_diffs=False)
            incidents: list[FeedEvent] = []
            seen: list[str] = []
            it = resync.__aiter__()
            await srv.wait_connections(1, open_now=True)

            async def take(n_snapshots: int) -> None:
                async with asyncio.timeout(10):
                    while sum(1 for s in seen if s == "snapshot") < n_snapshots or not sb.in_sync:
                        try:  # a caller that gives up waiting (as the live runner does) loses nothing
                            ev = await asyncio.wait_for(it.__anext__(), 0.002)
                        except TimeoutError:
                            continue
                        if type(ev) in (DepthUpdate, DepthSnapshot):
                            seen.append("snapshot" if type(ev) is DepthSnapshot else "diff")
                            incidents.extend(sb.apply(ev, ev.ts_ns))

            await srv.publish(diff(6, 7, bids=[(100.0, 1.5)]))
            await take(1)
            await srv.publish(diff(8, 8, asks=[(101.0, 0.0), (101.5, 2.0)]))
            srv.keep_book(diff(9, 10, bids=[(100.5, 0.7)]))  # the exchange moved; this frame is lost
            await srv.publish(diff(11, 12, bids=[(99.0, 0.0)], asks=[(103.0, 1.0)]))
            await take(2)
            await srv.publish(diff(13, 13, asks=[(103.0, 2.0)]))
            async with asyncio.timeout(10):
                while sb.book.last_update_id < 13:
                    ev = await it.__anext__()
                    if type(ev) is DepthUpdate:
                        incidents.extend(sb.apply(ev, ev.ts_ns))
            await resync.aclose()
            return sb, srv.books[SYM], [i.kind for i in incidents], list(srv.snapshot_requests), resync.stats

    sb, server_book, kinds, asked, stats = run(go())
    assert len(asked) == 2 and stats["breaks"] == 1
    assert kinds == ["book_sync", "book_gap", "book_sync"]
    assert sb.book.complete and sb.book.counters.gaps == 1 and sb.book.counters.resyncs == 1
    assert _levels(sb.book) == _levels(server_book)
    assert sb.book.best_bid() == (100.5, 0.7)  # the lost frame's level came with the snapshot

    # The recording carries both snapshots under btcusdt@depth@snapshot: its replay reads them.
    path = tmp_path / "live.frames"
    path.write_text("".join(f"{ns} {raw}\n" for ns, raw in recorded))
    snaps = [ev for ev in open_replay(path, decoder=DepthFrameDecoder([SYM])) if type(ev) is DepthSnapshot]
    assert [s.symbol for s in snaps] == [SYM, SYM] and snaps[-1].last_update_id == 12


SPOT_BTC = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"


def test_record_with_depth_carries_diffs_and_a_snapshot_that_replay_builds_a_complete_book_from(tmp_path):
    """`execlab record --depth` from the fake server playing the spot recording: the file holds
    depth diffs and the REST snapshot the server answered; a replay completes the book from it."""
    import itertools

    from framework.market import commands
    from framework.market.recorder import Recorder
    from framework.market.replay import read_frames

    frames = list(itertools.islice(read_frames(SPOT_BTC), 600))
    out = tmp_path / "depth.frames.gz"

    class Counting:  # the recorder, counting the snapshot frames it is given
        def __init__(self, inner):
            self.inner, self.snapshots = inner, 0

        def __call__(self, ns, raw):
            self.inner(ns, raw)
            self.snapshots += "@depth@snapshot" in raw

        def tick(self):
            self.inner.tick()

    async def go():
        async with FakeBinance(frames) as srv:
            rec = Recorder(out)
            counting = Counting(rec)
            task = asyncio.create_task(commands.record([SYM], counting, url=srv.url, depth="depth@100ms",
                                                       log=lambda m: None))
            await srv.wait_connections(1)
            async with asyncio.timeout(25):
                while not counting.snapshots or rec.lines < 500:
                    await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            rec.close()

    run(go())
    events = list(open_replay(out, decoder=DepthFrameDecoder([SYM])))
    diffs = [e for e in events if type(e) is DepthUpdate]
    snaps = [e for e in events if type(e) is DepthSnapshot]
    assert len(diffs) > 10 and len(snaps) == 1
    sb = SymbolBook(SYM, rebuild_from_diffs=True)
    for e in events:
        if type(e) in (DepthUpdate, DepthSnapshot):
            sb.apply(e, e.ts_ns)
    assert sb.book.complete and sb.book.counters.gaps == 0
