"""Your own strategy through the gate: a Python class that turns what it sees into intents.

Name it in a session config::

    intents:
      generator: python
      class: strategies.imbalance:ImbalanceFollower   # package.module:Class
      params: {threshold: 0.6, notional_usd: 200}      # given to the constructor

The module is imported from the config's workspace folder (so ``strategies/imbalance.py`` in
the workspace works) or from the environment. The class subclasses ``Strategy``:

- ``on_tick(view)`` on every clock tick (``clock.tick_ms``, 100 ms by default) for each symbol;
- ``on_event(event, view)`` after every trade and quote of a symbol (``Trade`` / ``Quote`` from
  ``framework.market.events``) once the machines and the decision have seen it.

Both return intents (``view.intent(...)`` fills in the time, symbol and a deterministic id);
the runtime puts each through the decision (eligible, aggressiveness, risk budget) and the risk
guard, exactly as it does for the probe's, and logs what became of it. The ``view`` is read
only: the symbol's metric values, machine states, the decision, the paper position and open
orders. Intent ids must be deterministic (same input, same ids) for ``execlab verify``; a
strategy that keeps no wall-clock time or unseeded randomness gets that for free.

A Python strategy runs on the event-by-event replay path (it reads the metrics at every tick,
which the block-at-a-time path does not keep current); the log is the same either way.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from framework.spec.errors import SpecError, SpecErrors

from .intents import Intent

_SIDES = ("buy", "sell")
_STYLES = ("take", "passive")


class MarketView:
    """What a strategy sees of one symbol at one moment (read only)."""

    __slots__ = ("_p", "ts_ns", "_ids")

    def __init__(self, pipeline: Any, ts_ns: int, ids: dict[str, int]):
        self._p = pipeline
        self.ts_ns = ts_ns
        self._ids = ids

    @property
    def symbol(self) -> str:
        return self._p.symbol

    @property
    def metrics(self) -> Mapping[str, float]:
        """Metric values by name (``machines/metrics.yaml``); NaN while a metric is invalid."""
        return MappingProxyType(self._p.metrics.values)

    @property
    def states(self) -> dict[str, str]:
        """Machine states by machine name, e.g. {"regime": "NORMAL", ...}."""
        return self._p.states()

    @property
    def decision(self) -> dict[str, Any]:
        """The decision table's output: eligible, aggressiveness, risk_budget, rule."""
        return self._p.decision_view()

    @property
    def position(self) -> float:
        """The paper position in the base asset (positive: long)."""
        return self._p.engine.position

    @property
    def open_orders(self) -> int:
        return len(self._p.engine.open_orders)

    def intent(self, side: str, notional_usd: float, style: str = "take", *, limit_offset_bps: float | None = None,
               limit_offset_ticks: int | None = None, ttl_s: float | None = None, tag: str = "") -> Intent:
        """An intent for this symbol now, with a deterministic id (``SYMBOL-TAG-N``)."""
        if side not in _SIDES:
            raise ValueError(f"intent side {side!r}; expected buy or sell")
        if style not in _STYLES:
            raise ValueError(f"intent style {style!r}; expected take or passive")
        if not notional_usd > 0:
            raise ValueError(f"intent notional_usd {notional_usd!r}; expected a positive number")
        key = tag or "strategy"
        n = self._ids.get(f"{self.symbol}/{key}", 0) + 1
        self._ids[f"{self.symbol}/{key}"] = n
        return Intent(ts_ns=self.ts_ns, symbol=self.symbol, side=side, notional_usd=float(notional_usd), style=style,
                      limit_offset_bps=limit_offset_bps, limit_offset_ticks=limit_offset_ticks, ttl_s=ttl_s,
                      intent_id=f"{self.symbol}-{key}-{n}")


class Strategy:
    """Base class of a user strategy. Override ``on_tick`` and/or ``on_event``."""

    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)

    def on_tick(self, view: MarketView) -> Iterable[Intent]:
        return ()

    def on_event(self, event: Any, view: MarketView) -> Iterable[Intent]:
        return ()


class PythonIntents:
    """The intent generator for ``generator: python``: drives a ``Strategy``.

    ``due`` is asked on clock ticks like any generator's; ``on_event`` after each market event.
    ``bind`` gives it the runtime's per-symbol pipelines, from which the views are built."""

    event_by_event = True  # the block-at-a-time replay path cannot serve it

    def __init__(self, strategy: Strategy):
        self.strategy = strategy
        self._pipelines: Mapping[str, Any] = {}
        self._ids: dict[str, int] = {}

    def bind(self, pipelines: Mapping[str, Any]) -> None:
        self._pipelines = pipelines

    def next_due_ns(self, symbol: str) -> int | None:
        return None  # ask at every tick

    def due(self, ts_ns: int, symbol: str) -> list[Intent]:
        return self._checked(self.strategy.on_tick(MarketView(self._pipelines[symbol], ts_ns, self._ids)))

    def on_event(self, event: Any, ts_ns: int) -> list[Intent]:
        p = self._pipelines.get(event.symbol)
        if p is None:
            return []
        return self._checked(self.strategy.on_event(event, MarketView(p, ts_ns, self._ids)))

    def _checked(self, intents: Iterable[Intent] | None) -> list[Intent]:
        out = list(intents or ())
        for i in out:
            if not isinstance(i, Intent):
                raise TypeError(f"{type(self.strategy).__name__} returned {i!r}; expected Intent objects (view.intent(...))")
        return out


def load_strategy(class_path: str, params: Mapping[str, Any], import_root: Path | None = None) -> Strategy:
    """Import ``package.module:Class`` (from ``import_root`` first, then the environment) and
    make it with ``params``. Raises SpecErrors naming what could not be found."""
    where = "intents.class"
    module_name, _, class_name = class_path.partition(":")
    if import_root is not None and str(import_root) not in sys.path:
        sys.path.insert(0, str(import_root))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecErrors([SpecError(where, 0, 0, f"cannot import {module_name!r} ({exc}); expected a module in "
                                                 f"{import_root or 'the environment'} or an installed package")]) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise SpecErrors([SpecError(where, 0, 0, f"{class_path}: {class_name!r} is not a Strategy subclass in "
                                                 f"{module_name}; expected class {class_name}(Strategy)")])
    return cls(params)
