"""Raw Binance websocket text frames -> typed market events.

One frame gives at most one event. Decoding is typed (msgspec straight into small structs; no
intermediate dicts): the combined-stream envelope is decoded first with ``data`` kept as a raw
slice, then the payload is decoded by a decoder chosen from the stream name. Bare payloads
(no envelope) are recognised by their event type ``e`` or, for spot ``bookTicker``, by the
``u``/``b``/``a`` fields.

Decoding never raises. Frames that are not market data (depth updates, REST depth snapshots,
subscribe acknowledgements) are counted as *ignored* by kind and give no event. Frames that are
broken or implausible (truncated JSON, wrong types, missing fields, unknown stream, non-finite,
zero or negative prices, negative quantities, a trade of no quantity, a crossed book, a symbol
that is empty or not plain letters and digits) give a
``FeedEvent(kind="malformed")`` with a short excerpt and the reason, and are counted by reason.
"""

from __future__ import annotations

import math
import re
from itertools import chain
from operator import attrgetter

import msgspec
import numpy as np

from .columns import OTHER, QUOTE, TRADE, EventBlock
from .events import FeedEvent, MarketEvent, Quote, Trade

EXCERPT_CHARS = 120

# ---------------------------------------------------------------------------------------------
# Wire structs. Field names are Binance's one-letter keys; unknown keys are ignored, so newer
# versions that add fields still decode. strict=False lets quoted numbers ("61837.63") decode
# into floats; anything that is not a number (a bool, an object, "abc") is still a type error.


_ABSENT = msgspec.Raw(b"")


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = _ABSENT  # empty when the key is missing
    # Bare payloads and non-stream messages: just enough to tell them apart.
    e: str | None = None
    lastUpdateId: int | None = None  # noqa: N815 - Binance's key
    result: msgspec.Raw = _ABSENT
    id: msgspec.Raw = _ABSENT
    u: msgspec.Raw = _ABSENT
    b: msgspec.Raw = _ABSENT


class _TradeMsg(msgspec.Struct):
    E: int
    s: str
    t: int
    p: float
    q: float
    T: int
    m: bool
    e: str = ""
    X: str = ""  # futures order type


class _AggTradeMsg(msgspec.Struct):
    E: int
    s: str
    a: int
    p: float
    q: float
    T: int
    m: bool
    e: str = ""
    X: str = ""


class _BookTickerMsg(msgspec.Struct):
    u: int
    s: str
    b: float
    B: float
    a: float
    A: float
    e: str = ""
    T: int = 0  # futures only
    E: int = 0  # futures only


class _EventType(msgspec.Struct):
    e: str | None = None
    E: int = 0
    s: str = ""


_env_dec = msgspec.json.Decoder(_Envelope, strict=False)
_trade_dec = msgspec.json.Decoder(_TradeMsg, strict=False)
_agg_dec = msgspec.json.Decoder(_AggTradeMsg, strict=False)
_book_dec = msgspec.json.Decoder(_BookTickerMsg, strict=False)
_etype_dec = msgspec.json.Decoder(_EventType, strict=False)
# Payloads of a block decoded in one call (decode_columns): each element as by the ones above.
_books_dec = msgspec.json.Decoder(list[_BookTickerMsg], strict=False)
_trades_dec = msgspec.json.Decoder(list[_TradeMsg], strict=False)
_envs_dec = msgspec.json.Decoder(list[_Envelope], strict=False)
_raws_dec = msgspec.json.Decoder(list[msgspec.Raw])
_BOOK_NUMBERS = attrgetter("b", "B", "a", "A")
_PRINT_NUMBERS = attrgetter("p", "q")
_S, _M = attrgetter("s"), attrgetter("m")

_TRADE, _AGG, _BOOK = "trade", "aggTrade", "bookTicker"
_INF = math.inf
# Stream-name suffixes (after the first "@") we know and deliberately skip.
_IGNORED_STREAM_PREFIXES = ("depth", "kline", "markPrice", "ticker", "miniTicker", "avgPrice",
                            "forceOrder", "continuousKline", "compositeIndex")
_IGNORED_EVENT_TYPES = {"depthUpdate": "depth", "kline": "kline", "markPriceUpdate": "markPrice",
                        "24hrTicker": "ticker", "24hrMiniTicker": "ticker"}
_SHUTDOWN_EVENTS = ("serverShutdown",)
_STREAM_PREFIX = b'{"stream":"'
_DATA_PREFIX = b'","data":{'
_PLAIN_NAME = re.compile(rb"[A-Za-z0-9@_.\-]{1,100}")  # no escapes, quotes or control bytes


class DecodeCounters(msgspec.Struct):
    """What the decoder has seen. Plain ints and dicts: cheap to read, easy to report."""

    frames: int = 0
    events: dict[str, int] = msgspec.field(default_factory=dict)  # trade / quote / feed
    ignored: dict[str, int] = msgspec.field(default_factory=dict)  # depth / snapshot / ack ...
    malformed: dict[str, int] = msgspec.field(default_factory=dict)  # by reason

    def as_dict(self) -> dict:
        return {"frames": self.frames, "events": dict(self.events),
                "ignored": dict(self.ignored), "malformed": dict(self.malformed)}


def _excerpt(raw: str | bytes) -> str:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw[: EXCERPT_CHARS * 4]).decode("utf-8", "replace")
    text = raw[:EXCERPT_CHARS]
    return text.replace("\n", "\\n").replace("\r", "\\r")


class FrameDecoder:
    """Turns one raw text frame and its receive time into at most one event.

    ``decode(raw, recv_ns)`` returns a ``Trade``, ``Quote`` or ``FeedEvent`` (malformed or
    server_shutdown), or ``None`` for frames that carry nothing for the pipeline. ``counters``
    keeps the tallies. The same decoder is used by the live source, replay and scenarios, so
    all three yield identical events for identical frames.
    """

    __slots__ = ("counters", "_symbols", "_streams", "_ev", "_ign", "_bad", "_routes")

    def __init__(self) -> None:
        self.counters = DecodeCounters()
        self._symbols: dict[str, str] = {}  # raw symbol text -> upper-case (interned)
        self._streams: dict[str, tuple[str, str]] = {}  # stream name -> (kind, its symbol)
        self._ev = self.counters.events
        self._ign = self.counters.ignored
        self._bad = self.counters.malformed
        self._routes: dict[bytes, tuple] = {}  # stream name -> how decode_bytes handles it

    # -- helpers -------------------------------------------------------------------------------

    def _sym(self, s: str) -> str:
        """The symbol in upper case, or "" when it is not one: a symbol is 1 to 32 ASCII letters
        and digits. An event without a symbol would belong to no pipeline, so both replay
        paths and the live path must never see one."""
        up = self._symbols.get(s)
        if up is None:
            up = s.upper() if 0 < len(s) <= 32 and s.isascii() and s.isalnum() else ""
            if len(self._symbols) < 10_000:
                self._symbols[s] = up
        return up

    def _ignore(self, kind: str) -> None:
        self._ign[kind] = self._ign.get(kind, 0) + 1

    def _malformed(self, raw, recv_ns: int, reason: str, symbol: str = "") -> FeedEvent:
        self._bad[reason] = self._bad.get(reason, 0) + 1
        self._ev["feed"] = self._ev.get("feed", 0) + 1
        return FeedEvent(ts_ns=recv_ns, kind="malformed", symbol=symbol,
                         detail=f"{reason}: {_excerpt(raw)}")

    def bad_line(self, line: str, recv_ns: int) -> FeedEvent:
        """A line of a frame file without a receive stamp: counted as a malformed frame."""
        self.counters.frames += 1
        return self._malformed(line, recv_ns, "bad stamp")

    # -- payloads ------------------------------------------------------------------------------

    def _trade(self, raw, payload, recv_ns: int, stream_sym: str) -> MarketEvent:
        return self._any_trade(_trade_dec, False, raw, payload, recv_ns, stream_sym)

    def _agg_trade(self, raw, payload, recv_ns: int, stream_sym: str) -> MarketEvent:
        return self._any_trade(_agg_dec, True, raw, payload, recv_ns, stream_sym)

    def _any_trade(self, decoder, aggregated: bool, raw, payload, recv_ns: int, stream_sym: str) -> MarketEvent:
        """@trade and @aggTrade: same checks; the id is `t` for one and `a` for the other."""
        try:
            m = decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return self._malformed(raw, recv_ns, _reason(exc), stream_sym)
        return self._checked_trade(m, aggregated, raw, recv_ns, stream_sym)

    def _checked_trade(self, m, aggregated: bool, raw, recv_ns: int, stream_sym: str) -> MarketEvent:
        sym = self._symbols.get(m.s) or self._sym(m.s)
        if not sym:
            return self._malformed(raw, recv_ns, "bad symbol", stream_sym)
        p, q = m.p, m.q
        if not (0.0 < p < _INF):  # also false for NaN
            return self._malformed(raw, recv_ns, "bad price", sym)
        if not (0.0 < q < _INF):  # a print of nothing did not happen
            return self._malformed(raw, recv_ns, "bad qty", sym)
        ev = self._ev
        ev["trade"] = ev.get("trade", 0) + 1
        return Trade(recv_ns, sym, p, q, m.m, m.a if aggregated else m.t, m.T, m.E, aggregated, m.X)

    def _book(self, raw, payload, recv_ns: int, stream_sym: str) -> MarketEvent:
        try:
            m = _book_dec.decode(payload)
        except msgspec.DecodeError as exc:
            return self._malformed(raw, recv_ns, _reason(exc), stream_sym)
        return self._checked_book(m, raw, recv_ns, stream_sym)

    def _checked_book(self, m, raw, recv_ns: int, stream_sym: str) -> MarketEvent:
        sym = self._symbols.get(m.s) or self._sym(m.s)
        if not sym:
            return self._malformed(raw, recv_ns, "bad symbol", stream_sym)
        b, a = m.b, m.a
        if not (0.0 < b < _INF and 0.0 < a < _INF):  # also false for NaN
            return self._malformed(raw, recv_ns, "bad price", sym)
        bq, aq = m.B, m.A
        if not (0.0 <= bq < _INF and 0.0 <= aq < _INF):
            return self._malformed(raw, recv_ns, "bad qty", sym)
        if b > a:
            return self._malformed(raw, recv_ns, "crossed book", sym)
        ev = self._ev
        ev["quote"] = ev.get("quote", 0) + 1
        return Quote(recv_ns, sym, b, bq, a, aq, m.u, m.E, m.T)

    def _shutdown(self, raw, recv_ns: int, symbol: str = "") -> FeedEvent:
        self._ev["feed"] = self._ev.get("feed", 0) + 1
        return FeedEvent(ts_ns=recv_ns, kind="server_shutdown", symbol=symbol,
                         detail=_excerpt(raw))

    # -- entry point ---------------------------------------------------------------------------

    def decode(self, raw: str | bytes, recv_ns: int) -> MarketEvent | None:
        """Decode one frame; never raises."""
        self.counters.frames += 1
        try:
            env = _env_dec.decode(raw)
        except msgspec.DecodeError as exc:
            return self._malformed(raw, recv_ns, _reason(exc))
        except Exception:  # e.g. a str with lone surrogates
            return self._malformed(raw, recv_ns, "undecodable text")
        stream = env.stream
        if stream is not None:
            data = env.data
            known = self._streams.get(stream)
            if known is None:
                at = stream.find("@")
                known = (stream[at + 1:] if at >= 0 else stream, self._sym(stream[:at]) if at > 0 else "")
                if len(self._streams) < 10_000:
                    self._streams[stream] = known
            kind, stream_sym = known
            if not data:
                return self._malformed(raw, recv_ns, "envelope without data", stream_sym)
            if kind == _BOOK:
                return self._book(raw, data, recv_ns, stream_sym)
            if kind == _TRADE:
                return self._trade(raw, data, recv_ns, stream_sym)
            if kind == _AGG:
                return self._agg_trade(raw, data, recv_ns, stream_sym)
            if kind.startswith(_IGNORED_STREAM_PREFIXES):
                self._ignore(kind.split("@", 1)[0])
                return None
            try:
                inner = _etype_dec.decode(data)
            except msgspec.DecodeError:
                inner = None
            if inner is not None and inner.e in _SHUTDOWN_EVENTS:
                return self._shutdown(raw, recv_ns, stream_sym)
            return self._malformed(raw, recv_ns, "unknown stream", stream_sym)
        # No envelope: a bare payload or a control message.
        e = env.e
        if e is not None:
            if e == _TRADE:
                return self._trade(raw, raw, recv_ns, "")
            if e == _BOOK:
                return self._book(raw, raw, recv_ns, "")
            if e == _AGG:
                return self._agg_trade(raw, raw, recv_ns, "")
            if e in _SHUTDOWN_EVENTS:
                return self._shutdown(raw, recv_ns)
            ign = _IGNORED_EVENT_TYPES.get(e)
            if ign is not None:
                self._ignore(ign)
                return None
            return self._malformed(raw, recv_ns, "unknown event type")
        if env.lastUpdateId is not None:
            self._ignore("snapshot")
            return None
        if env.id and env.result:
            self._ignore("ack")
            return None
        if env.u and env.b:
            return self._book(raw, raw, recv_ns, "")  # spot bookTicker: no `e`
        return self._malformed(raw, recv_ns, "unrecognised message")

    __call__ = decode

    # -- bytes, as a recording holds them ------------------------------------------------------

    def decode_bytes(self, raw: bytes, recv_ns: int) -> MarketEvent | None:
        """Decode one frame given as the bytes of a recording's line (without its newline):
        the same result and the same counters as ``decode`` of its text (decoded as UTF-8 with
        replacement), but cheaper for the usual shape ``{"stream":NAME,"data":{...}}``.

        For that shape the payload is sliced out and decoded alone (the envelope is not parsed
        a second time): when it decodes, the whole frame is valid JSON with that stream and
        data, so ``decode`` would have reached the same payload. A frame of a stream this
        decoder ignores (``skips_stream``) is counted as ignored once msgspec has scanned it as an
        envelope of that stream, without parsing its body into objects (a depth update is 40 %
        of a recording's bytes). Anything else, and any payload that does not decode, goes through ``decode``,
        which gives the exact reason."""
        if raw[:11] == _STREAM_PREFIX:
            q = raw.find(b'"', 11)
            route = self._routes.get(raw[11:q])
            if route is None and q > 11:
                route = self._route(raw[11:q])
            if route is not None and raw[q:q + 10] == _DATA_PREFIX and raw[-1:] == b"}":
                kind, stream_sym = route
                if kind is None:  # a stream the session does not use
                    if self._whole_envelope(raw, q):
                        self.counters.frames += 1
                        self._ignore(stream_sym)
                        return None
                else:
                    try:
                        m = kind.decode(raw[q + 9:-1])
                    except msgspec.DecodeError:
                        m = None
                    if m is not None:
                        self.counters.frames += 1
                        if kind is _book_dec:
                            return self._checked_book(m, raw, recv_ns, stream_sym)
                        return self._checked_trade(m, kind is _agg_dec, raw, recv_ns, stream_sym)
        return self.decode(raw.decode("utf-8", "replace"), recv_ns)

    @staticmethod
    def _whole_envelope(raw: bytes, q: int) -> bool:
        """Whether ``decode`` would ignore this frame of an unused stream rather than call it
        malformed: the whole frame is an envelope of that stream with data. The frame is
        scanned by msgspec into raw slices, not parsed into objects: cheap, and exactly the
        text decoder's verdict on the JSON."""
        try:
            env = _env_dec.decode(raw)
        except msgspec.DecodeError:
            return False
        return bool(env.data) and env.stream == raw[11:q].decode("ascii")

    # -- a block of plain frames at once --------------------------------------------------------

    def decode_plain_block(self, stamps: list[int], names: list[bytes], raws: list[bytes],
                           symbols: set[str] | None) -> list[MarketEvent] | None:
        """Decode a block of frames of the usual shape ``{"stream":NAME,"data":{...}}`` (``NAME``
        a plain name, ``raws[i]`` the whole frame, ``names[i]`` its stream name, ``stamps[i]``
        its receive time) all at once: the events that ``decode_bytes`` gives frame by frame,
        keeping those of ``symbols`` (None: all), with the same counters.

        All or nothing: when any frame is not one ``decode_bytes`` takes on its fast path and
        accepts (a payload that does not decode, a failed check, an unknown stream), or a
        counter would get a key it does not have yet (the counters keep the order of first
        sight), nothing is counted and None is returned: the caller decodes the block frame by
        frame. The work per frame is one msgspec call and one event, without the per-frame
        routing, counting and filtering in Python."""
        n = len(raws)
        routes = self._routes
        ev_counts = self._ev
        ignored: dict[str, int] = {}
        quotes = trades = 0
        out: list = [None] * n
        sym_of = self._symbols.get
        for name in set(names):
            route = routes.get(name) or self._route(name)
            if route is None:
                return None
            kind, stream_sym = route
            rows = [i for i, nm in enumerate(names) if nm == name]
            if kind is None:  # a stream the session does not use: judged by its envelope only
                text = name.decode("ascii")
                try:
                    envs = [_env_dec.decode(raws[i]) for i in rows]
                except msgspec.DecodeError:
                    return None
                if not all(env.data and env.stream == text for env in envs):
                    return None
                ignored[stream_sym] = ignored.get(stream_sym, 0) + len(rows)
                continue
            cut = 20 + len(name)  # '{"stream":"' NAME '","data":' ... '}'
            try:
                msgs = [kind.decode(raws[i][cut:-1]) for i in rows]
            except msgspec.DecodeError:
                return None
            if kind is _book_dec:
                for i, m in zip(rows, msgs, strict=True):
                    b, a, bq, aq = m.b, m.a, m.B, m.A
                    sym = sym_of(m.s) or self._sym(m.s)
                    if not (sym and 0.0 < b <= a < _INF and 0.0 <= bq < _INF and 0.0 <= aq < _INF):
                        return None  # _checked_book says why, frame by frame
                    if symbols is None or sym in symbols:
                        out[i] = Quote(stamps[i], sym, b, bq, a, aq, m.u, m.E, m.T)
                quotes += len(rows)
            else:
                agg = kind is _agg_dec
                for i, m in zip(rows, msgs, strict=True):
                    p, q = m.p, m.q
                    sym = sym_of(m.s) or self._sym(m.s)
                    if not (sym and 0.0 < p < _INF and 0.0 < q < _INF):
                        return None  # _checked_trade says why, frame by frame
                    if symbols is None or sym in symbols:
                        out[i] = Trade(stamps[i], sym, p, q, m.m, m.a if agg else m.t, m.T, m.E, agg, m.X)
                trades += len(rows)
        ign = self._ign
        if (quotes and "quote" not in ev_counts) or (trades and "trade" not in ev_counts) \
                or any(k not in ign for k in ignored):
            return None
        self.counters.frames += n
        if quotes:
            ev_counts["quote"] += quotes
        if trades:
            ev_counts["trade"] += trades
        for k, c in ignored.items():
            ign[k] += c
        return [ev for ev in out if ev is not None]

    def decode_columns(self, stamps: list[int], names: list[bytes], raws: list[bytes], payloads: list[bytes],
                       symbols: set[str] | None) -> EventBlock | None:
        """``decode_plain_block`` (``payloads[i]``: the data of frame i) as an ``EventBlock``:
        the same events and counters. The payloads of each kind are decoded in one msgspec call
        (into the same wire structs), the checks run over numpy columns, and an event is built
        only when the block's reader asks for its row. None (nothing counted) where
        ``decode_plain_block`` would refuse, and for ``aggTrade`` streams or a stamp beyond
        int64: ``decode_plain_block`` then takes the block."""
        n = len(raws)
        if not n or len(payloads) != n:
            return None
        try:
            ts = np.array(stamps, np.int64)
        except OverflowError:
            return None
        code: dict[bytes, int] = {}
        ignored_as: dict[bytes, str] = {}
        for name in set(names):
            route = self._routes.get(name) or self._route(name)
            if route is None or route[0] is _agg_dec:
                return None
            kind, what = route
            code[name] = QUOTE if kind is _book_dec else TRADE if kind is _trade_dec else OTHER
            if kind is None:
                ignored_as[name] = what
        kinds = np.fromiter(map(code.__getitem__, names), np.int8, n)
        ignored: dict[str, int] = {}
        skipped = np.flatnonzero(kinds == OTHER).tolist()  # frames of streams the session does not use
        if skipped:  # judged by their envelopes only, as decode_bytes does
            envs = _decode_all(_envs_dec, list(map(raws.__getitem__, skipped)))
            if envs is None or not all(env.data and env.stream == names[i].decode("ascii")
                                       for i, env in zip(skipped, envs, strict=True)):
                return None
            for name, what in ignored_as.items():
                ignored[what] = ignored.get(what, 0) + names.count(name)
        q_rows = np.flatnonzero(kinds == QUOTE)
        t_rows = np.flatnonzero(kinds == TRADE)
        quotes = _decode_all(_books_dec, list(map(payloads.__getitem__, q_rows.tolist())))
        trades = _decode_all(_trades_dec, list(map(payloads.__getitem__, t_rows.tolist())))
        if quotes is None or trades is None:
            return None
        # The decoder's checks, for the whole block at once (_checked_book, _checked_trade).
        up = {s: self._sym(s) for s in set(map(_S, chain(quotes, trades)))}
        if "" in up.values():
            return None
        sym_names = list(dict.fromkeys(up.values()))
        at = {s: sym_names.index(u) for s, u in up.items()}
        sym = np.full(n, -1, np.int32)
        book = np.zeros((n, 4))
        prints = np.zeros((n, 2))
        maker = np.zeros(n, np.bool_)
        if quotes:
            k = len(quotes)
            v = np.fromiter(chain.from_iterable(map(_BOOK_NUMBERS, quotes)), np.float64, 4 * k).reshape(k, 4)
            b, bq, a, aq = v.T
            if not ((0.0 < b) & (b <= a) & (a < _INF) & (0.0 <= bq) & (bq < _INF) & (0.0 <= aq) & (aq < _INF)).all():
                return None  # _checked_book says why, frame by frame
            book[q_rows] = v
            sym[q_rows] = np.fromiter(map(at.__getitem__, map(_S, quotes)), np.int32, k)
        if trades:
            k = len(trades)
            v = np.fromiter(chain.from_iterable(map(_PRINT_NUMBERS, trades)), np.float64, 2 * k).reshape(k, 2)
            p, q = v.T
            if not ((0.0 < p) & (p < _INF) & (0.0 < q) & (q < _INF)).all():
                return None  # _checked_trade says why, frame by frame
            prints[t_rows] = v
            maker[t_rows] = np.fromiter(map(_M, trades), np.bool_, k)
            sym[t_rows] = np.fromiter(map(at.__getitem__, map(_S, trades)), np.int32, k)
        ev_counts, ign = self._ev, self._ign
        if (len(q_rows) and "quote" not in ev_counts) or (len(t_rows) and "trade" not in ev_counts) \
                or any(k not in ign for k in ignored):
            return None
        self.counters.frames += n
        if len(q_rows):
            ev_counts["quote"] += len(q_rows)
        if len(t_rows):
            ev_counts["trade"] += len(t_rows)
        for k, c in ignored.items():
            ign[k] += c
        keep = kinds != OTHER
        if symbols is not None:
            wanted = np.array([s in symbols for s in sym_names] + [False], np.bool_)
            keep &= wanted[sym]  # -1 (no symbol: the ignored rows) reads the last: False
        rows = np.flatnonzero(keep)
        pos = np.zeros(n, np.int64)
        pos[q_rows] = np.arange(len(q_rows))
        pos[t_rows] = np.arange(len(t_rows))
        kind_of, pos_of, sym_of = kinds.tolist(), pos.tolist(), sym.tolist()

        def build(k: int) -> MarketEvent:  # row k's event, as _checked_book / _checked_trade make it
            if kind_of[k] == QUOTE:
                m = quotes[pos_of[k]]
                return Quote(stamps[k], sym_names[sym_of[k]], m.b, m.B, m.a, m.A, m.u, m.E, m.T)
            m = trades[pos_of[k]]
            return Trade(stamps[k], sym_names[sym_of[k]], m.p, m.q, m.m, m.t, m.T, m.E, False, m.X)

        block = EventBlock(ts, kinds, sym, sym_names, book, prints, maker, [None] * n, build)
        return block if len(rows) == n else block.take(rows)

    def skips_stream(self, kind: str) -> bool:
        """Whether frames of a stream of this kind (the name after the first ``@``) carry
        nothing for the pipeline, so a recording's frames of it may be skipped unparsed."""
        return kind.startswith(_IGNORED_STREAM_PREFIXES)

    def _route(self, name: bytes) -> tuple | None:
        """How ``decode_bytes`` handles a stream: (payload decoder, symbol), (None, what the
        ignored counter calls it), or None: not a plain name, left to ``decode``."""
        if not _PLAIN_NAME.fullmatch(name):
            return None
        text = name.decode("ascii")
        at = text.find("@")
        kind = text[at + 1:] if at >= 0 else text
        sym = self._sym(text[:at]) if at > 0 else ""
        decoder = {_BOOK: _book_dec, _TRADE: _trade_dec, _AGG: _agg_dec}.get(kind)
        if decoder is not None:
            route = (decoder, sym)
        elif self.skips_stream(kind):
            route = (None, kind.split("@", 1)[0])
        else:
            return None
        if len(self._routes) < 10_000:
            self._routes[name] = route
        return route


def _decode_all(decoder: msgspec.json.Decoder, payloads: list[bytes]) -> list | None:
    """Each payload decoded as one frame's (a list of ``decoder``'s type), in one call: the
    payloads are joined into one JSON array. None when any does not decode, or when the array's
    elements are not exactly the payloads (text such as ``{"s":"}`` joined with the next one
    could make one element of two): each element's extent must be its payload's."""
    if not payloads:
        return []
    text = b"[" + b",".join(payloads) + b"]"
    try:
        if list(map(len, _raws_dec.decode(text))) != list(map(len, payloads)):
            return None
        return decoder.decode(text)
    except msgspec.DecodeError:
        return None


def _reason(exc: Exception) -> str:
    """A short, stable reason from a msgspec error: the counters key on it."""
    msg = str(exc)
    if msg.startswith("JSON is malformed") or msg.startswith("Input data was truncated"):
        return "bad json"
    if msg.startswith("Object missing required field"):
        return "missing field"
    if msg.startswith("Expected"):
        return "wrong type"
    if "out of range" in msg:
        return "number out of range"
    return "bad json"
