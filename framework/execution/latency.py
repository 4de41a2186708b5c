"""Order-path latency of the paper engine: seeded, heavy-tailed, optionally slower in bursts.

Two directions, each ``fixed_ms + jitter`` (docs/execution.md, *Latency model*):

- **entry**: decision -> exchange, for orders and for cancels;
- **acknowledgement**: exchange -> us.

The jitter is ``none``, ``uniform`` (``U[0, jitter_ms]``), ``lognormal`` (median ``jitter_ms``,
shape ``jitter_sigma``) or ``pareto`` (median ``jitter_ms``, tail index ``jitter_alpha``:
``P(J > x) ~ x^-alpha``, the heavy tail of real gateways), capped at ``jitter_cap_ms``.

Bursts: with ``burst_slowdown = s > 0`` each of our own messages (orders and cancels) sent in the
last ``burst_window_ms`` makes the next latency ``(1 + s * n)`` times longer. The market's load
enters through ``load_slowdown``: an expression over the metrics (compiled once by the session
loader, bound by the pipeline, read here through ``set_load``), whose value ``v`` at the moment a
message is sent makes it ``(1 + v)`` times slower. Metrics, not a count of the events the engine
saw, because the replay fast path does not show the engine every event; the metrics at a row
where a message is sent are the same on both paths.

Every draw comes from one ``random.Random`` seeded from the session seed and the symbol, in the
order the engine asks (an order's entry, then its acknowledgement; a cancel's entry), so a run is
reproducible to the nanosecond.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable

from .config import LatencyConfig, PathLatency

NS_PER_MS = 1_000_000
MAX_LOAD_SLOWDOWN = 100.0  # a runaway load expression cannot push an order past the session's end


def draw_jitter_ms(path: PathLatency, rng: random.Random) -> float:
    """One jitter sample in ms (capped)."""
    j = 0.0
    if path.jitter == "uniform" and path.jitter_ms > 0:
        j = rng.uniform(0.0, path.jitter_ms)
    elif path.jitter == "lognormal" and path.jitter_ms > 0:
        j = rng.lognormvariate(math.log(path.jitter_ms), path.jitter_sigma)
    elif path.jitter == "pareto" and path.jitter_ms > 0:
        # Pareto(scale m, alpha) has median m * 2^(1/alpha): scale so that jitter_ms is the median
        j = path.jitter_ms / 2.0 ** (1.0 / path.jitter_alpha) * rng.paretovariate(path.jitter_alpha)
    return min(j, path.jitter_cap_ms)


class LatencyModel:
    """Latencies in integer ns for one engine (one symbol)."""

    def __init__(self, cfg: LatencyConfig, rng: random.Random):
        self.cfg = cfg
        self._rng = rng
        self._entry = cfg.entry
        self._ack = cfg.acknowledgement
        self._window_ns = int(round(cfg.burst_window_ms * NS_PER_MS))
        self._sent: deque[int] = deque()  # times of our recent messages (only with burst_slowdown)
        self._load: Callable[[], float] | None = None

    def set_load(self, load: Callable[[], float]) -> None:
        """The market's load now (``load_slowdown`` bound to the metrics): each latency drawn is
        ``1 + load()`` times longer; NaN or negative counts as 0, above ``MAX_LOAD_SLOWDOWN`` as that."""
        self._load = load

    def _sample(self, path: PathLatency, ts_ns: int) -> int:
        j = draw_jitter_ms(path, self._rng)
        ms = path.fixed_ms + j
        s = self.cfg.burst_slowdown
        if s > 0:
            sent = self._sent
            while sent and sent[0] <= ts_ns - self._window_ns:
                sent.popleft()
            ms *= 1.0 + s * len(sent)
        if self._load is not None:
            v = float(self._load())
            ms *= 1.0 + (min(v, MAX_LOAD_SLOWDOWN) if v > 0 else 0.0)  # NaN > 0 is False: no slowdown
        return int(round(ms * NS_PER_MS))

    def _note(self, ts_ns: int) -> None:
        if self.cfg.burst_slowdown > 0:
            self._sent.append(ts_ns)

    def order(self, ts_ns: int) -> tuple[int, int]:
        """(entry, acknowledgement) latencies of an order sent at ``ts_ns``."""
        entry = self._sample(self._entry, ts_ns)
        ack = self._sample(self._ack, ts_ns)
        self._note(ts_ns)
        return entry, ack

    def cancel(self, ts_ns: int) -> int:
        """Entry latency of a cancel sent at ``ts_ns``."""
        entry = self._sample(self._entry, ts_ns)
        self._note(ts_ns)
        return entry
