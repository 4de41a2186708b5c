"""The decision table's invariants watched at run time: a violation is an ``alert`` record.

``execlab validate`` proves the invariants over every combination the table can see
(``framework/spec/invariants.py``), so a violation here means the run did something the spec's
model of it does not: a guard on the runtime, not only on the spec. Checked only when a machine
moved or the decision changed (nothing else can change what invariants read), and recorded
when an invariant starts failing (``state: trip``) and when it holds again (``state: clear``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..spec import records
from ..spec.expr import Binding
from ..spec.machines import DecisionSpec


class InvariantMonitor:
    def __init__(self, spec: DecisionSpec, namespaces: dict[str, dict[str, Any]]):
        binding = Binding(namespaces)
        self._namespaces = namespaces
        self._checks = [(inv, inv.when.bind(binding) if inv.when is not None else None, inv.holds.bind(binding))
                        for inv in spec.invariants]
        self._failing: set[str] = set()

    def check(self, ts_ns: int, symbol: str) -> list[dict[str, Any]]:
        """Alert records for invariants that started or stopped failing now."""
        alerts = []
        for inv, when, holds in self._checks:
            failing = (when is None or bool(when())) and not holds()
            if failing == (inv.name in self._failing):
                continue
            if failing:
                self._failing.add(inv.name)
            else:
                self._failing.discard(inv.name)
            read = {}
            for name in inv.reads:
                ns, key = name.split(".", 1)
                v = self._namespaces.get(ns, {}).get(key)
                read[name] = repr(v) if isinstance(v, float) and not math.isfinite(v) else v  # JSON has no inf/nan
            alerts.append(records.invariant_alert(ts_ns, symbol, name=inv.name, state="trip" if failing else "clear",
                                                  invariant=inv.text, where=f"{Path(inv.path).name}:{inv.line}",
                                                  inputs=read))
        return alerts
