"""Cost of the state engine per event (for ``execlab bench``; never asserted in tests)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ..spec.metrics import MetricSet, default_metrics_path, load_metric_set
from .engine import MultiSymbolMetrics


def bench_metrics(events: Iterable, metric_set: MetricSet | None = None, *,
                  repeat: int = 3) -> dict:
    """Feed ``events`` through a fresh engine and measure.

    ``us_per_event_mean`` and ``events_per_s`` come from the best of ``repeat`` untimed passes
    (one clock read per pass); ``us_per_event_p50``/``p99`` from one more pass that times each
    event (a clock read costs some tens of ns, included in those two figures).
    """
    if metric_set is None:
        metric_set = load_metric_set(default_metrics_path())
    evs = list(events)
    n = len(evs)
    if not n:
        raise ValueError("no events to benchmark")
    best = float("inf")
    for _ in range(max(1, repeat)):
        mm = MultiSymbolMetrics(metric_set)
        on_event = mm.on_event
        t0 = time.perf_counter_ns()
        for ev in evs:
            on_event(ev)
        best = min(best, time.perf_counter_ns() - t0)
    mm = MultiSymbolMetrics(metric_set)
    on_event = mm.on_event
    clock = time.perf_counter_ns
    per = np.empty(n, dtype=np.int64)
    for i, ev in enumerate(evs):
        t0 = clock()
        on_event(ev)
        per[i] = clock() - t0
    mean_us = best / n / 1e3
    return {
        "events": n,
        "metrics": len(metric_set),
        "us_per_event_mean": mean_us,
        "us_per_event_p50": float(np.percentile(per, 50)) / 1e3,
        "us_per_event_p99": float(np.percentile(per, 99)) / 1e3,
        "events_per_s": n / (best / 1e9),
    }
