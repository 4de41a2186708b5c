"""A live session against a real local websocket server speaking Binance's wire format."""

import asyncio
import itertools
import threading

from framework.market.fake_server import FakeBinance
from framework.market.replay import read_frames
from framework.runtime.run import StopFlag, run_session
from framework.spec.session import load_session
from tests.support import REPO, read_records


class ServerThread:
    """The fake Binance server on its own event loop, so the session runs as it would live."""

    def __init__(self, frames, speed):
        self.speed = speed
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.frames = frames
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = FakeBinance(self.frames, speed=self.speed)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def drop(self):
        self.loop.call_soon_threadsafe(self.server.drop)

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_live_session_survives_a_forced_disconnect(tmp_path):
    frames = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 12000))
    with ServerThread(frames, speed=5.0) as srv:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(f"""\
session: live-test
doc: live against the local fake server
symbols: [BTCUSDT]
source: {{kind: live, market: spot, url: "{srv.server.url}", duration_s: 60}}
overrides: {{regime.unstable_exit_s: 0.5, health.recover_s: 0.3}}
intents: {{generator: none}}
""")
        stop = StopFlag()
        seen = {"dropped": False, "reconnected": False}

        def observer(record):
            # Event-driven: drop once health has recovered from the start, stop once it has
            # recovered again after the reconnect.
            if record["kind"] == "transition" and record["machine"] == "health" and record["from"] == "RED":
                if not seen["dropped"]:
                    seen["dropped"] = True
                    srv.drop()
                elif seen["reconnected"]:
                    stop.set = True
            if record["kind"] == "feed" and record["event"] == "reconnect":
                seen["reconnected"] = True

        out = tmp_path / "run"
        result = run_session(load_session(cfg), out, stop=stop, observer=observer)
    records = read_records(out)
    feed = [r for r in records if r["kind"] == "feed"]
    kinds = [r["event"] for r in feed]
    assert "connect" in kinds and "disconnect" in kinds and "reconnect" in kinds
    disconnect = next(r for r in feed if r["event"] == "disconnect")
    reconnect = next(r for r in feed if r["event"] == "reconnect")
    assert reconnect["gap_ms"] > 0
    # The gap reaches the layers: the book is unknown, so health is RED (stale is never healthy)
    health = [r for r in records if r["kind"] == "transition" and r["machine"] == "health"]
    assert any(r["to"] == "RED" and disconnect["ts_ns"] <= r["ts_ns"] for r in health)
    assert any(r["from"] == "RED" and r["ts_ns"] > reconnect["ts_ns"] for r in health)
    assert result.summary["end_reason"].startswith("stopped")
    # The frames received were recorded into the run, so the live session can be replayed.
    recorded = list(read_frames(out / "input.frames.gz"))
    assert len(recorded) >= result.summary["events"] - len(feed)


def test_live_session_with_depth_builds_its_book_from_a_rest_snapshot(tmp_path):
    """market.depth live: the diff stream is buffered until the REST snapshot (asked of the same
    local server) bridges it; the book is then complete, and the snapshot is in the run's
    recording, so the session replays."""
    frames = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 12000))
    with ServerThread(frames, speed=5.0) as srv:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(f"""\
session: live-depth
doc: live with depth against the local fake server
symbols: [BTCUSDT]
source: {{kind: live, market: spot, url: "{srv.server.url}", duration_s: 60}}
market: {{depth: true}}
intents: {{generator: none}}
""")
        stop = StopFlag()
        synced = []

        def observer(record):
            if record["kind"] == "feed" and record["event"] == "book_sync":
                synced.append(record)
            if record["kind"] == "metrics" and synced:  # a metrics sample after the sync: enough
                stop.set = True

        out = tmp_path / "run"
        result = run_session(load_session(cfg), out, stop=stop, observer=observer)
        asked = list(srv.server.snapshot_requests)
    assert asked and asked[0].startswith("/api/v3/depth?symbol=BTCUSDT&limit=1000")
    assert synced and synced[0]["detail"].startswith("complete, from a snapshot")
    book = result.summary["symbols"]["BTCUSDT"]["book"]
    assert book["state"] == "synced" and book["counters"]["snapshots_used"] >= 1 and book["counters"]["gaps"] == 0
    recorded = [raw for _, raw in read_frames(out / "input.frames.gz")]
    assert any(raw.startswith('{"stream":"btcusdt@depth@snapshot"') for raw in recorded)
    assert any("@depth@100ms" in raw for raw in recorded)
