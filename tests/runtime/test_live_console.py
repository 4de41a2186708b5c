"""The live console against real loopback servers: feed events printed as they happen, the
status panel (plain lines off a terminal, redrawn in place on a pseudo-terminal), a session
that receives nothing, a refused connection and Binance's geo-block answer (HTTP 451)."""

import asyncio
import io
import itertools
import os
import select
import socket
import socketserver
import threading

from framework.cli import main
from framework.market.fake_server import FakeBinance
from framework.market.replay import read_frames
from framework.runtime.live_console import LiveConsole
from framework.runtime.run import StopFlag, run_session
from framework.spec.session import load_session
from tests.support import REPO

LIVE = """\
session: live-console
doc: live against a local server
symbols: [BTCUSDT]
source: {kind: live, market: spot, url: "ws://127.0.0.1:9", duration_s: 60}
intents: {generator: none}
"""


class ServerThread:
    """The fake Binance server on its own event loop, as a real exchange would be."""

    def __init__(self, frames, speed=None):
        self.frames, self.speed = frames, speed
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
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

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _config(tmp_path):
    cfg = tmp_path / "live.yaml"
    cfg.write_text(LIVE)
    return cfg


def test_feed_events_and_status_lines_off_a_terminal(tmp_path):
    frames = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 6000))
    out = io.StringIO()
    stop = StopFlag()
    console = LiveConsole(["BTCUSDT"], out=out, every_s=3600)

    def observer(record):
        console(record)
        if record["kind"] == "metrics" and record["ts_ns"] > 0:
            observer.samples += 1
            if observer.samples == 3:  # three one-second samples: the panel has data to show
                stop.set = True
    observer.samples = 0

    with ServerThread(frames, speed=20.0) as srv:
        session = load_session(_config(tmp_path))
        session.data["source"]["url"] = srv.server.url
        console.start()
        run_session(session, tmp_path / "run", stop=stop, observer=observer)
        console.stop()
    text = out.getvalue()
    assert "feed connect: shard 0: 2 streams" in text
    status = [ln for ln in text.splitlines() if "] status " in ln]
    assert len(status) == 1  # the closing line (the periodic ones are an hour apart here)
    assert "BTCUSDT receiving quote age" in status[0]
    assert "/" in status[0].split("t/s", 1)[1]  # regime/permission/health
    assert "open 0" in status[0]


def test_the_panel_redraws_in_place_on_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: the table is not squeezed
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        console = LiveConsole(["BTCUSDT", "ETHUSDT"], out=tty)
        assert console.tty
        console.start()
        console({"kind": "feed", "event": "connect", "symbol": "", "detail": "shard 0: 4 streams", "ts_ns": 1})
        console({"kind": "metrics", "symbol": "BTCUSDT", "ts_ns": 2, "states": {"regime": "NORMAL", "permission": "ALLOWED",
                 "health": "GREEN"}, "values": {"mid": 100.0, "quote_age_ms": 5.0, "quote_rate_hz_10s": 12.0}})
        console({"kind": "order", "symbol": "BTCUSDT", "order_id": "B-1", "ts_ns": 3})
        console.stop()
    seen = b""
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert "feed connect: shard 0: 4 streams" in text
    assert "NORMAL/ALLOWED/GREEN" in text and "ETHUSDT" in text
    assert "\x1b[" in text  # cursor control: the panel is redrawn, not appended


def test_a_live_session_without_data_ends_with_a_summary_saying_so(tmp_path, capsys):
    with ServerThread([]) as srv:
        code = main(["run", str(_config(tmp_path)), "--url", srv.server.url, "--duration", "1",
                     "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    assert "feed connect" in captured.err
    assert "duration reached; no market data received" in captured.out  # the summary
    assert "received no market data" in captured.err
    assert (tmp_path / "run" / "summary.json").is_file()


def test_a_refused_connection_is_reported_as_it_happens(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code = main(["run", str(_config(tmp_path)), "--url", f"ws://127.0.0.1:{port}", "--duration", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "feed disconnect: shard 0: connect failed: ConnectionRefusedError" in err


class _GeoBlock(socketserver.StreamRequestHandler):
    def handle(self):
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 451 Unavailable For Legal Reasons\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_binance_geo_block_is_explained(tmp_path, capsys):
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _GeoBlock) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        code = main(["run", str(_config(tmp_path)), "--url", f"ws://127.0.0.1:{srv.server_address[1]}",
                     "--duration", "1", "--out", str(tmp_path / "run")])
        srv.shutdown()
    err = capsys.readouterr().err
    assert code == 2
    assert "HTTP 451" in err and "refuses connections from this location" in err


def test_url_and_duration_are_for_live_sessions(tmp_path, capsys):
    assert main(["run", "--url", "ws://127.0.0.1:9", "--out", str(tmp_path / "run")]) == 2
    assert "--url is for live sessions" in capsys.readouterr().err
