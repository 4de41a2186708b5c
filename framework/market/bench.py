"""Decode throughput, for ``execlab bench``.

``bench_decode`` times :class:`FrameDecoder` over real or synthetic frames (cycled up to
``n_frames``); ``bench_decode_orjson`` times the same work done with orjson into dicts and
hand-built events, the alternative the decoder was measured against (docs/market.md).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from pathlib import Path

from .decode import FrameDecoder
from .events import Quote, Trade


def _frames(path_or_frames, n_frames: int) -> list[tuple[int, str]]:
    if isinstance(path_or_frames, (str, Path)):
        p = Path(path_or_frames)
        if p.suffix in (".yaml", ".yml") or (not p.exists() and not p.suffix):
            from .synthetic import scenario_frames
            src: Iterable[tuple[int, str]] = scenario_frames(p)
        else:
            from .replay import read_frames
            src = read_frames(p)
    else:
        src = path_or_frames
    base = list(itertools.islice(src, n_frames))
    if not base:
        raise ValueError("no frames to decode")
    return list(itertools.islice(itertools.cycle(base), n_frames))


def _result(name: str, n: int, seconds: float, counters: dict | None = None) -> dict:
    return {"name": name, "frames": n, "seconds": seconds,
            "frames_per_s": n / seconds if seconds > 0 else math.inf,
            "us_per_frame": seconds / n * 1e6, "counters": counters or {}}


def bench_decode(path_or_frames, n_frames: int = 200_000) -> dict:
    """Decode ``n_frames`` frames (a recording, a scenario, or (recv_ns, raw) pairs)."""
    frames = _frames(path_or_frames, n_frames)
    dec = FrameDecoder()
    decode = dec.decode
    t0 = time.perf_counter()
    for ns, raw in frames:
        decode(raw, ns)
    dt = time.perf_counter() - t0
    return _result("msgspec", len(frames), dt, dec.counters.as_dict())


def bench_decode_orjson(path_or_frames, n_frames: int = 200_000) -> dict:
    """The same work with orjson + dict lookups (no validation beyond what it needs)."""
    import orjson

    frames = _frames(path_or_frames, n_frames)
    loads = orjson.loads
    t0 = time.perf_counter()
    for ns, raw in frames:
        try:
            msg = loads(raw)
            stream = msg.get("stream")
            d = msg["data"] if stream else msg
            kind = stream.split("@", 1)[1] if stream else d.get("e")
            if kind == "bookTicker":
                Quote(ns, d["s"].upper(), float(d["b"]), float(d["B"]), float(d["a"]),
                      float(d["A"]), d["u"], d.get("E", 0), d.get("T", 0))
            elif kind == "trade":
                Trade(ns, d["s"].upper(), float(d["p"]), float(d["q"]), d["m"], d["t"], d["T"],
                      d["E"], False, d.get("X", ""))
            elif kind == "aggTrade":
                Trade(ns, d["s"].upper(), float(d["p"]), float(d["q"]), d["m"], d["a"], d["T"],
                      d["E"], True, d.get("X", ""))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            pass
    dt = time.perf_counter() - t0
    return _result("orjson", len(frames), dt)
