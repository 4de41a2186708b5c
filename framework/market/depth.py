"""Binance diff-depth frames and REST depth snapshots -> typed structs for the local book.

Recognised payloads (combined-stream envelope ``{"stream": ..., "data": {...}}`` or bare):

- spot ``<symbol>@depth`` / ``@depth@100ms``: ``e E s U u b a``;
- USD-M ``<symbol>@depth@0ms`` / ``@100ms`` / ``@250ms`` / ``@500ms`` (and ``@depth``):
  ``e E T s U u pu b a``; the ``pu`` key (previous final update id) is what tells the two apart;
- the REST snapshot ``GET /api/v3/depth`` / ``/fapi/v1/depth``: ``lastUpdateId bids asks``
  (USD-M adds ``E T``). A snapshot names no symbol; the caller attributes it.

``b``/``a``/``bids``/``asks`` are ``[[price, qty], ...]`` with quoted decimals; quantity 0 means
"remove the level". Decoding is typed (msgspec, lax mode reads the quoted numbers as floats).

:func:`decode_depth` never raises. Frames that are not depth (trades, book tickers, acks)
give ``None``; broken depth payloads give a :class:`DepthError` with a short reason
(``bad json``, ``missing field``, ``wrong type``, ``bad price``, ``bad qty``,
``bad update ids``, ``envelope without data``) and an excerpt.
"""

from __future__ import annotations

import math

import msgspec

from .decode import _reason  # the same stable reasons as the trade and quote decoder

EXCERPT_CHARS = 120
SNAPSHOT_STREAM = "depth@snapshot"  # the recorder's stream name for a REST snapshot it fetched
_INF = math.inf
_ABSENT = msgspec.Raw(b"")

Level = tuple[float, float]  # (price, qty)


class DepthUpdate(msgspec.Struct, frozen=True, gc=False):
    """One diff-depth event: every level that changed between update ids ``first_id`` and
    ``final_id`` (inclusive), with its new quantity (0: removed)."""

    recv_ns: int  # local receive time
    symbol: str  # upper case
    first_id: int  # `U`
    final_id: int  # `u`
    prev_final_id: int  # `pu` on USD-M; -1 on spot (spot diffs carry no `pu`)
    event_time_ms: int  # `E`
    transaction_time_ms: int  # `T` on USD-M; 0 on spot
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @property
    def futures(self) -> bool:
        return self.prev_final_id >= 0

    @property
    def ts_ns(self) -> int:
        """Event time, as every market event has it: the receive time."""
        return self.recv_ns


class DepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A REST depth snapshot: the top levels of the book as of update id ``last_update_id``."""

    recv_ns: int
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    symbol: str = ""  # the REST answer does not say; "" until the caller attributes it
    event_time_ms: int = 0  # USD-M only

    @property
    def ts_ns(self) -> int:
        return self.recv_ns


class DepthError(msgspec.Struct, frozen=True, gc=False):
    """A depth payload that could not be used, and why."""

    recv_ns: int
    reason: str
    excerpt: str
    symbol: str = ""


# ---------------------------------------------------------------------------------------------
# Wire structs (Binance's keys; unknown keys are ignored).


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = _ABSENT
    e: str | None = None
    lastUpdateId: msgspec.Raw = _ABSENT  # noqa: N815 - Binance's key


class _DiffMsg(msgspec.Struct):
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    e: str = ""
    T: int = 0
    pu: int = -1


class _SnapshotMsg(msgspec.Struct):
    lastUpdateId: int  # noqa: N815
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    E: int = 0


_env_dec = msgspec.json.Decoder(_Envelope, strict=False)
_diff_dec = msgspec.json.Decoder(_DiffMsg, strict=False)
_snap_dec = msgspec.json.Decoder(_SnapshotMsg, strict=False)


def _excerpt(raw: str | bytes) -> str:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw[: EXCERPT_CHARS * 4]).decode("utf-8", "replace")
    return raw[:EXCERPT_CHARS].replace("\n", "\\n").replace("\r", "\\r")


def _bad_levels(levels: list[tuple[float, float]]) -> str | None:
    for p, q in levels:
        if not (0.0 < p < _INF):  # also false for NaN
            return "bad price"
        if not (0.0 <= q < _INF):
            return "bad qty"
    return None


def _diff(raw, payload, recv_ns: int, stream_sym: str) -> DepthUpdate | DepthError:
    try:
        m = _diff_dec.decode(payload)
    except msgspec.DecodeError as exc:
        return DepthError(recv_ns, _reason(exc), _excerpt(raw), stream_sym)
    sym = m.s.upper()
    bad = _bad_levels(m.b) or _bad_levels(m.a)
    if bad:
        return DepthError(recv_ns, bad, _excerpt(raw), sym)
    if m.U < 0 or m.u < m.U or m.pu >= m.U:
        return DepthError(recv_ns, "bad update ids", _excerpt(raw), sym)
    return DepthUpdate(recv_ns, sym, m.U, m.u, m.pu if m.pu >= 0 else -1, m.E, m.T,
                       tuple(m.b), tuple(m.a))


def _snapshot(raw, payload, recv_ns: int, symbol: str) -> DepthSnapshot | DepthError:
    try:
        m = _snap_dec.decode(payload)
    except msgspec.DecodeError as exc:
        return DepthError(recv_ns, _reason(exc), _excerpt(raw), symbol)
    bad = _bad_levels(m.bids) or _bad_levels(m.asks)
    if bad:
        return DepthError(recv_ns, bad, _excerpt(raw), symbol)
    if m.lastUpdateId < 0:
        return DepthError(recv_ns, "bad update ids", _excerpt(raw), symbol)
    return DepthSnapshot(recv_ns, m.lastUpdateId, tuple(m.bids), tuple(m.asks), symbol, m.E)


def decode_depth(raw: str | bytes, recv_ns: int,
                 ) -> DepthUpdate | DepthSnapshot | DepthError | None:
    """Decode one frame if it is depth data; ``None`` for anything else. Never raises."""
    try:
        env = _env_dec.decode(raw)
    except msgspec.DecodeError:
        return None  # not JSON at all: the market decoder reports it; not ours to judge
    except Exception:
        return None
    stream = env.stream
    if stream is not None:
        at = stream.find("@")
        kind = stream[at + 1:] if at >= 0 else ""
        if not kind.startswith("depth"):
            return None
        sym = stream[:at].upper() if at > 0 else ""
        if not env.data:
            return DepthError(recv_ns, "envelope without data", _excerpt(raw), sym)
        # A partial-depth stream (`@depth5`, `@depth20`) is a snapshot without a symbol key, and
        # so is a REST snapshot the recorder wrote under `<symbol>@depth@snapshot`.
        if kind[5:6].isdigit() or kind == SNAPSHOT_STREAM:
            snap = _snapshot(raw, env.data, recv_ns, sym)
            return snap
        return _diff(raw, env.data, recv_ns, sym)
    if env.e == "depthUpdate":
        return _diff(raw, raw, recv_ns, "")
    if env.e is None and env.lastUpdateId:
        return _snapshot(raw, raw, recv_ns, "")
    return None
