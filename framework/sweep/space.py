"""Which param points a sweep tries: every combination (grid), a seeded random sample, or an
Optuna search that asks for points in fixed batches and is told each batch's results.

Batches are fixed by the sweep file (not by the number of workers), so every backend asks the
same points in the same order and gets the same results table.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from typing import Any

from .spec import Param, Sweep


class PointSource:
    """Yields batches of points; ``tell`` gives back each point's result before the next batch."""

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        raise NotImplementedError

    def tell(self, point: dict[str, Any], values: list[float] | None, violation: float) -> None:
        """``values``: the objectives (None when the point failed); ``violation``: > 0 when a
        constraint does not hold."""


class Grid(PointSource):
    def __init__(self, params: list[Param]):
        self.params = params

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        names = [p.name for p in self.params]
        yield [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(p.grid() for p in self.params))]


def _sample(p: Param, rng: random.Random) -> Any:
    if p.values is not None:
        return p.values[rng.randrange(len(p.values))]
    lo, hi = float(p.low), float(p.high)
    if p.step:
        n = int(math.floor((hi - lo) / p.step + 1e-9)) + 1
        return p.cast(lo + rng.randrange(n) * p.step)
    if p.log:
        return p.cast(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return p.cast(rng.uniform(lo, hi))


class RandomPoints(PointSource):
    def __init__(self, params: list[Param], count: int, seed: int):
        self.params, self.count, self.seed = params, count, seed

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        rng = random.Random(self.seed)
        points: dict[str, dict[str, Any]] = {}
        tries = 0
        # Distinct points; a small discrete space may hold fewer than asked.
        while len(points) < self.count and tries < self.count * 50:
            tries += 1
            point = {p.name: _sample(p, rng) for p in self.params}
            points.setdefault(repr(sorted(point.items())), point)
        yield list(points.values())


class OptunaSearch(PointSource):
    def __init__(self, sweep: Sweep):
        try:
            import optuna
        except ImportError:  # pragma: no cover - the sweep extra installs it
            raise SystemExit("search method optuna needs Optuna: pip install 'crypto-execution-lab[sweep]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.sweep = sweep
        # Optuna 5 takes constraints from each trial (set_constraint); older ones from a function.
        self.trial_constraints = hasattr(optuna.trial.Trial, "set_constraint")
        legacy = {} if self.trial_constraints else {"constraints_func": self._constraints}
        sampler = optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=min(10, max(sweep.batch, 2)), **legacy)
        self.study = optuna.create_study(directions=["maximize" if o.maximize else "minimize" for o in sweep.objectives],
                                         sampler=sampler)
        self.pending: dict[str, list[Any]] = {}  # a point asked twice is told twice

    @staticmethod
    def _constraints(trial: Any) -> list[float]:
        return [trial.user_attrs.get("violation", 0.0)]

    def _suggest(self, trial: Any, p: Param) -> Any:
        if p.values is not None:
            return trial.suggest_categorical(p.name, p.values)
        if p.integer:
            return trial.suggest_int(p.name, int(math.ceil(p.low)), int(math.floor(p.high)), log=p.log,
                                     step=int(p.step) if p.step and not p.log else 1)
        return trial.suggest_float(p.name, float(p.low), float(p.high), log=p.log,
                                   step=None if p.log or not p.step else float(p.step))

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        left = int(self.sweep.trials or 0)
        while left > 0:
            batch = []
            for _ in range(min(self.sweep.batch, left)):
                trial = self.study.ask()
                point = {p.name: p.cast(self._suggest(trial, p)) for p in self.sweep.params}
                self.pending.setdefault(repr(sorted(point.items())), []).append(trial)
                batch.append(point)
            left -= len(batch)
            yield batch

    def tell(self, point: dict[str, Any], values: list[float] | None, violation: float) -> None:
        for trial in self.pending.pop(repr(sorted(point.items())), []):
            if self.trial_constraints:
                trial.set_constraint("violation", float(violation))
            else:
                trial.set_user_attr("violation", float(violation))
            if values is None or any(math.isnan(v) for v in values):
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, values if len(values) > 1 else values[0])


def point_source(sweep: Sweep) -> PointSource:
    if sweep.method == "random":
        return RandomPoints(sweep.params, int(sweep.trials or 1), sweep.seed)
    if sweep.method == "optuna":
        return OptunaSearch(sweep)
    return Grid(sweep.params)
