"""A spec'd state machine running on event time, backed by a ``transitions.Machine``.

The hot path is ``evaluate(now_ns)``: it checks the current state's outgoing rules in document
order with compiled closures and returns. Only when a rule fires is the ``transitions``
machinery entered (its trigger moves the state and calls our hook), so the library is the
authority on states and transitions while every quiet event costs a few closure calls.

Semantics (see docs/machines.md):
- Priority: the first rule (in file order) whose conditions hold fires.
- At most one transition per machine per evaluation. Chains (A -> B -> C) take one event or
  clock tick per step, so every step is observable and logged with its own inputs.
- ``after: X`` holds once the machine has spent X seconds of event time in the source state.
- ``for: X`` holds once ``when`` has been true at every evaluation for X seconds (evaluations
  include clock ticks); any evaluation where it is false resets it.
- ``entries('S', W)``: transitions into S during the last W seconds (the initial state at
  start does not count as an entry).

The replay fast path evaluates a machine only on the rows of a block where it could change
state; ``screen`` finds them with numpy (the expressions' numpy backend, ``spec/vector.py``)
and ``catch_up_holds`` sets the ``for:`` holds as the rows it skipped would have left them.

The gate (``gate.py``): after an evaluation that fired nothing, the machine keeps the cells its
current state's inputs are in and the time its next timer falls due; until an input leaves its
cell or that time comes, an evaluation would repeat the last one, so it is skipped. Derived
values no other layer reads are computed only when the current state's rules read them (they
are logged only through the transition records, which are built when a rule fires).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from transitions import Machine as TransitionsMachine

from ..spec import records
from ..spec.expr import Binding
from ..spec.machines import MachineSpec, Rule
from .gate import compile_state, derived_needed

NS = 1_000_000_000
_FOREVER = 1 << 126
TIMER_MARGIN_NS = 1_000  # a screen flags timers 1 µs early: float rounding can never hide one

Emit = Callable[[dict[str, Any]], None]


class _Model:
    """The object whose ``state`` attribute ``transitions`` manages."""

    state: str


class HoldRun:
    """A ``for:`` hold over the rows of a screen: whether its condition holds on each row
    (``when``) and the event time the hold running on each row started (``since``)."""

    __slots__ = ("index", "when", "since")

    def __init__(self, index: int, when: Any, since: Any):
        self.index, self.when, self.since = index, when, since

    def part(self, i: int, k: int) -> HoldRun:
        """The hold over rows ``[i, k)`` of the screen."""
        return HoldRun(self.index, self.when[i:k], self.since[i:k])


class BlockScreen:
    """Where evaluations over a block of rows could change a machine's state (``screen``):
    ``flags`` per row (or True: every row, where numpy cannot tell); ``holds``, the ``for:``
    holds the other rows start and reset (``HoldRun``, for ``catch_up_holds``); ``rows``, how
    many rows from the first the screen holds for (a cached ``after:`` timer's value may change
    after the last of them)."""

    __slots__ = ("flags", "holds", "rows")

    def __init__(self, flags: Any, holds: list[HoldRun], rows: int):
        self.flags, self.holds, self.rows = flags, holds, rows


class StateMachine:
    """One machine for one symbol.

    ``namespaces`` is the shared dict of input namespaces (metrics, risk, upstream machines);
    this machine publishes its own namespace there (``NAME.state`` and its derived values).
    ``watch``: its slot in the compiled metric kernel, which then checks the gate's cells of the
    metric values it computes (``KernelMetrics.watch_slot``).
    """

    box_backoff_max = 64

    def __init__(self, spec: MachineSpec, symbol: str, namespaces: dict[str, dict[str, Any]],
                 emit: Emit, state: str | None = None, *, gate: bool = True, watch: Any = None):
        self.spec = spec
        self.symbol = symbol
        self.emit = emit
        self.now_ns = 0
        self.entered_ns: int | None = None
        self.out: dict[str, Any] = namespaces.setdefault(spec.name, {})
        self.out["state"] = state if state in spec.states else spec.initial
        for name in spec.derive:
            self.out.setdefault(name, 0.0)
        self._namespaces = namespaces
        own = dict(namespaces)
        own["derived"] = self.out
        binding = Binding(own, time_in_state=self.time_in_state, entries=self.entries)
        self._derive = [(name, expr.bind(binding)) for name, (expr, _) in spec.derive.items()]
        self._max_window_ns = self._entry_windows(spec)
        self._entries: dict[str, deque[int]] = {s: deque() for s in spec.states}
        self.held_since: dict[int, int] = {}  # rule index -> event time its `for:` hold started
        self.transition_count = 0
        # state -> its outgoing rules compiled: (rule, when, after_ns, after, hold) in priority order
        self.rules_by_state: dict[str, tuple] = {
            s: tuple(self._compile_rule(r, binding) for r in spec.rules_from(s)) for s in spec.states
        }
        self._current = self.rules_by_state[self.out["state"]]
        # Per state: the derived values to compute on each evaluation, and the gate (None: the
        # state is evaluated on every event). When no other layer reads the derived values, only
        # those the state's rules read are computed; otherwise all, and the gate also keeps
        # every one of them at the value an evaluation would give.
        lazy = spec.derived_read_by == ()
        derived = {name: e for name, (e, _) in spec.derive.items()}
        self.derive_by_state: dict[str, list] = {}
        self.gates: dict[str, Any] = {}
        for s, rules in self.rules_by_state.items():
            need = derived_needed(rules, derived) if gate and lazy else set(derived)
            self.derive_by_state[s] = [(n, fn) for n, fn in self._derive if n in need]
            self.gates[s] = compile_state(rules, derived, binding, published=not lazy, watch=watch) if gate else None
        self._derive_now = self.derive_by_state[self.out["state"]]
        self._gate = self.gates[self.out["state"]]
        self._box = None  # the cells of the last evaluation that fired nothing
        self.skipped = 0  # evaluations the gate skipped
        # Where the inputs leave their cells at once (a score of continuous inputs, say),
        # building cells costs more than it saves: after a box that skipped nothing, the next
        # 1, 2, 4 ... box_backoff_max evaluations build none. (Only the cost changes, never
        # the outcome.)
        self._box_skips = 0
        self._wait = 0
        self._pause = 0
        self._firing: tuple[Rule, dict[str, Any]] | None = None
        self._vector: tuple[list, dict[str, list]] | None = None  # the screen's numpy form (_vectorized)
        self._model = _Model()
        TransitionsMachine(
            model=self._model,
            states=list(spec.states),
            transitions=[{"trigger": f"rule_{r.index}", "source": list(r.sources), "dest": r.dest} for r in spec.rules],
            initial=self.out["state"],
            auto_transitions=False,
            after_state_change=self._after_state_change,
        )

    @staticmethod
    def _entry_windows(spec: MachineSpec) -> dict[str, int]:
        windows: dict[str, int] = {}
        exprs = [e for r in spec.rules for e in (r.when, r.after, r.hold) if e is not None]
        exprs += [e for e, _ in spec.derive.values()]
        for e in exprs:
            for state, w in e.entries_windows:
                windows[state] = max(windows.get(state, 0), int(w * NS))
        return windows

    def _compile_rule(self, rule: Rule, binding: Binding) -> tuple:
        when = rule.when.bind(binding) if rule.when is not None else None
        after_ns = None
        after = None
        if rule.after is not None:
            if rule.after.is_const:
                after_ns = int(rule.after.root.const * NS)
            else:
                after = rule.after.bind(binding)
                if not rule.after.reads and not rule.after.reads_clock:
                    after = self._cached(after, rule.after.entries_windows)
        hold = rule.hold.bind(binding) if rule.hold is not None else None
        return (rule, when, after_ns, after, hold)

    def _cached(self, fn: Callable[[], Any], windows: tuple[tuple[str, float], ...]) -> Callable[[], Any]:
        """``fn`` (an ``after:`` reading only params and ``entries()``) computed once and reused
        until an ``entries()`` count could change: a transition, or the oldest entry it counts
        leaving its window (checked a microsecond early, so float rounding of the window start
        never matters). A cooldown evaluated on every event is then one comparison."""
        cache: list = [None, -1, 0, 0]  # value, transition_count, valid from, valid until (ns)

        def cached() -> Any:
            now = self.now_ns
            if cache[1] == self.transition_count and cache[2] <= now < cache[3]:
                return cache[0]
            until = _FOREVER
            for state, w in windows:
                since = now - w * NS
                oldest = None
                for t in reversed(self._entries[state]):
                    if t <= since:
                        break
                    oldest = t
                if oldest is not None:
                    until = min(until, oldest + int(w * NS) - 1000)
            value = fn()
            cache[:] = [value, self.transition_count, now, until]
            return value

        cached.cache = cache  # type: ignore[attr-defined]  # read by timer_at()
        return cached

    def timer_at(self, after: Callable[[], Any], now_ns: int) -> tuple[float, int]:
        """A cached ``after:`` timer's value in seconds at ``now_ns``, and the event time from
        which it may change (an ``entries()`` count leaving its window). The replay fast path
        schedules timers with it."""
        cache = getattr(after, "cache", None)
        if cache is None:
            raise ValueError("only a cached after: timer has a known validity")
        self.now_ns = now_ns
        value = after()
        return value, cache[3]

    # -- timer functions used by expressions -------------------------------------------
    def time_in_state(self) -> float:
        if self.entered_ns is None:
            return 0.0
        return (self.now_ns - self.entered_ns) / NS

    def entries(self, state: str, window_s: float) -> int:
        since = self.now_ns - window_s * NS
        count = 0
        for t in reversed(self._entries[state]):
            if t <= since:
                break
            count += 1
        return count

    # -- the hot path ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.out["state"]

    def evaluate_every_event(self) -> None:
        """Turn the gate off. The replay fast path screens the machines over whole blocks and
        evaluates them only at rows where something may change, so cells built there would be
        left at the next visit: building them costs more than it saves."""
        self.gates = dict.fromkeys(self.gates)
        self._gate = self._box = None

    def evaluate(self, now_ns: int) -> bool:
        """Check the current state's rules at event time ``now_ns``; fire at most one."""
        self.now_ns = now_ns
        box = self._box
        if box is not None:
            if box.holds(now_ns, self.held_since):
                self._box_skips += 1
                return False
            self._box = None
            self.skipped += self._box_skips
            if self._box_skips:
                self._wait = 0
            else:
                self._pause = self._wait = min(self._wait * 2 or 1, self.box_backoff_max)
            self._box_skips = 0
        entered = self.entered_ns
        if entered is None:
            entered = self.entered_ns = now_ns
        if self._derive_now:
            out = self.out
            for name, fn in self._derive_now:
                out[name] = fn()
        # self._current is the current state's compiled rules (kept by _after_state_change)
        for rule, when, after_ns, after, hold in self._current:
            if when is not None:
                if not when():
                    if hold is not None:
                        self.held_since.pop(rule.index, None)
                    continue
                if hold is not None:
                    since = self.held_since.setdefault(rule.index, now_ns)
                    if now_ns - since < hold() * NS:
                        continue
            after_s = None
            if after_ns is not None:
                if now_ns - entered < after_ns:
                    continue
                after_s = after_ns / NS
            elif after is not None:
                after_s = after()
                if now_ns - entered < after_s * NS:
                    continue
            self._fire(rule, now_ns, after_s)
            return True
        if self._gate is not None:
            if self._pause:
                self._pause -= 1
            else:
                self._box = self._gate.box(now_ns, entered, self.held_since)
        return False

    # -- the replay fast path's screen ------------------------------------------------------
    @property
    def inputs_read(self) -> frozenset[str]:
        """The names this machine's rules and derived values read (``metrics.x``, ``risk.x``, ...)."""
        derived = frozenset(n for e, _ in self.spec.derive.values() for n in e.reads)
        return frozenset(n for r in self.spec.rules for n in r.reads) | derived

    def _vectorized(self) -> tuple[list, dict[str, list]]:
        """The derived values for numpy, and per state its compiled rules each with its ``when``
        for numpy (None where the numpy backend refuses an expression); compiled once."""
        if self._vector is None:
            from ..spec.vector import vectorize  # numpy: only the fast path's screens need it

            params = {k: v.value for k, v in self.spec.params.items()}
            derive = [(name, vectorize(expr, params)) for name, (expr, _) in self.spec.derive.items()]
            rules = {state: [(c, vectorize(c[0].when, params) if c[0].when is not None else None)
                             for c in compiled] for state, compiled in self.rules_by_state.items()}
            self._vector = (derive, rules)
        return self._vector

    def screen_values(self, inputs: dict[str, Any], ts: Any) -> dict[str, Any] | None:
        """``inputs`` (what the expressions read, by name, per row or constant) with
        ``time_in_state()`` and this machine's derived values added for the rows at event times
        ``ts``; None when numpy cannot compute a derived value bit for bit."""
        derive, _ = self._vectorized()
        own = dict(inputs)
        entered = self.entered_ns if self.entered_ns is not None else int(ts[0])
        own["time_in_state()"] = (ts - entered) / NS
        for name, fn in derive:
            val = fn(own) if fn is not None else None
            if val is None:
                return None
            own[name] = val
        return own

    def screen(self, inputs: dict[str, Any], ts: Any) -> BlockScreen:
        """Where ``evaluate`` over a block of rows (event times ``ts``, in order; ``inputs`` by
        name, numpy arrays per row or constants) could fire a rule of the current state or a
        ``for:`` hold could have lasted long enough. Evaluations on the other rows only start and
        reset holds, which the screen returns for ``catch_up_holds``. This machine's derived
        values are added to ``inputs`` (``NAME.value``) for the machines after it."""
        import numpy as np

        n = len(ts)
        out = BlockScreen(True, [], n)
        own = self.screen_values(inputs, ts)
        if own is None:
            return out
        derive, rules = self._vectorized()
        for name, _ in derive:
            inputs[f"{self.spec.name}.{name}"] = own[name]
        entered = self.entered_ns if self.entered_ns is not None else int(ts[0])
        flags = np.zeros(n, np.bool_)
        for (rule, when, after_ns, after, hold), when_vec in rules[self.state]:
            if when is None:
                w = True
            elif when_vec is None:
                return out
            else:
                w = when_vec(own)
            if hold is not None:
                flags |= self._hold_flags(rule, np.broadcast_to(w, ts.shape), ts, out.holds)
                continue
            if after_ns is not None:
                due = ts - entered >= after_ns - TIMER_MARGIN_NS
            elif after is not None:
                if not hasattr(after, "cache"):
                    return out
                after_s, until = self.timer_at(after, int(ts[0]))
                due = ts - entered >= after_s * NS - TIMER_MARGIN_NS
                stale = int(np.searchsorted(ts, until, "left"))
                if stale < n:  # the timer's value may change there: screen again after it
                    due[stale] = True
                    out.rows = min(out.rows, stale + 1)
            else:
                due = True
            flags |= np.broadcast_to(np.logical_and(w, due), ts.shape)
        out.flags = flags
        return out

    def _hold_flags(self, rule: Rule, w: Any, ts: Any, holds: list[HoldRun]) -> Any:
        """Rows where a ``for:`` hold may have lasted long enough to fire. Other rows only start
        or reset the hold (kept in ``holds``) or change nothing."""
        import numpy as np

        held = self.held_since.get(rule.index)
        if not rule.hold.is_const:
            prev = np.empty_like(w)
            prev[0] = held is not None
            prev[1:] = w[:-1]
            return w | (w != prev)  # every row the hold is running, and the one resetting it
        # each row's hold start: the first row of its run of true rows (or the running hold's)
        prev_false = np.empty_like(w)
        prev_false[0] = held is None
        prev_false[1:] = ~w[:-1]
        start_row = np.maximum.accumulate(np.where(w & prev_false, np.arange(len(w)), -1))
        since = np.where(start_row >= 0, ts[np.maximum(start_row, 0)], held if held is not None else 0)
        holds.append(HoldRun(rule.index, w, since))
        return w & (ts - since >= rule.hold.root.const * NS - TIMER_MARGIN_NS)

    def screen_conditions(self, own: dict[str, Any], ts: Any) -> Any:
        """Rows where a rule of the current state has its condition hold, and where a running
        ``for:`` hold resets (or True: every row, where numpy cannot tell); ``own`` as
        ``screen_values`` returns it. Coarser than ``screen``: for a machine evaluated on every
        row its conditions hold (the risk machine), whose holds then need no catch-up."""
        import numpy as np

        _, rules = self._vectorized()
        flags = np.zeros(len(ts), np.bool_)
        for (rule, when, _after_ns, _after, hold), when_vec in rules[self.state]:
            if when is None or when_vec is None:
                return True
            w = np.broadcast_to(when_vec(own), ts.shape)
            flags |= w
            if hold is not None:  # and so does the row where a running hold resets
                prev = np.empty_like(w)
                prev[0] = rule.index in self.held_since
                prev[1:] = w[:-1]
                flags |= w != prev
        return flags

    def catch_up_holds(self, holds: list[HoldRun], i: int) -> None:
        """Set each ``for:`` hold of a screen (``screen``'s ``holds``) as evaluations up to its
        row ``i`` would have left it: the rows not evaluated only start and reset holds."""
        held = self.held_since
        for h in holds:
            if h.when[i]:
                held[h.index] = int(h.since[i])
            else:
                held.pop(h.index, None)

    # -- firing -----------------------------------------------------------------------------
    def _fire(self, rule: Rule, now_ns: int, after_s: float | None) -> None:
        self._firing = (rule, self._inputs_read(rule, now_ns, after_s))
        getattr(self._model, f"rule_{rule.index}")()

    def _inputs_read(self, rule: Rule, now_ns: int, after_s: float | None) -> dict[str, Any]:
        """The values the rule's expressions read, and its timers, for the transition record."""
        inputs = {}
        for name in rule.reads:
            if "." in name:
                ns, key = name.split(".", 1)
                inputs[name] = self._namespaces[ns][key]
            else:
                inputs[name] = self.out[name]
        if after_s is not None:
            inputs["time_in_state_s"] = (now_ns - self.entered_ns) / NS
            inputs["after_s"] = after_s
        if rule.hold is not None:
            inputs["held_s"] = (now_ns - self.held_since.get(rule.index, now_ns)) / NS
        return inputs

    def _after_state_change(self) -> None:
        rule, inputs = self._firing
        self._firing = None
        src, dest = self.out["state"], self._model.state
        now = self.now_ns
        self.out["state"] = dest
        self._current = self.rules_by_state[dest]
        self._derive_now = self.derive_by_state[dest]
        self._gate = self.gates[dest]
        if self._box is not None:
            self.skipped += self._box_skips
            self._box = None
            self._box_skips = 0
        self.entered_ns = now
        self.held_since.clear()
        window = self._max_window_ns.get(dest)
        if window:
            q = self._entries[dest]
            q.append(now)
            while q and q[0] <= now - window:
                q.popleft()
        self.transition_count += 1
        self.emit(records.transition(
            now, self.symbol,
            machine=self.spec.name,
            from_=src,
            to=dest,
            rule=rule.index,
            guard=rule.describe(),
            inputs={k: _jsonable(v) for k, v in inputs.items()},
            params={p: self.spec.params[p].value for p in rule.params},
        ))


def _jsonable(v: Any) -> Any:
    """Floats that JSON cannot carry (inf, nan) become strings; everything else as is."""
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return repr(v)
    return v
