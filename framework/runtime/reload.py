"""Hot reload: a changed config or spec file is validated and applied at the next event.

The check is throttled by wall time (file stats are not free on the hot path). A change is
applied only once it has settled and is whole:

- settled: a change seen at one check is read again at a later check (at least ``settle_s``
  apart); only when every file's size, mtime and content are the same both times is it taken.
  An editor or a copy still writing never gets half a file applied;
- whole: every config and spec file ends with a line break (a file cut short usually ends
  mid-line), and the whole session (config and every spec) validates;
- applicable: hot reload rebuilds the machines and the decision table (specs and overrides);
  a change to any other section (source, symbols, clock, intents, execution, risk, output)
  cannot take effect in a running session and is rejected rather than silently ignored. A
  config cut in the middle loses its later sections, so it is rejected for that reason too.

A valid change rebuilds each symbol's machines and decision table; machines keep their current
state where it still exists, the metrics are rebuilt only when the metric set changed, and the
paper engine and risk guard keep theirs. An invalid change is logged with its errors, printed,
and the running config carries on.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..machines.decision import DecisionTable
from ..machines.invariants import InvariantMonitor
from ..machines.machine import StateMachine
from ..spec import records
from ..spec.errors import SpecError, SpecErrors
from ..spec.loader import parse_yaml, read_spec_text
from ..spec.session import Session, load_session

CHECK_EVERY_S = 0.5
# Config sections a running session can take over; any other change needs a restart.
RELOADABLE_SECTIONS = frozenset({"session", "doc", "machines", "overrides"})

Stamp = tuple[int, int]  # (mtime ns, size); (0, -1) when the file cannot be read


@dataclass
class _Candidate:
    """A change seen at one check, waiting to be seen unchanged at a later one."""

    stamps: dict[str, Stamp]
    texts: dict[str, str]
    errors: list[SpecError]
    digest: str
    seen_at: float


class HotReload:
    def __init__(self, session: Session, runtime: Any, emit: Callable[[dict], None],
                 on_reload: Callable[[dict], None] | None = None, *, settle_s: float | None = None):
        self.session = session
        self.runtime = runtime
        self.emit = emit
        self.on_reload = on_reload
        self.settle_s = CHECK_EVERY_S if settle_s is None else settle_s  # read now: tests set it
        self._files = [session.path, *session.spec_paths.values()]
        self._stamps = self._read_stamps()
        self._candidate: _Candidate | None = None
        self._next_check = 0.0
        self.force = False  # tests set this to check on the very next event

    def _read_stamps(self) -> dict[str, Stamp]:
        out = {}
        for f in self._files:
            try:
                st = os.stat(f)
                out[f] = (st.st_mtime_ns, st.st_size)
            except OSError:
                out[f] = (0, -1)
        return out

    def _read(self, stamps: dict[str, Stamp], now: float) -> _Candidate:
        texts: dict[str, str] = {}
        errors: list[SpecError] = []
        h = hashlib.sha256()
        for f in self._files:
            try:
                texts[f] = read_spec_text(f)
            except SpecErrors as exc:
                errors.extend(exc.errors)
                continue
            h.update(f.encode() + b"\0" + texts[f].encode() + b"\0")
        return _Candidate(stamps, texts, errors, h.hexdigest() + repr(errors), now)

    def check(self, ts_ns: int) -> None:
        now = time.monotonic()
        if not self.force and now < self._next_check:
            return
        self.force = False
        self._next_check = now + CHECK_EVERY_S
        stamps = self._read_stamps()
        pending = self._candidate
        if pending is None:
            if stamps != self._stamps:
                self._candidate = self._read(stamps, now)  # seen once: wait for it to settle
            return
        if stamps == self._stamps:
            self._candidate = None  # the change was undone
            return
        if now - pending.seen_at < self.settle_s:
            return
        again = self._read(stamps, now)
        if stamps != pending.stamps or again.digest != pending.digest:
            self._candidate = again  # still changing
            return
        self._candidate = None
        self._stamps = stamps
        self.apply(ts_ns, again.texts, again.errors)

    def _refusals(self, new: Session, texts: Mapping[str, str]) -> list[SpecError]:
        """Why a valid session still cannot be applied: a cut-short file, or a change that only
        a restart can make."""
        errors = []
        for path, text in texts.items():
            if text and not text.endswith("\n"):
                line = text.count("\n") + 1
                col = len(text) - (text.rfind("\n") + 1) + 1
                errors.append(SpecError(path, line, col, "the file does not end with a line break (cut short, "
                                        "or still being written?); expected a complete file"))
        old = self.session.data
        changed = sorted(s for s in (set(old) | set(new.data)) - RELOADABLE_SECTIONS if old.get(s) != new.data.get(s))
        if changed:
            config = texts.get(new.path) or new.snapshot["config"]
            doc = parse_yaml(config, new.path)
            end = (config.count("\n") + 1, 1)
            for section in changed:
                if section in new.data:
                    line, col = doc.where((section,), key=True)
                    what = "changed" if section in old else "was added"
                else:
                    (line, col), what = end, "is missing (the file cut short?)"
                errors.append(SpecError(new.path, line, col, f"section '{section}' {what}; hot reload applies "
                                        "machine specs and overrides only; expected the other sections unchanged "
                                        "(restart the session to change them)"))
        return errors

    def _reject(self, ts_ns: int, errors: list[SpecError]) -> bool:
        old = self.session
        record = records.reload_refused(ts_ns, config_hash=old.config_hash, errors=[str(e) for e in errors])
        self.emit(record)
        print("config reload rejected; the running config carries on:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        if self.on_reload:
            self.on_reload(record)
        return False

    def apply(self, ts_ns: int, texts: Mapping[str, str] | None = None,
              read_errors: list[SpecError] | None = None, new: Session | None = None) -> bool:
        """Validate the session as it is now (``texts``: the contents seen to settle) and apply it;
        or switch to ``new``: a re-run applying a reload the run accepted."""
        old = self.session
        if new is None:
            if read_errors:
                return self._reject(ts_ns, read_errors)
            try:
                new = load_session(old.path, old.snapshot["sets"], read=texts)
            except SpecErrors as exc:
                return self._reject(ts_ns, exc.errors)
            refusals = self._refusals(new, texts if texts is not None else {})
            if refusals:
                return self._reject(ts_ns, refusals)
        metrics_changed = _metric_shape(new) != _metric_shape(old)
        for p in self.runtime.pipelines.values():
            states = p.states()
            ns = p.namespaces
            for m in p.machines:
                ns.pop(m.spec.name, None)
            ns.pop("decision", None)
            if metrics_changed:
                from ..state.engine import SymbolMetrics

                p.metrics = SymbolMetrics(new.metric_set, p.symbol)
                ns["metrics"] = p.metrics.values
                p.rebind_book_metrics(new.metric_set)  # the book writes into the new values
            p.risk.rebind(new.risk_machine, p.metrics.values)
            p.machines = [StateMachine(spec, p.symbol, ns, p.emit, states.get(spec.name),
                                       watch=p.metrics.watch_slot(spec.name))
                          for spec in new.machine_set_for(p.symbol).machines]
            p.decision = DecisionTable(new.machine_set_for(p.symbol).decision, ns)
            p.decision.evaluate()
            p.invariants = InvariantMonitor(new.machine_set.decision, ns)  # bound to the new namespaces
            p.time_in_state = {m.spec.name: p.time_in_state.get(m.spec.name, {}) for m in p.machines}
        self.session = new
        self.runtime.session = new
        known = self._stamps  # what was validated; a file new to the set is stamped now
        self._files = [new.path, *new.spec_paths.values()]
        self._stamps = {**self._read_stamps(), **{f: st for f, st in known.items() if f in self._files}}
        record = records.reload_accepted(ts_ns, config_hash=new.config_hash, previous_hash=old.config_hash)
        self.emit(record)
        if self.on_reload:
            self.on_reload(record)
        return True


def _metric_shape(session: Session) -> tuple:
    """What the state engine computes: a changed window needs new metrics, a changed doc does not."""
    return tuple((m.name, m.kind, m.window_s) for m in session.metric_set)
