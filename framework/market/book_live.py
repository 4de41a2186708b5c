"""Live depth: the REST snapshot a local book needs, fetched as Binance documents.

Binance's procedure for a local book: subscribe the diff stream, buffer its events, fetch a
REST snapshot (``GET /api/v3/depth`` spot, ``/fapi/v1/depth`` USD-M), drop the buffered diffs
it already covers, and apply the rest on top of it; do it again whenever the chain of update
ids breaks (a lost frame, a reconnect). ``DepthResync`` wraps a live source (``BinanceSource``):
it passes every event through, follows each symbol's chain (spot ``U == last u + 1``, USD-M
``pu == last u``) and, on a symbol's first diff and after every break, fetches a snapshot in the
background and puts it into the stream as a ``DepthSnapshot`` as soon as it is in. Events keep
flowing meanwhile, and a caller that gives up waiting for the next event (a timeout) loses
nothing: the read in progress carries on; the pipeline's book
(``OrderBook`` without ``rebuild_from_diffs``) buffers them while out of sync and bridges the
snapshot to them. The snapshot is also handed to ``on_frame`` as a frame of the stream
``<symbol>@depth@snapshot``, so a recording carries it and its replay rebuilds the same book.

A fetch that fails (HTTP error, timeout, a body that is not a snapshot) gives a
``FeedEvent(kind="malformed")`` naming the reason; the next diff tries again (at most once per
``retry_s``), and the book stays out of sync meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from .depth import SNAPSHOT_STREAM, DepthSnapshot, DepthUpdate, decode_depth
from .events import FeedEvent

REST_URLS = {"spot": "https://api.binance.com", "usdm": "https://fapi.binance.com"}
REST_PATHS = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}
DEFAULT_LEVELS = 1000
_END = object()  # the source is exhausted


def rest_url_for(ws_url: str | None, market: str) -> str:
    """The REST base for a websocket base URL: a local or mirror server (``ws://host:port``)
    answers REST on the same address; Binance's own streams have their REST hosts."""
    if ws_url and ws_url.startswith(("ws://", "wss://")) and "binance.com" not in ws_url:
        scheme = "http" if ws_url.startswith("ws://") else "https"
        return scheme + ws_url[ws_url.index("://"):].rstrip("/")
    return REST_URLS.get(market, REST_URLS["spot"])


def _get(url: str, timeout_s: float) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


class DepthResync:
    """An async iterator of the wrapped source's events plus the snapshots the books need."""

    def __init__(self, source: Any, *, market: str = "spot", rest_url: str | None = None,
                 levels: int = DEFAULT_LEVELS, timeout_s: float = 10.0, retry_s: float = 1.0,
                 fetch: Callable[[str], Awaitable[tuple[int, str]]] | None = None) -> None:
        self.source = source
        self.market = market
        self.rest_url = (rest_url or REST_URLS.get(market, REST_URLS["spot"])).rstrip("/")
        self.levels = levels
        self.timeout_s = timeout_s
        self.retry_ns = int(retry_s * 1e9)
        self._fetch = fetch or self._http
        self._last: dict[str, int] = {}  # symbol -> final id of the last diff in an unbroken chain
        self._need: dict[str, DepthUpdate] = {}  # symbol -> the first diff since it needs a snapshot
        self._tried: dict[str, int] = {}  # symbol -> when a fetch last failed
        self._reading: asyncio.Future | None = None  # the source's next event, being read
        self._fetches: dict[str, asyncio.Task] = {}  # symbol -> its snapshot being fetched
        self.stats = {"snapshots": 0, "failed": 0, "breaks": 0}

    # the wrapped source's interface, as the live runner uses it
    @property
    def on_frame(self):
        return self.source.on_frame

    @on_frame.setter
    def on_frame(self, fn) -> None:
        self.source.on_frame = fn

    async def aclose(self) -> None:
        pending = [t for t in (self._reading, *self._fetches.values()) if t is not None]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._reading, self._fetches = None, {}
        await self.source.aclose()

    def __aiter__(self) -> DepthResync:
        self._it = self.source.__aiter__()
        return self

    async def _read(self) -> Any:
        try:
            return await self._it.__anext__()
        except StopAsyncIteration:
            return _END

    async def __anext__(self):
        while True:
            for sym, task in list(self._fetches.items()):  # a snapshot that came in goes first
                if task.done():
                    del self._fetches[sym]
                    return task.result()
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._read())
            await asyncio.wait({self._reading, *self._fetches.values()}, return_when=asyncio.FIRST_COMPLETED)
            if not self._reading.done():
                continue
            ev, self._reading = self._reading.result(), None
            if ev is _END:
                raise StopAsyncIteration
            if type(ev) is DepthUpdate and ev.symbol not in self._fetches and self._chain(ev):
                sym = ev.symbol
                self._fetches[sym] = asyncio.ensure_future(self._snapshot(sym, ev.futures, self._need[sym]))
            elif type(ev) is DepthUpdate and ev.symbol in self._fetches:
                self._chain(ev)  # keep following the chain while the fetch is out
            return ev

    def _chain(self, d: DepthUpdate) -> bool:
        """Follow the symbol's chain; whether it needs a snapshot now."""
        sym = d.symbol
        last = self._last.get(sym)
        if last is not None and sym not in self._need:
            follows = d.prev_final_id == last if d.futures else d.first_id <= last + 1 <= d.final_id
            if not follows and d.final_id > last:
                self.stats["breaks"] += 1
                self._need[sym] = d
        if last is None:
            self._need[sym] = d
        self._last[sym] = max(d.final_id, last or 0)
        if sym not in self._need:
            return False
        failed = self._tried.get(sym)
        return failed is None or time.time_ns() - failed >= self.retry_ns

    async def _http(self, url: str) -> tuple[int, str]:
        return await asyncio.to_thread(_get, url, self.timeout_s)

    async def _snapshot(self, symbol: str, futures: bool, first: DepthUpdate) -> DepthSnapshot | FeedEvent:
        url = f"{self.rest_url}{REST_PATHS['usdm' if futures else 'spot']}?symbol={symbol}&limit={self.levels}"
        try:
            status, body = await self._fetch(url)
        except (OSError, TimeoutError, ValueError) as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}"
        recv_ns = time.time_ns()
        snap = decode_depth(body, recv_ns) if status == 200 else None
        if type(snap) is not DepthSnapshot:
            self.stats["failed"] += 1
            self._tried[symbol] = recv_ns
            why = f"HTTP {status}" if status != 200 else "not a depth snapshot"
            return FeedEvent(recv_ns, "malformed", symbol, f"depth snapshot: {why}: {body[:100]}")
        self.stats["snapshots"] += 1
        # Older than the first diff buffered since the need: the diffs between are lost and the
        # book will refuse it; ask again at the next diff (Binance: "get a new snapshot").
        if snap.last_update_id < first.first_id - (0 if futures else 1):
            self._tried[symbol] = recv_ns
        else:
            del self._need[symbol]
            self._tried.pop(symbol, None)
        on_frame = self.source.on_frame
        if on_frame is not None:  # recorded as a frame, so the replay has the same snapshot
            stream = f"{symbol.lower()}@{SNAPSHOT_STREAM}"
            on_frame(recv_ns, '{"stream":' + json.dumps(stream) + ',"data":' + body.strip() + "}")
        return DepthSnapshot(recv_ns, snap.last_update_id, snap.bids, snap.asks, symbol, snap.event_time_ms)
