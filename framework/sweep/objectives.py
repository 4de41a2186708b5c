"""A trial's objectives and constraints, and a point's over its recordings."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from .spec import Sweep, evaluate


def score(sweep: Sweep, figures: dict[str, float]) -> tuple[list[float], bool, float]:
    """A trial's objectives, whether every constraint holds, and how far they miss."""
    values = []
    for o in sweep.objectives:
        v = evaluate(o.expr, figures)
        values.append(float(v) if isinstance(v, (int, float)) else math.nan)
    missed = sum(1.0 for _, c in sweep.constraints if evaluate(c, figures) is not True)
    return values, missed == 0, missed


_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": statistics.fmean, "min": min, "max": max, "median": statistics.median}


def point_result(sweep: Sweep, records: list[dict[str, Any]]) -> tuple[list[float] | None, float]:
    """A point's aggregated objectives over its trials (None when one failed) and its
    constraint violation (the number of trial constraints that do not hold)."""
    if any(r["status"] != "ok" for r in records):
        return None, float(len(records))
    per = [score(sweep, r["figures"]) for r in records]
    agg = _AGGREGATES[sweep.aggregate]
    values = []
    for i in range(len(sweep.objectives)):
        xs = [p[0][i] for p in per]
        values.append(math.nan if any(math.isnan(x) for x in xs) else float(agg(xs)))
    return values, sum(p[2] for p in per)
