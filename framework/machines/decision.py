"""The decision table: first matching rule turns upstream states into trading constraints."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from ..spec.expr import Binding
from ..spec.machines import DecisionSpec

AGGRESSIVENESS_RANK = {"none": 0, "passive": 1, "take": 2}


class DecisionTable:
    """Evaluates the rules against the shared namespaces; publishes ``decision.*``.

    ``out`` holds eligible, aggressiveness, risk_budget and the name of the rule that matched.
    """

    def __init__(self, spec: DecisionSpec, namespaces: dict[str, dict[str, Any]]):
        self.spec = spec
        self.out: dict[str, Any] = namespaces.setdefault("decision", {})
        binding = Binding(namespaces)
        self._rules = [
            (r, r.when.bind(binding), r.risk_budget.bind(binding)) for r in spec.rules
        ]
        self.out.update(eligible=False, aggressiveness="none", risk_budget=0.0, rule="")
        # The rules are pure functions of the inputs they read (no timers), so when none of
        # those values changed since the last evaluation the outcome cannot change either.
        reads = list(dict.fromkeys(n for r in spec.rules for e in (r.when, r.risk_budget) for n in e.reads))
        self.inputs_read = frozenset(reads)
        self._fetch = _fetcher(tuple((namespaces.setdefault(n.split(".", 1)[0], {}), n.split(".", 1)[1])
                                     for n in reads))
        self._last_inputs: tuple | None = None

    def varies_with(self, steady: set[str]) -> bool:
        """Whether the outcome could change on an input other than ``steady`` ones (a metric,
        PnL): then the replay fast path evaluates the table on every row, else only on rows where
        one of ``steady`` may change (a state, a latched risk flag), which it visits anyway."""
        return not self.inputs_read <= steady

    def evaluate(self) -> bool:
        """Recompute the decision; True when any output changed."""
        current = self._fetch()
        if current == self._last_inputs:
            return False
        self._last_inputs = current
        for rule, when, budget in self._rules:
            if when():
                b = budget()
                b = 0.0 if b != b else min(max(float(b), 0.0), 1.0)  # NaN budgets mean no risk
                out = self.out
                changed = (out["rule"] != rule.name or out["risk_budget"] != b)
                if changed:
                    out["eligible"] = rule.eligible
                    out["aggressiveness"] = rule.aggressiveness
                    out["risk_budget"] = b
                    out["rule"] = rule.name
                return changed
        raise AssertionError("the decision table's last rule is a checked catch-all")


def _fetcher(inputs: tuple[tuple[dict[str, Any], str], ...]) -> Callable[[], tuple]:
    """The values of ``inputs`` as one tuple per namespace, fetched by one C-level call each.
    Evaluated on every event: unrolled for up to four namespaces (a loop costs twice as much)."""
    by_ns: dict[int, tuple[dict[str, Any], list[str]]] = {}
    for d, k in inputs:
        by_ns.setdefault(id(d), (d, []))[1].append(k)
    parts = [(d, itemgetter(*keys)) for d, keys in by_ns.values()]
    if len(parts) == 1:
        (d0, g0), = parts
        return lambda: (g0(d0),)
    if len(parts) == 2:
        (d0, g0), (d1, g1) = parts
        return lambda: (g0(d0), g1(d1))
    if len(parts) == 3:
        (d0, g0), (d1, g1), (d2, g2) = parts
        return lambda: (g0(d0), g1(d1), g2(d2))
    if len(parts) == 4:
        (d0, g0), (d1, g1), (d2, g2), (d3, g3) = parts
        return lambda: (g0(d0), g1(d1), g2(d2), g3(d3))
    return lambda: tuple([g(d) for d, g in parts])
