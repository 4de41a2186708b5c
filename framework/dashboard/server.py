"""The dashboard's server: the page and its updates on one port, in a thread of its own.

HTTP (the page, its script and style sheet, all package files) and the websocket share one
port: ``websockets`` answers plain HTTP requests from ``process_request``. Read-only: the only
message a page may send is ``{"at": TIME}`` to move a finished run's time slider.

Live sessions: ``observe(record)`` is the session's observer. It runs on the session's thread
and only appends the record, encoded, to a queue (the session never waits on the dashboard and
its log does not change). Every ``FLUSH_S`` the server folds the queued records into its
``Board`` and sends each page one delta. A page that falls behind (its queue full) is sent a
fresh snapshot instead of the deltas it missed.

Access: bound to 127.0.0.1 by default, where requests must name a loopback host (a web page
elsewhere cannot reach it through DNS rebinding). Bound anywhere else, every request needs the
token, as ``?token=`` (the page's address) or the cookie the page's response sets; tokens are
compared in constant time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import ipaddress
import json
import math
import secrets
import threading
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..spec.errors import SpecError, SpecErrors
from .board import LIMITS, Board
from .history import History

FLUSH_S = 0.25
CLIENT_QUEUE = 64  # messages waiting for one page before it is resynchronised
MAX_MESSAGE = 4096  # bytes a page may send (a slider position)
COOKIE = "execlab_dashboard"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_encode = msgspec.json.Encoder(order="sorted").encode  # as the log writes it: the page reads what it reads
_decode = msgspec.json.Decoder().decode


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_matches(given: str | None, expected: str | None) -> bool:
    """True when no token is required, or ``given`` is it (constant time)."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _cookie_token(headers: Headers) -> str | None:
    for header in headers.get_all("Cookie"):
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
    return None


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def dumps(message: dict[str, Any]) -> str:
    """JSON for the page (non-finite floats, which JSON lacks, become null)."""
    return _encode(message).decode("utf-8")


def host_of(header: str) -> str:
    """The host name of a ``Host`` header, without the port (``[::1]:80`` gives ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Client:
    """One page: its queue of messages, written in order by its own task."""

    def __init__(self, connection: ServerConnection):
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE)


class DashboardServer:
    """Serve ``hello`` (the layout) and the board of a live session or of a finished run.

    ``history`` given: a finished run, with the time slider; otherwise a live board fed by
    ``observe``. ``start()`` binds and returns the page's address; ``stop()`` closes.
    """

    def __init__(self, hello: dict[str, Any], *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, history: History | None = None, board: Board | None = None):
        self.hello = dict(hello, limits=LIMITS)
        self.host = host
        self.port = port
        # Elsewhere than loopback a token is required; one is made when none is given.
        self.token = token if token is not None or is_loopback(host) else secrets.token_urlsafe(24)
        self.history = history
        self.board = board if board is not None else Board(hello.get("charted"))
        self.inbox: collections.deque[bytes] = collections.deque()
        self.clients: set[Client] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.ended_by_signal = False

    # ------------------------------------------------------------------ the session side

    def observe(self, record: dict[str, Any]) -> None:
        """The session's observer: queue the record encoded as the log encodes it (now, so
        later changes to the dict cannot reach the page) and return at once."""
        self.inbox.append(_encode(record))
        if record.get("kind") == "session_end":
            self.ended_by_signal = str(record.get("end_reason", "")).startswith("stopped by")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?token={self.token}" if self.token is not None else ""
        return f"http://{host}:{self.port}/{query}"

    def start(self, timeout: float = 10.0) -> str:
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the dashboard server did not start")
        if isinstance(self._error, OSError):
            raise SpecErrors([SpecError(f"{self.host}:{self.port}", 0, 0, f"cannot serve the dashboard here "
                                        f"({self._error.strerror or self._error}); expected a free port on a local address")])
        if self._error is not None:
            raise self._error
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the caller's thread ends the wait)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    # ------------------------------------------------------------------ the server thread

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(self._handler, self.host, self.port, process_request=self._http,
                         max_size=MAX_MESSAGE, compression="deflate") as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            flusher = asyncio.create_task(self._flush_loop())
            await self._stopping.wait()
            self.flush()  # the last records reach the pages before they close
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            for client in list(self.clients):
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait("")
            await asyncio.sleep(0)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.flush()

    def flush(self) -> None:
        """Fold the queued records into the board and send every page the delta."""
        if self.history is not None:
            return
        inbox = self.inbox
        for _ in range(len(inbox)):
            self.board.apply(_decode(inbox.popleft()))
        delta = self.board.take_delta()
        if delta is None:
            return
        text = dumps(delta)
        for client in list(self.clients):
            self._send(client, text)

    def _send(self, client: Client, text: str) -> None:
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            # Too slow for the deltas: drop them and start it again from a snapshot.
            while not client.queue.empty():
                client.queue.get_nowait()
            client.queue.put_nowait(dumps(self.board.snapshot()))

    # ------------------------------------------------------------------ HTTP and access

    def _allowed(self, request: Request) -> bool:
        query = parse_qs(urlsplit(request.path).query)
        given = (query.get("token") or [None])[0] or _cookie_token(request.headers)
        if not token_matches(given, self.token):
            return False
        if is_loopback(self.host):
            return is_loopback(host_of(request.headers.get("Host") or ""))
        return True

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if not self._allowed(request):
            return connection.respond(HTTPStatus.FORBIDDEN, "a valid token is required (?token=...)\n")
        if path == "/ws":
            return None  # the websocket handshake goes on
        if request.headers.get("Upgrade"):
            return connection.respond(HTTPStatus.NOT_FOUND, "websocket endpoint is /ws\n")
        entry = STATIC.get(path)
        if entry is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        body = _static(entry[0])
        headers = Headers([("Content-Type", entry[1]), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                           ("Content-Security-Policy", CSP), ("Referrer-Policy", "no-referrer")])
        if self.token is not None and path == "/":
            headers["Set-Cookie"] = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        return Response(HTTPStatus.OK, "OK", headers, body)

    # ------------------------------------------------------------------ websocket

    async def _handler(self, connection: ServerConnection) -> None:
        client = Client(connection)
        hello = dict(self.hello)
        if self.history is not None:
            start = self.history.start_ns
            hello.update(start_ns=start, end_ns=self.history.end_ns,
                         marks_ms=[(t - start) / 1_000_000 for t in self.history.marks()])
            client.queue.put_nowait(dumps(hello))
            client.queue.put_nowait(dumps(self.history.snapshot_at(self.history.end_ns)))
        else:
            self.flush()  # so that the snapshot and the deltas after it meet exactly
            client.queue.put_nowait(dumps(hello))
            client.queue.put_nowait(dumps(self.board.snapshot()))
        self.clients.add(client)
        writer = asyncio.create_task(self._write(client))
        try:
            async for message in connection:
                self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _on_message(self, client: Client, message: str | bytes) -> None:
        """Only a finished run's page asks something: the board at a time, in milliseconds
        after the start (a page's numbers cannot hold nanoseconds since the epoch exactly)."""
        if self.history is None:
            return
        try:
            offset = json.loads(message).get("offset_ms")
        except (ValueError, AttributeError):
            return
        if isinstance(offset, (int, float)) and not isinstance(offset, bool) and math.isfinite(offset):
            at = self.history.start_ns + int(round(offset * 1_000_000))
            at = min(max(at, self.history.start_ns), self.history.end_ns)
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(dumps(self.history.snapshot_at(at)))

    @staticmethod
    async def _write(client: Client) -> None:
        while True:
            text = await client.queue.get()
            if text == "":
                await client.connection.close()
                return
            try:
                await client.connection.send(text)
            except ConnectionClosed:
                return
