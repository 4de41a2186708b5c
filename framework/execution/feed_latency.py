"""Feed latency of a recording, from the exchange's own stamps against the receive time.

Binance stamps most frames: ``E`` (event time: when the exchange published the message) and
``T`` (trade time on trades, transaction time on USD-M book tickers and depth). A recording
stamps every frame with the local receive time. ``recv - E`` is then the feed latency **plus
the offset between the two clocks**, and the offset is not small in general (the recorder of the
shipped files ran about 1.27 s behind the exchange).

The offset cannot be separated from the fastest one-way delay without a round trip, so it is
estimated as what every frame pays at least: per window of ``window_s`` seconds the ``quantile``
(default 0: the minimum) of ``recv - E``; the estimate is the median of the window values, and
the spread of the window values shows a drifting clock. The latencies reported are
``recv - E - offset``: the delay above the fastest frame, i.e. queuing and jitter, which is the
part that varies and matters for a model. ``E - T`` (publication after the match, one clock)
needs no offset and is reported as it is.

Stamps are in milliseconds, so every figure is quantised to 1 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

NS_PER_MS = 1_000_000


class _Payload(msgspec.Struct):
    e: str | None = None
    E: int | None = None
    T: int | None = None


class _Frame(msgspec.Struct):
    stream: str | None = None
    data: _Payload | None = None
    e: str | None = None
    E: int | None = None
    T: int | None = None


_decode = msgspec.json.Decoder(_Frame).decode


def stream_kind(stream: str | None, event: str | None) -> str:
    """'trade', 'aggTrade', 'bookTicker', 'depth', the event name, or 'other' (a REST reply); from the stream name when
    the frame is a combined-stream envelope, else from the payload's ``e``."""
    if stream:
        tail = stream.split("@", 1)[1] if "@" in stream else stream
        if tail.startswith("depth"):
            return "depth"
        return tail.split("@", 1)[0]
    if event == "depthUpdate":
        return "depth"
    return event or "other"


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of an already sorted, non-empty list."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class StreamLatency:
    """Figures of one stream kind."""

    kind: str
    frames: int = 0
    delays_ms: list[float] = field(default_factory=list)  # recv - E
    publish_ms: list[float] = field(default_factory=list)  # E - T where both exist
    times_ns: list[int] = field(default_factory=list)


@dataclass
class FeedLatencyReport:
    path: str
    frames: int  # frames read
    stamped: int  # frames with an E
    unstamped: dict[str, int]  # frames without E, by kind (spot bookTicker has none)
    offset_ms: float | None  # the estimated clock offset: recv - E that every frame pays at least
    window_offsets_ms: list[float]  # the per-window estimates
    streams: dict[str, dict]  # kind -> figures
    window_s: float
    quantile: float

    def as_dict(self) -> dict:
        return {"path": self.path, "frames": self.frames, "stamped": self.stamped,
                "unstamped": self.unstamped, "offset_ms": self.offset_ms,
                "offset_window_min_ms": min(self.window_offsets_ms) if self.window_offsets_ms else None,
                "offset_window_max_ms": max(self.window_offsets_ms) if self.window_offsets_ms else None,
                "windows": len(self.window_offsets_ms), "window_s": self.window_s,
                "quantile": self.quantile, "streams": self.streams}


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "mean": round(sum(v) / len(v), 3), "p50": round(quantile(v, 0.5), 3),
            "p90": round(quantile(v, 0.9), 3), "p99": round(quantile(v, 0.99), 3),
            "p999": round(quantile(v, 0.999), 3), "max": round(v[-1], 3)}


def window_offsets(times_ns: list[int], delays_ms: list[float], window_s: float, q: float) -> list[float]:
    """The ``q`` quantile of the delays in each window of ``window_s`` seconds (by receive time)."""
    if not times_ns:
        return []
    width = int(round(window_s * 1e9))
    buckets: dict[int, list[float]] = {}
    for t, d in zip(times_ns, delays_ms, strict=True):
        buckets.setdefault(t // width, []).append(d)
    return [quantile(sorted(v), q) for _, v in sorted(buckets.items())]


def measure(frames, path: str = "", window_s: float = 60.0, q: float = 0.0) -> FeedLatencyReport:
    """Measure over an iterable of ``(recv_ns, raw frame text)``."""
    streams: dict[str, StreamLatency] = {}
    unstamped: dict[str, int] = {}
    n = 0
    all_t: list[int] = []
    all_d: list[float] = []
    for recv_ns, raw in frames:
        if recv_ns is None:
            continue
        n += 1
        try:
            fr = _decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # not a stamped JSON frame (a REST reply, text)
        body = fr.data if fr.data is not None else fr
        kind = stream_kind(fr.stream, body.e)
        if not isinstance(body.E, int) or body.E <= 0:
            unstamped[kind] = unstamped.get(kind, 0) + 1
            continue
        s = streams.get(kind)
        if s is None:
            s = streams[kind] = StreamLatency(kind)
        s.frames += 1
        d = (recv_ns - body.E * NS_PER_MS) / NS_PER_MS
        s.delays_ms.append(d)
        s.times_ns.append(recv_ns)
        all_t.append(recv_ns)
        all_d.append(d)
        if isinstance(body.T, int) and body.T > 0:
            s.publish_ms.append(float(body.E - body.T))
    offsets = window_offsets(all_t, all_d, window_s, q)
    offset = quantile(sorted(offsets), 0.5) if offsets else None
    out: dict[str, dict] = {}
    for kind, s in sorted(streams.items()):
        above = [d - offset for d in s.delays_ms] if offset is not None else []
        out[kind] = {"frames": s.frames, "raw_recv_minus_E_ms": _summary(s.delays_ms),
                     "latency_above_offset_ms": _summary(above),
                     "E_minus_T_ms": _summary(s.publish_ms)}
    return FeedLatencyReport(path, n, len(all_d), dict(sorted(unstamped.items())), offset, offsets, out,
                             window_s, q)


def measure_file(path: str | Path, window_s: float = 60.0, q: float = 0.0) -> FeedLatencyReport:
    from framework.market.replay import read_frames

    return measure(read_frames(path), str(path), window_s, q)
