"""The dashboard server on a real loopback port: access (token, host), read-only HTTP, the
messages a page receives for records observed at full speed, and a session's log unchanged."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from framework.dashboard.board import Board
from framework.dashboard.layout import layout
from framework.dashboard.server import DashboardServer, host_of, is_loopback, token_matches
from framework.runtime.run import run_session
from framework.spec.errors import SpecErrors
from framework.spec.session import load_session

from .test_board import T0, S, merge, metrics, start, transition

REPO = Path(__file__).resolve().parents[2]
HELLO = {"type": "hello", "mode": "live", "machines": [], "charted": ["mid", "spread_bps"], "thresholds": {}}


@pytest.fixture
def server():
    servers = []

    def make(**kw) -> DashboardServer:
        s = DashboardServer(HELLO, port=0, **kw)
        s.start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def get(s: DashboardServer, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def ws_url(s: DashboardServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{s.port}/ws{query}"


def test_token_comparison():
    assert token_matches(None, None) and token_matches("anything", None)
    assert token_matches("s3cret-token", "s3cret-token")
    assert not token_matches("s3cret-tokeN", "s3cret-token")
    assert not token_matches("s3cret", "s3cret-token") and not token_matches("", "s3cret-token")
    assert not token_matches(None, "s3cret-token")
    assert token_matches("ünï", "ünï") and not token_matches("uni", "ünï")


def test_loopback_and_host_headers():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.5.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")
    assert host_of("127.0.0.1:8765") == "127.0.0.1" and host_of("[::1]:8765") == "::1" and host_of("localhost") == "localhost"


def test_bound_elsewhere_than_loopback_a_token_is_made_and_put_in_the_address():
    s = DashboardServer(HELLO, host="0.0.0.0", port=8765)  # not started: tests serve on loopback only
    assert s.token and len(s.token) >= 24 and s.url.endswith(f"?token={s.token}")
    assert DashboardServer(HELLO, host="0.0.0.0", token="given").token == "given"
    assert DashboardServer(HELLO).token is None


def test_the_page_and_its_assets_are_served_from_the_package_and_nothing_else(server):
    s = server()
    status, headers, body = get(s, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"dashboard.js" in body
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    for path, kind in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
        status, headers, body = get(s, path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and len(body) > 1000
        # no asset is fetched from the network
        assert b"http://" not in body and b"https://" not in body
    for path in ("/../pyproject.toml", "/static/../server.py", "/command", "/favicon.ico", "/index.html"):
        assert get(s, path)[0] == 404


def test_a_request_naming_another_host_is_refused_on_loopback(server):
    s = server()
    assert get(s, "/", {"Host": f"localhost:{s.port}"})[0] == 200
    assert get(s, "/", {"Host": "attacker.example"})[0] == 403
    assert get(s, "/", {"Host": f"attacker.example:{s.port}"})[0] == 403


def test_with_a_token_every_request_needs_it_by_query_or_cookie(server):
    s = server(token="s3cret-token")
    assert get(s, "/")[0] == 403
    assert get(s, "/?token=wrong")[0] == 403
    status, headers, _ = get(s, "/?token=s3cret-token")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert get(s, "/dashboard.js")[0] == 403
    assert get(s, "/dashboard.js", {"Cookie": cookie})[0] == 200

    async def handshake(url: str, headers: dict | None = None) -> str:
        async with connect(url, additional_headers=headers) as ws:
            return json.loads(await ws.recv())["type"]

    with pytest.raises(InvalidStatus) as exc:
        asyncio.run(handshake(ws_url(s)))
    assert exc.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        asyncio.run(handshake(ws_url(s, "?token=s3cret-tokeX")))
    assert asyncio.run(handshake(ws_url(s, "?token=s3cret-token"))) == "hello"
    assert asyncio.run(handshake(ws_url(s), {"Cookie": cookie})) == "hello"


def test_the_address_in_use_is_a_clear_error(server):
    s = server()
    with pytest.raises(SpecErrors) as exc:
        DashboardServer(HELLO, port=s.port).start()
    assert f"127.0.0.1:{s.port}" in str(exc.value.errors[0]) and "free port" in str(exc.value.errors[0])


async def _collect(url: str, stop: threading.Event, messages: list, ready: threading.Event) -> None:
    async with connect(url, max_size=None) as ws:
        ready.set()
        while True:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=0.2)
            except TimeoutError:
                if stop.is_set():
                    return
                continue
            messages.append(json.loads(text))
            if messages[-1].get("session", {}).get("ended"):
                stop.set()


def test_a_burst_of_records_reaches_the_page_as_a_few_aggregated_messages_that_add_up(server):
    s = server()
    records = [start()]
    for i in range(20_000):
        records.append(metrics(T0 + i * S // 100, 100.0 + i % 7))
        if i % 500 == 0:
            records.append(transition(T0 + i * S // 100, "regime", "A" if i % 1000 else "B", "B" if i % 1000 else "A"))
    records.append({"kind": "session_end", "ts_ns": T0 + 10**12, "symbol": "", "end_reason": "end of input"})
    messages: list = []
    stop, ready = threading.Event(), threading.Event()
    page = threading.Thread(target=asyncio.run, args=(_collect(ws_url(s), stop, messages, ready),))
    page.start()
    assert ready.wait(10)
    for r in records:  # as fast as the session can write them
        s.observe(dict(r))
    page.join(60)
    assert not page.is_alive()
    assert [m["type"] for m in messages[:2]] == ["hello", "snapshot"]
    assert all(m["type"] == "delta" for m in messages[2:])
    assert len(messages) < len(records) / 100  # aggregated, not one message per record
    got: dict = {}
    for m in messages[1:]:
        merge(got, m)
    reference = Board(HELLO["charted"])
    for r in records:
        reference.apply(json.loads(json.dumps(r, sort_keys=True)))  # as the log would give it back
    want: dict = {}
    merge(want, reference.snapshot())
    assert got == want
    assert messages[-1]["session"]["records"] == len(records)


def test_a_page_joining_mid_session_gets_the_state_so_far_then_deltas(server):
    s = server()
    for r in [start(), metrics(T0 + S, 101.0), transition(T0 + 2 * S, "regime", "UNSTABLE", "FAST")]:
        s.observe(r)

    async def page() -> list:
        async with connect(ws_url(s)) as ws:
            hello = json.loads(await ws.recv())
            snap = json.loads(await ws.recv())
            s.observe(metrics(T0 + 3 * S, 102.0))
            delta = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"at": 0, "command": "stop"}))  # pages cannot ask anything live
            s.observe(metrics(T0 + 4 * S, 103.0))
            after = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return [hello, snap, delta, after]

    hello, snap, delta, after = asyncio.run(page())
    assert hello["type"] == "hello" and hello["limits"]["points"] > 0
    sym = snap["symbols"]["BTCUSDT"]
    assert sym["states"]["regime"]["state"] == "FAST" and [p[1] for p in sym["append"]["points"]] == [101.0]
    assert delta["type"] == "delta" and [p[1] for p in delta["symbols"]["BTCUSDT"]["append"]["points"]] == [102.0]
    assert after["type"] == "delta" and [p[1] for p in after["symbols"]["BTCUSDT"]["append"]["points"]] == [103.0]


def _log(run: Path) -> bytes:
    return (run / "log.jsonl").read_bytes()


def test_the_audit_log_is_byte_identical_with_and_without_a_dashboard_watching(tmp_path):
    session = load_session(REPO / "configs" / "scenario-shock.yaml")
    plain = run_session(session, tmp_path / "plain").out_dir
    s = DashboardServer(layout(session.machine_set, mode="replay", diagrams=False), port=0)
    s.start()
    messages: list = []
    stop, ready = threading.Event(), threading.Event()
    page = threading.Thread(target=asyncio.run, args=(_collect(ws_url(s), stop, messages, ready),))
    page.start()
    try:
        assert ready.wait(10)
        watched = run_session(load_session(REPO / "configs" / "scenario-shock.yaml"), tmp_path / "watched",
                              observer=s.observe).out_dir
        page.join(60)
    finally:
        stop.set()
        s.stop()
    assert _log(Path(watched)) == _log(Path(plain))
    n_transitions = _log(Path(plain)).count(b'"kind":"transition"')
    got: dict = {}
    for m in messages[1:]:
        merge(got, m)
    (sym,) = got.values()
    assert sum(sym["transition_counts"].values()) == n_transitions > 0
    assert messages[-1]["session"]["ended"]


def test_url_points_at_the_bound_port(server):
    s = server()
    parts = urlsplit(s.url)
    assert parts.hostname == "127.0.0.1" and parts.port == s.port and s.port > 0


class FakeBinanceThread:
    """The local fake Binance server on its own event loop, as a live session would meet it."""

    def __init__(self, frames, speed: float):
        from framework.market.fake_server import FakeBinance

        self.loop = asyncio.new_event_loop()
        self.server = FakeBinance(frames, speed=speed)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_a_live_session_reaches_the_page_record_for_record(tmp_path):
    import itertools

    from framework.market.replay import read_frames
    from framework.runtime.run import StopFlag
    from framework.runtime.rundir import read_log

    frames = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 6000))
    with FakeBinanceThread(frames, speed=5.0) as fake:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(f"""\
session: live-dashboard
doc: live against the local fake server, watched by the dashboard
symbols: [BTCUSDT]
source: {{kind: live, market: spot, url: "{fake.server.url}", duration_s: 60}}
intents: {{generator: none}}
""")
        session = load_session(cfg)
        s = DashboardServer(layout(session.machine_set, mode="live", diagrams=False), port=0)
        s.start()
        messages: list = []
        stop_page, ready = threading.Event(), threading.Event()
        page = threading.Thread(target=asyncio.run, args=(_collect(ws_url(s), stop_page, messages, ready),))
        page.start()
        stop = StopFlag()
        samples = []

        def observer(record: dict) -> None:
            s.observe(record)
            if record["kind"] == "metrics":
                samples.append(record)
                if len(samples) >= 3:  # three seconds of event time: enough to have seen the feed
                    stop.set = True

        try:
            assert ready.wait(10)
            run_session(session, tmp_path / "run", stop=stop, observer=observer)
            page.join(60)
        finally:
            stop_page.set()
            s.stop()
    assert messages[0]["mode"] == "live"
    got: dict = {}
    for m in messages[1:]:
        merge(got, m)
    reference = Board(messages[0]["charted"])
    for r in read_log(tmp_path / "run"):
        reference.apply(r)
    want: dict = {}
    merge(want, reference.snapshot())
    assert got == want
    assert got["BTCUSDT"]["feed"]["connection"] == "connected"
    assert len(got["BTCUSDT"]["lists"]["points"]) == len(samples)
