"""Live Binance market data over websockets (public streams only; nothing is ever sent but
an optional, rate-limited control message).

``BinanceSource`` is an async iterator of events: ``Trade`` and ``Quote`` from the exchange,
interleaved with ``FeedEvent`` for what happens to the feed (connect, disconnect, reconnect,
gap, stall, server_shutdown, rollover, malformed). Every frame is stamped with
``time.time_ns()`` as it is taken off the socket and decoded by the same
:class:`~framework.market.decode.FrameDecoder` that replay uses.

Connection policy (Binance's documented limits in brackets):

- combined streams ``/stream?streams=a/b/..``; streams are split into shards of at most
  ``max_streams_per_connection`` (1024 spot, 200 USD-M); USD-M streams are also split by route:
  book tickers and depth under ``/public``, trades and everything else under ``/market``;
- reconnect with capped exponential backoff and jitter from a seeded ``random.Random``;
  connection attempts over all shards are capped (default 200 per 5 min) [300 per 5 min per IP];
- proactive reconnect (``rollover``) before the 24 h connection lifetime, default 23 h 50 min;
  immediate reconnect after a ``serverShutdown`` event;
- stall detection: no frame for ``stall_timeout_s`` gives ``stall`` events, then a reconnect;
- pings from the server are answered by the websockets library as they arrive (it also pings
  the server every ``ping_interval_s`` and drops a connection whose pong is late);
- control messages go through a token bucket below the per-connection limit [5/s spot,
  10/s USD-M; pings and pongs count].
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .decode import FrameDecoder
from .events import FeedEvent, MarketEvent, Quote, Trade

SPOT_URL = "wss://stream.binance.com:9443"
USDM_URL = "wss://fstream.binance.com"
MAX_STREAMS = {"spot": 1024, "usdm": 200}
CONTROL_RATE = {"spot": 4.0, "usdm": 8.0}  # messages per second, below 5 and 10
DEFAULT_STREAMS = {"spot": ("trade", "bookTicker"), "usdm": ("aggTrade", "bookTicker")}
ROLLOVER_S = 23 * 3600 + 50 * 60
_PUBLIC_KINDS = ("bookTicker", "depth")


def stream_route(market: str, stream: str) -> str:
    """The URL path prefix a stream needs: "" on spot, "/public" or "/market" on USD-M."""
    if market != "usdm":
        return ""
    kind = stream.split("@", 1)[1] if "@" in stream else stream
    return "/public" if kind.startswith(_PUBLIC_KINDS) else "/market"


def plan_connections(symbols: Iterable[str], streams: Sequence[str], market: str = "spot",
                     base_url: str | None = None,
                     max_streams_per_connection: int | None = None) -> list[tuple[str, list[str]]]:
    """(url, stream names) for every connection needed, in a stable order."""
    if market not in MAX_STREAMS:
        raise ValueError(f"market {market!r}; expected 'spot' or 'usdm'")
    limit = max_streams_per_connection or MAX_STREAMS[market]
    if limit < 1:
        raise ValueError("max_streams_per_connection must be at least 1")
    base = (base_url or (SPOT_URL if market == "spot" else USDM_URL)).rstrip("/")
    by_route: dict[str, list[str]] = {}
    for sym in symbols:
        for kind in streams:
            name = f"{sym.lower()}@{kind}"
            by_route.setdefault(stream_route(market, name), []).append(name)
    plan = []
    for route, names in by_route.items():
        for i in range(0, len(names), limit):
            chunk = names[i:i + limit]
            plan.append((f"{base}{route}/stream?streams={'/'.join(chunk)}", chunk))
    return plan


GEO_BLOCKED = ("HTTP 451 from the server: Binance refuses connections from this location (its "
               "geo-block, e.g. for the US); connect from a region it serves, or point --url at a mirror "
               "or a local server (execlab fake-binance)")


def connect_failure(exc: BaseException) -> str:
    """Why a connection attempt failed, in words a user can act on."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 451:
        return GEO_BLOCKED
    return f"{type(exc).__name__}: {exc}"[:200]


class RateLimiter:
    """Token bucket: at most ``rate`` messages per second, bursts up to ``burst``.

    ``clock`` returns seconds (monotonic); injectable so tests need no sleeping."""

    def __init__(self, rate: float, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.last = clock()

    def delay(self) -> float:
        """Take one token; return how long to wait before sending (0 when it may go now)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def acquire(self) -> None:
        d = self.delay()
        if d > 0:
            await asyncio.sleep(d)


class Backoff:
    """Capped exponential backoff with "equal jitter": delay in [cap/2, cap]."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random):
        self.initial_s, self.max_s, self.rng = initial_s, max_s, rng
        self.attempt = 0

    def next(self) -> float:
        cap = min(self.max_s, self.initial_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return cap * (0.5 + 0.5 * self.rng.random())

    def reset(self) -> None:
        self.attempt = 0


class _Shard:
    def __init__(self, index: int, url: str, streams: list[str]):
        self.index, self.url, self.streams = index, url, streams
        self.symbols = sorted({s.split("@", 1)[0].upper() for s in streams})
        self.ws: ClientConnection | None = None
        self.limiter: RateLimiter | None = None
        self.last_frame_ns = 0
        self.connects = 0


class BinanceSource:
    """Async iterator of live events. Use ``async with BinanceSource(..) as src:`` and
    ``async for ev in src``, or call :meth:`start` / :meth:`aclose` yourself."""

    def __init__(self, symbols: Iterable[str], streams: Sequence[str] | None = None,
                 market: str = "spot", base_url: str | None = None, *,
                 max_streams_per_connection: int | None = None,
                 on_frame: Callable[[int, str], None] | None = None,
                 stall_timeout_s: float = 30.0, rollover_s: float = ROLLOVER_S,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 max_attempts: int = 200, attempts_window_s: float = 300.0,
                 open_timeout_s: float = 10.0, ping_interval_s: float | None = 20.0,
                 ping_timeout_s: float | None = 20.0, max_frame_bytes: int = 1 << 20,
                 control_rate_per_s: float | None = None, seed: int = 0,
                 queue_max: int = 100_000, decoder: FrameDecoder | None = None):
        self.symbols = [s.upper() for s in symbols]
        if not self.symbols:
            raise ValueError("at least one symbol is needed")
        self.market = market
        self.streams = tuple(streams) if streams else DEFAULT_STREAMS.get(market, ())
        plan = plan_connections(self.symbols, self.streams, market, base_url,
                                max_streams_per_connection)
        self.shards = [_Shard(i, url, names) for i, (url, names) in enumerate(plan)]
        self.on_frame = on_frame
        self.stall_timeout_s = stall_timeout_s
        self.rollover_s = rollover_s
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s, self.ping_timeout_s = ping_interval_s, ping_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.control_rate_per_s = control_rate_per_s or CONTROL_RATE[market]
        self.max_attempts, self.attempts_window_s = max_attempts, attempts_window_s
        self._rng = random.Random(seed)
        self._backoff_initial_s, self._backoff_max_s = backoff_initial_s, backoff_max_s
        self.decoder = decoder or FrameDecoder()
        self._queue: asyncio.Queue[MarketEvent] = asyncio.Queue(queue_max)
        self._tasks: list[asyncio.Task] = []
        self._attempts: collections.deque[float] = collections.deque()
        self._quote_ns: dict[str, int] = {}
        self._trade_ns: dict[str, int] = {}
        self._closed = False
        self.stats = {"connects": 0, "reconnects": 0, "attempts": 0, "failed_attempts": 0,
                      "stalls": 0, "rollovers": 0, "server_shutdowns": 0}

    # -- public --------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.shards]

    def start(self) -> None:
        if not self._tasks and not self._closed:
            self._tasks = [asyncio.create_task(self._run(sh), name=f"binance-shard-{sh.index}")
                           for sh in self.shards]

    async def aclose(self) -> None:
        self._closed = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            self._queue.put_nowait(FeedEvent(time.time_ns(), "end", detail="source closed"))
        except asyncio.QueueFull:
            pass

    async def __aenter__(self) -> BinanceSource:
        self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def __aiter__(self) -> BinanceSource:
        self.start()
        return self

    async def __anext__(self) -> MarketEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        ev = await self._queue.get()
        if self._closed and type(ev) is FeedEvent and ev.kind == "end":
            raise StopAsyncIteration
        return ev

    def ages(self, now_ns: int) -> dict[str, tuple[float, float]]:
        """Per symbol: (ms since the last quote, ms since the last trade); inf if none yet."""
        out = {}
        for sym in self.symbols:
            q = self._quote_ns.get(sym)
            t = self._trade_ns.get(sym)
            out[sym] = ((now_ns - q) / 1e6 if q else math.inf,
                        (now_ns - t) / 1e6 if t else math.inf)
        return out

    async def send_control(self, message: dict, shard: int = 0) -> bool:
        """Send a control message (e.g. LIST_SUBSCRIPTIONS) on one connection, rate-limited.

        Returns False when that connection is not open. Answers arrive as ignored acks."""
        sh = self.shards[shard]
        if sh.limiter is None:
            sh.limiter = RateLimiter(self.control_rate_per_s)
        await sh.limiter.acquire()
        ws = sh.ws
        if ws is None:
            return False
        try:
            await ws.send(msgspec.json.encode(message).decode())
        except ConnectionClosed:
            return False
        return True

    # -- internals -----------------------------------------------------------------------------

    async def _emit(self, ev: MarketEvent) -> None:
        await self._queue.put(ev)

    async def _attempt_budget(self) -> None:
        """Keep connection attempts (all shards together) within the configured window."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._attempts and now - self._attempts[0] > self.attempts_window_s:
                self._attempts.popleft()
            if len(self._attempts) < self.max_attempts:
                self._attempts.append(now)
                self.stats["attempts"] += 1
                return
            await asyncio.sleep(self._attempts[0] + self.attempts_window_s - now + 1e-3)

    async def _run(self, sh: _Shard) -> None:
        backoff = Backoff(self._backoff_initial_s, self._backoff_max_s,
                          random.Random(self._rng.random()))
        down_since_ns = 0  # when the previous connection ended (0: never connected)
        reported_failure = False
        while not self._closed:
            await self._attempt_budget()
            try:
                ws = await connect(sh.url, open_timeout=self.open_timeout_s, proxy=None,
                                   ping_interval=self.ping_interval_s,
                                   ping_timeout=self.ping_timeout_s,
                                   max_size=self.max_frame_bytes, close_timeout=2.0,
                                   compression=None)
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                self.stats["failed_attempts"] += 1
                if not reported_failure:
                    reported_failure = True
                    await self._emit(FeedEvent(time.time_ns(), "disconnect",
                                               detail=f"shard {sh.index}: connect failed: {connect_failure(exc)}"))
                await asyncio.sleep(backoff.next())
                continue
            reported_failure = False
            sh.ws = ws
            sh.connects += 1
            now_ns = time.time_ns()
            self.stats["connects"] += 1
            await self._emit(FeedEvent(now_ns, "connect",
                                       detail=f"shard {sh.index}: {len(sh.streams)} streams"))
            if down_since_ns:
                self.stats["reconnects"] += 1
                since = sh.last_frame_ns or down_since_ns
                gap_ms = (now_ns - since) / 1e6
                await self._emit(FeedEvent(now_ns, "reconnect", detail=f"shard {sh.index}",
                                           gap_ms=gap_ms))
                for sym in sh.symbols:
                    await self._emit(FeedEvent(now_ns, "gap", symbol=sym, gap_ms=gap_ms,
                                               detail="no data while reconnecting"))
            try:
                reason, immediate = await self._pump(sh, ws, backoff)
            finally:
                sh.ws = None
                await ws.close()
            down_since_ns = time.time_ns()
            await self._emit(FeedEvent(down_since_ns, "disconnect",
                                       detail=f"shard {sh.index}: {reason}"[:200]))
            if not immediate and not self._closed:
                await asyncio.sleep(backoff.next())

    async def _pump(self, sh: _Shard, ws: ClientConnection,
                    backoff: Backoff) -> tuple[str, bool]:
        """Read frames until the connection ends; returns (why, reconnect immediately)."""
        loop = asyncio.get_running_loop()
        rollover_at = loop.time() + self.rollover_s
        stall_s = self.stall_timeout_s
        decode = self.decoder.decode
        on_frame = self.on_frame
        put = self._queue.put
        quote_ns, trade_ns = self._quote_ns, self._trade_ns
        got_frame = False
        while True:
            remaining = rollover_at - loop.time()
            wait = min(stall_s, remaining)
            try:
                if wait <= 0:
                    raise TimeoutError
                async with asyncio.timeout(wait):
                    raw = await ws.recv()
            except TimeoutError:
                now_ns = time.time_ns()
                if loop.time() >= rollover_at - 1e-3:
                    self.stats["rollovers"] += 1
                    await put(FeedEvent(now_ns, "rollover",
                                        detail=f"shard {sh.index}: connection age limit"))
                    return "rollover", True
                self.stats["stalls"] += 1
                since = sh.last_frame_ns or now_ns
                for sym in sh.symbols:
                    await put(FeedEvent(now_ns, "stall", symbol=sym, gap_ms=(now_ns - since) / 1e6,
                                        detail=f"no frame for {stall_s:g} s"))
                return "stall", False
            except ConnectionClosed as exc:
                if exc.rcvd is not None:
                    why = f"closed by server: code {exc.rcvd.code} {exc.rcvd.reason}".strip()
                elif exc.sent is not None:
                    why = f"closed here: code {exc.sent.code} {exc.sent.reason}".strip()
                else:
                    why = "connection lost"
                return why, False
            recv_ns = time.time_ns()
            sh.last_frame_ns = recv_ns
            if not got_frame:
                got_frame = True
                backoff.reset()
            if on_frame is not None:
                on_frame(recv_ns, raw if isinstance(raw, str)
                         else raw.decode("utf-8", "replace"))
            ev = decode(raw, recv_ns)
            if ev is None:
                continue
            cls = type(ev)
            if cls is Quote:
                quote_ns[ev.symbol] = recv_ns
            elif cls is Trade:
                trade_ns[ev.symbol] = recv_ns
            await put(ev)
            if cls is FeedEvent and ev.kind == "server_shutdown":
                self.stats["server_shutdowns"] += 1
                return "server shutdown notice", True
