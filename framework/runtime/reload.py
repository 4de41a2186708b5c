"""Hot reload: a changed config or spec file is validated and applied at the next event.

The check is throttled by wall time (file stats are not free on the hot path). A valid change
rebuilds each symbol's machines and decision table; machines keep their current state where it
still exists, and the metrics, paper engine and risk guard keep theirs. An invalid change is
logged with its errors, printed, and the running config carries on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..machines.decision import DecisionTable
from ..machines.machine import StateMachine
from ..spec.errors import SpecErrors
from ..spec.session import Session, load_session

CHECK_EVERY_S = 0.5


class HotReload:
    def __init__(self, session: Session, runtime: Any, emit: Callable[[dict], None],
                 on_reload: Callable[[dict], None] | None = None):
        self.session = session
        self.runtime = runtime
        self.emit = emit
        self.on_reload = on_reload
        self._files = [session.path, *session.spec_paths.values()]
        self._stamps = self._read_stamps()
        self._next_check = 0.0
        self.force = False  # tests set this to check on the very next event

    def _read_stamps(self) -> dict[str, tuple[int, int]]:
        out = {}
        for f in self._files:
            try:
                st = os.stat(f)
                out[f] = (st.st_mtime_ns, st.st_size)
            except OSError:
                out[f] = (0, 0)
        return out

    def check(self, ts_ns: int) -> None:
        now = time.monotonic()
        if not self.force and now < self._next_check:
            return
        self.force = False
        self._next_check = now + CHECK_EVERY_S
        stamps = self._read_stamps()
        if stamps == self._stamps:
            return
        self._stamps = stamps
        self.apply(ts_ns)

    def apply(self, ts_ns: int) -> bool:
        old = self.session
        try:
            new = load_session(old.path, old.snapshot["sets"])
        except SpecErrors as exc:
            record = {"ts_ns": ts_ns, "symbol": "", "kind": "config_reload", "accepted": False,
                      "config_hash": old.config_hash, "errors": [str(e) for e in exc.errors]}
            self.emit(record)
            print("config reload rejected; the running config carries on:", file=sys.stderr)
            for e in exc.errors:
                print(f"  {e}", file=sys.stderr)
            if self.on_reload:
                self.on_reload(record)
            return False
        for p in self.runtime.pipelines.values():
            states = p.states()
            ns = p.namespaces
            for m in p.machines:
                ns.pop(m.spec.name, None)
            ns.pop("decision", None)
            if new.metric_set.names != old.metric_set.names:
                from ..state.engine import SymbolMetrics

                p.metrics = SymbolMetrics(new.metric_set, p.symbol)
                ns["metrics"] = p.metrics.values
            p.machines = [StateMachine(spec, p.symbol, ns, p.emit, states.get(spec.name))
                          for spec in new.machine_set_for(p.symbol).machines]
            p.decision = DecisionTable(new.machine_set_for(p.symbol).decision, ns)
            p.decision.evaluate()
            p.time_in_state = {m.spec.name: p.time_in_state.get(m.spec.name, {}) for m in p.machines}
        self.session = new
        self.runtime.session = new
        self._files = [new.path, *new.spec_paths.values()]
        record = {"ts_ns": ts_ns, "symbol": "", "kind": "config_reload", "accepted": True,
                  "config_hash": new.config_hash, "previous_hash": old.config_hash, "errors": []}
        self.emit(record)
        if self.on_reload:
            self.on_reload(record)
        return True
