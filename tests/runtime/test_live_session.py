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

    def __init__(self, frames):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.frames = frames
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = FakeBinance(self.frames, speed=20.0)
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
    frames = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 6000))
    with ServerThread(frames) as srv:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(f"""\
session: live-test
doc: live against the local fake server
symbols: [BTCUSDT]
source: {{kind: live, market: spot, url: "{srv.server.url}", duration_s: 60}}
intents: {{generator: none}}
""")
        stop = StopFlag()
        seen = {"samples": 0, "dropped": False, "after": 0}

        def observer(record):
            # Event-driven: drop once data flows, stop once data flowed again after the reconnect.
            if record["kind"] == "metrics" and record["values"]["mid"] != "nan":
                seen["samples"] += 1
                if seen["samples"] == 2 and not seen["dropped"]:
                    seen["dropped"] = True
                    srv.drop()
                if any_reconnect[0]:
                    seen["after"] += 1
                    if seen["after"] >= 2:
                        stop.set = True
            if record["kind"] == "feed" and record["event"] == "reconnect":
                any_reconnect[0] = True

        any_reconnect = [False]
        out = tmp_path / "run"
        result = run_session(load_session(cfg), out, stop=stop, observer=observer)
    records = read_records(out)
    feed = [r for r in records if r["kind"] == "feed"]
    kinds = [r["event"] for r in feed]
    assert "connect" in kinds and "reconnect" in kinds
    reconnect = next(r for r in feed if r["event"] == "reconnect")
    assert reconnect["gap_ms"] > 0
    assert any(r["kind"] == "metrics" and r["ts_ns"] > reconnect["ts_ns"] for r in records)
    assert result.summary["end_reason"].startswith("stopped") or result.summary["end_reason"] == "interrupted"
    # The frames received were recorded into the run, so the live session can be replayed.
    recorded = list(read_frames(out / "input.frames.gz"))
    assert len(recorded) >= result.summary["events"] - len(feed)
