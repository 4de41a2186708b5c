"""Points ranked by their objectives, and the Pareto front of several objectives."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .objectives import point_result
from .spec import Sweep


@dataclass
class PointResult:
    point_key: str
    point: dict[str, Any]
    values: list[float] | None  # aggregated objectives; None when a trial failed
    feasible: bool
    violation: float
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def note(self) -> str:
        if self.values is None:
            failed = sum(1 for t in self.trials if t["status"] != "ok")
            return f"{failed} trial(s) failed"
        return "" if self.feasible else f"{self.violation:g} constraint miss(es)"


def by_point(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["point_key"], []).append(r)
    return out


def _sort_key(sweep: Sweep, p: PointResult) -> tuple:
    if p.values is None or any(math.isnan(v) for v in p.values):
        return (2, 0.0)
    signed = [-v if o.maximize else v for o, v in zip(sweep.objectives, p.values, strict=True)]
    return (0 if p.feasible else 1, p.violation, *signed)


def rank_points(sweep: Sweep, records: list[dict[str, Any]]) -> list[PointResult]:
    """Feasible points first, best first objective first (then the next objectives); then
    infeasible points by how many constraints they miss; failed points last."""
    out = []
    for key, trials in by_point(records).items():
        values, violation = point_result(sweep, trials)
        feasible = values is not None and violation == 0
        out.append(PointResult(key, dict(trials[0]["point"]), values, feasible, violation, trials))
    return sorted(out, key=lambda p: _sort_key(sweep, p))


def pareto_front(sweep: Sweep, points: list[PointResult]) -> list[PointResult]:
    """Feasible points no other feasible point beats on every objective (and strictly on one)."""
    cands = [p for p in points if p.feasible and p.values and not any(math.isnan(v) for v in p.values)]
    signed = {id(p): [v if o.maximize else -v for o, v in zip(sweep.objectives, p.values, strict=True)] for p in cands}

    def dominates(a: PointResult, b: PointResult) -> bool:
        sa, sb = signed[id(a)], signed[id(b)]
        return all(x >= y for x, y in zip(sa, sb, strict=True)) and any(x > y for x, y in zip(sa, sb, strict=True))

    return [p for p in cands if not any(dominates(q, p) for q in cands if q is not p)]
