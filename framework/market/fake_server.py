"""A fake Binance market-data websocket server on loopback, with fault injection.

It speaks Binance's wire format: ``/stream?streams=a/b`` gives combined-stream envelopes
``{"stream": .., "data": ..}``, ``/ws/<stream>`` gives bare payloads. USD-M routed paths
(``/public/...``, ``/market/...``) deliver only the streams of their route, as the real
endpoints do (silently). Each connection plays its own copy of the frames (a recording or a
scenario) filtered by the streams it asked for, paced by the frames' receive-time gaps divided
by ``speed`` (``None``: as fast as the socket takes them). With no frames, tests push frames
with :meth:`FakeBinance.publish`.

Depth: diff-depth streams play like any other stream, and the server keeps a local book per
symbol from the depth frames it has sent (based on the recording's REST snapshot when it
carries one), so ``GET /api/v3/depth?symbol=S&limit=N`` (spot) and ``/fapi/v1/depth`` (USD-M)
on the same port answer with a snapshot consistent with the stream a client is reading, as a
live resync needs (REST snapshot, then the buffered diffs). ``snapshot_requests`` lists them.

Faults, callable from tests: :meth:`drop` (abort the TCP connections), :meth:`stall` /
:meth:`resume` (stop sending, keep the sockets), :meth:`send_raw` (garbage, truncated or
oversized frames), :meth:`close_all` (close with an error code), :meth:`server_shutdown`
(Binance's ``serverShutdown`` event), ``ignore_pongs`` (the server's keepalive then fails and
it drops the connection, as Binance does when pongs do not come back).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from .book import OrderBook
from .depth import DepthSnapshot, DepthUpdate, decode_depth

REST_DEPTH_PATHS = ("/api/v3/depth", "/fapi/v1/depth")


class _StreamOnly(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


_stream_dec = msgspec.json.Decoder(_StreamOnly)

_PUBLIC_KINDS = ("bookticker", "depth")  # USD-M /public route; everything else is /market


def _route_allows(route: str, stream: str) -> bool:
    if not route:
        return True
    kind = stream.split("@", 1)[1] if "@" in stream else stream
    public = kind.startswith(_PUBLIC_KINDS)
    return public if route == "public" else not public


@dataclass
class ConnectionInfo:
    """What one client connection asked for."""

    path: str
    route: str  # "", "public" or "market"
    streams: tuple[str, ...]  # lower case
    combined: bool
    opened_ns: int = field(default_factory=time.time_ns)


class _Conn:
    def __init__(self, ws: ServerConnection, info: ConnectionInfo):
        self.ws = ws
        self.info = info
        self.wanted = set(info.streams)

    def wants(self, stream: str | None) -> bool:
        if stream is None:
            return True
        s = stream.lower()
        return s in self.wanted and _route_allows(self.info.route, s)


class FakeBinance:
    """``async with FakeBinance(frames) as srv:`` then connect to ``srv.url``."""

    def __init__(self, frames: Iterable[tuple[int, str]] | None = None, *,
                 speed: float | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_streams: int | None = None, ping_interval_s: float | None = None,
                 ping_timeout_s: float | None = None, max_frame_bytes: int | None = None):
        self._frames: list[tuple[int, str | None, str]] = []
        self.books: dict[str, OrderBook] = {}  # per symbol, from the depth frames sent
        self.snapshot_requests: list[str] = []  # the REST depth requests answered (path and query)
        recorded: list[DepthSnapshot] = []
        if frames is not None:
            for recv_ns, raw in frames:
                try:
                    env = _stream_dec.decode(raw)
                except msgspec.DecodeError:
                    continue
                if env.stream is None:  # REST snapshots and the like: not stream frames
                    snap = decode_depth(raw, recv_ns)
                    if type(snap) is DepthSnapshot:
                        recorded.append(snap)
                    continue
                self._frames.append((recv_ns, env.stream.lower(), raw))
        depth_symbols = {s.split("@", 1)[0].upper() for _, s, _ in self._frames if s and "@depth" in s}
        if len(recorded) == 1 and len(depth_symbols) == 1:  # the recording's snapshot: the books' base
            (sym,) = depth_symbols
            book = self._book(sym, futures=recorded[0].event_time_ms > 0)
            book.apply_snapshot(recorded[0])
        self.speed = speed
        self.host, self.port = host, port
        self.max_streams = max_streams
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.ignore_pongs = False
        self.history: list[ConnectionInfo] = []  # every accepted connection, in order
        self.rejected: list[str] = []  # paths refused (too many streams, bad path)
        self._conns: set[_Conn] = set()
        self._running = asyncio.Event()
        self._running.set()
        self._changed = asyncio.Condition()
        self._server: Server | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> FakeBinance:
        srv = self

        class _Conn(ServerConnection):
            def acknowledge_pings(self, data: bytes) -> None:
                if not srv.ignore_pongs:
                    super().acknowledge_pings(data)

        self._server = await serve(self._handler, self.host, self.port,
                                   process_request=self._rest,
                                   ping_interval=self.ping_interval_s,
                                   ping_timeout=self.ping_timeout_s,
                                   max_size=self.max_frame_bytes, create_connection=_Conn,
                                   compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def open_connections(self) -> list[ConnectionInfo]:
        return [c.info for c in self._conns]

    # -- waiting (for tests) -------------------------------------------------------------------

    async def wait_connections(self, n: int, *, open_now: bool = False,
                               timeout_s: float = 10.0) -> None:
        """Until ``n`` connections were accepted in total (or are open, with ``open_now``)."""
        def done() -> bool:
            return (len(self._conns) if open_now else len(self.history)) >= n
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(done)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- connection handling -------------------------------------------------------------------

    def _parse(self, path: str) -> ConnectionInfo | None:
        parts = urlsplit(path)
        segs = [s for s in parts.path.split("/") if s]
        route = ""
        if segs and segs[0] in ("public", "market"):
            route, segs = segs[0], segs[1:]
        if segs[:1] == ["stream"]:
            streams = parse_qs(parts.query).get("streams", [""])[0]
            names = tuple(s.lower() for s in streams.split("/") if s)
            return ConnectionInfo(path, route, names, True)
        if segs[:1] == ["ws"]:
            names = tuple(s.lower() for s in "/".join(segs[1:]).split("/") if s)
            return ConnectionInfo(path, route, names, False)
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        info = self._parse(ws.request.path if ws.request else "/")
        if info is None:
            self.rejected.append(ws.request.path if ws.request else "")
            await ws.close(1008, "unknown path")
            return
        if self.max_streams is not None and len(info.streams) > self.max_streams:
            self.rejected.append(info.path)
            await ws.close(1008, f"too many streams: {len(info.streams)} > {self.max_streams}")
            return
        conn = _Conn(ws, info)
        self._conns.add(conn)
        self.history.append(info)
        await self._notify()
        player = asyncio.create_task(self._play(conn)) if self._frames else None
        try:
            await ws.wait_closed()
        finally:
            if player is not None:
                player.cancel()
            self._conns.discard(conn)
            await self._notify()

    async def _play(self, conn: _Conn) -> None:
        first_ns = None
        t0 = 0.0
        loop = asyncio.get_running_loop()
        try:
            for recv_ns, stream, raw in self._frames:
                if not conn.wants(stream):
                    continue
                if self.speed:
                    if first_ns is None:
                        first_ns, t0 = recv_ns, loop.time()
                    delay = t0 + (recv_ns - first_ns) / 1e9 / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if not self._running.is_set():
                    await self._running.wait()
                if '"depthUpdate"' in raw:
                    self.keep_book(raw)
                await self._send(conn, raw)
        except (ConnectionClosed, asyncio.CancelledError):
            return

    async def _send(self, conn: _Conn, raw: str) -> None:
        if not conn.info.combined and raw.startswith('{"stream"'):
            env = _stream_dec.decode(raw)
            raw = bytes(env.data).decode()
        await conn.ws.send(raw)

    # -- depth: the server's books and the REST snapshot -----------------------------------------

    def _book(self, symbol: str, futures: bool) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = OrderBook(symbol, futures=futures, rebuild_from_diffs=True)
        return book

    def keep_book(self, raw: str) -> None:
        """Apply a depth frame to the server's book (the exchange's state), whether or not a
        client receives it: a test loses a frame by keeping it here and not publishing it."""
        d = decode_depth(raw, time.time_ns())
        if type(d) is DepthUpdate:
            self._book(d.symbol, d.futures).apply(d)

    def snapshot(self, symbol: str, limit: int = 1000, futures: bool = False) -> dict:
        """The REST depth answer for ``symbol`` now: the best ``limit`` levels of the server's
        book and its last update id (USD-M adds ``E`` and ``T``)."""
        book = self.books.get(symbol.upper())
        if book is None:
            out: dict = {"lastUpdateId": 0, "bids": [], "asks": []}
        else:
            out = {"lastUpdateId": book.last_update_id,
                   "bids": [[repr(p), repr(q)] for p, q in book.levels("bid", limit)],
                   "asks": [[repr(p), repr(q)] for p, q in book.levels("ask", limit)]}
        if futures:
            now_ms = time.time_ns() // 1_000_000
            out = {"lastUpdateId": out["lastUpdateId"], "E": now_ms, "T": now_ms, "bids": out["bids"],
                   "asks": out["asks"]}
        return out

    def _rest(self, conn: ServerConnection, request) -> Response | None:
        """HTTP requests on the websocket port: the REST depth snapshot; None lets a websocket
        handshake through."""
        parts = urlsplit(request.path)
        if parts.path not in REST_DEPTH_PATHS:
            return None
        query = parse_qs(parts.query)
        symbol = query.get("symbol", [""])[0].upper()
        try:
            limit = int(query.get("limit", ["100"])[0])
        except ValueError:
            limit = 0
        if not symbol or symbol not in self.books or not 1 <= limit <= 5000:
            body = {"code": -1121, "msg": "Invalid symbol."} if limit else {"code": -1100, "msg": "Illegal limit."}
            return _json_response(HTTPStatus.BAD_REQUEST, body)
        self.snapshot_requests.append(request.path)
        return _json_response(HTTPStatus.OK, self.snapshot(symbol, limit, futures=parts.path.startswith("/fapi")))

    # -- pushing frames and faults -------------------------------------------------------------

    async def publish(self, raw: str, stream: str | None = None) -> int:
        """Send a stream frame to every open connection subscribed to its stream.

        The stream is read from the envelope when not given. Returns how many got it."""
        if stream is None:
            try:
                stream = _stream_dec.decode(raw).stream
            except msgspec.DecodeError:
                stream = None
        if '"depthUpdate"' in raw:
            self.keep_book(raw)
        n = 0
        for conn in list(self._conns):
            if conn.wants(stream):
                try:
                    await self._send(conn, raw)
                    n += 1
                except ConnectionClosed:
                    pass
        return n

    async def send_raw(self, raw: str | bytes) -> int:
        """Send anything (garbage, truncated, oversized) to every open connection."""
        n = 0
        for conn in list(self._conns):
            try:
                await conn.ws.send(raw)
                n += 1
            except ConnectionClosed:
                pass
        return n

    def drop(self) -> int:
        """Abort every connection's TCP stream at once: no close frame, like a network cut."""
        conns = list(self._conns)
        for conn in conns:
            transport = conn.ws.transport
            if transport is not None:
                transport.abort()
        return len(conns)

    def stall(self) -> None:
        """Stop sending recorded frames; sockets stay open and keep answering pings."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def close_all(self, code: int = 1011, reason: str = "internal error") -> int:
        conns = list(self._conns)
        await asyncio.gather(*(c.ws.close(code, reason) for c in conns), return_exceptions=True)
        return len(conns)

    async def server_shutdown(self) -> int:
        """Binance's notice that the server is going away (bare event, on every connection)."""
        msg = msgspec.json.encode({"e": "serverShutdown", "E": time.time_ns() // 1_000_000})
        return await self.send_raw(msg.decode())

    async def ping_all(self, timeout_s: float = 5.0) -> list[float]:
        """Ping every client and wait for the pongs; returns the latencies in seconds."""
        waiters = []
        for conn in list(self._conns):
            waiters.append(await conn.ws.ping())
        async with asyncio.timeout(timeout_s):
            return list(await asyncio.gather(*waiters))


def _json_response(status: HTTPStatus, body: dict) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                       ("Connection", "close")])
    return Response(status.value, status.phrase, headers, data)
