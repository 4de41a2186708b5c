"""The baseline: the classic use of ``transitions``, its machinery entered on every event.

Each rule becomes a transition of one ``step`` trigger with its guard as a ``conditions``
callback, and every evaluation calls ``step()``: the library looks up the current state's
transitions for the trigger and checks their conditions in order, the first that holds fires.
Same rules, same timers, same records as :class:`~framework.machines.machine.StateMachine`
(the benchmark checks that both make the same transitions); only the dispatch differs.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine as TransitionsMachine

from ..machines.machine import NS, StateMachine, _Model


class TransitionsPerEventMachine(StateMachine):
    def __init__(self, spec, symbol: str, namespaces: dict[str, dict[str, Any]], emit, state: str | None = None):
        super().__init__(spec, symbol, namespaces, emit, state)
        self._model = _Model()
        machine = TransitionsMachine(model=self._model, states=list(spec.states), initial=self.out["state"],
                                     auto_transitions=False, ignore_invalid_triggers=True,
                                     after_state_change=self._after_state_change)
        for state, compiled in self.rules_by_state.items():
            for c in compiled:
                machine.add_transition("step", state, c[0].dest, conditions=[self._condition(c)])

    def _condition(self, compiled: tuple):
        rule, when, after_ns, after, hold = compiled
        held = self.held_since

        def condition() -> bool:
            now_ns = self.now_ns
            if when is not None:
                if not when():
                    if hold is not None:
                        held.pop(rule.index, None)
                    return False
                if hold is not None:
                    since = held.setdefault(rule.index, now_ns)
                    if now_ns - since < hold() * NS:
                        return False
            after_s = None
            in_state_ns = now_ns - self.entered_ns
            if after_ns is not None:
                if in_state_ns < after_ns:
                    return False
                after_s = after_ns / NS
            elif after is not None:
                after_s = after()
                if in_state_ns < after_s * NS:
                    return False
            self._firing = (rule, self._inputs_read(rule, now_ns, after_s))
            return True

        return condition

    def evaluate(self, now_ns: int) -> bool:
        self.now_ns = now_ns
        if self.entered_ns is None:
            self.entered_ns = now_ns
        for name, fn in self._derive:
            self.out[name] = fn()
        return bool(self._model.step())
