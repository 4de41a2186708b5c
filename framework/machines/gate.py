"""When a machine must be evaluated again: compiled once per state from the typed expression tree.

An evaluation of a machine's current state that fires nothing is repeated, by the hot path, on
the next event. It would give the same outcome (no transition, no hold started or reset) as
long as every outgoing rule's ``when`` keeps its value and no ``for:`` hold or ``after:`` timer
falls due. ``StateGate`` knows, for one state, what those values depend on:

- an atom ``input OP constant`` (``<`` ``<=`` ``>`` ``>=`` ``==`` ``!=``) depends only on which
  side of the constant the input lies, so each numeric input gets the sorted constants it is
  compared with (its thresholds), and after an evaluation a cell: the closed float interval
  strictly between two neighbouring thresholds (bounds moved one ulp inwards), the threshold
  itself when the input sits exactly on one, or "NaN" (every comparison with NaN is false);
- ``input OP expression``: the expression's inputs must keep their exact values, and the
  input is compared with the expression's value at the evaluation (a threshold of that cell);
- ``expression OP constant`` where the expression is built from monotone operations (a score,
  a weighted sum of clipped terms; ``bounds.py``): after an evaluation, each of its inputs gets
  a box around its value, proven by interval arithmetic to keep the expression inside its cell
  between the constants it is compared with (the conditions of its ``if`` branches keep their
  truth); a box is intersected with the input's own cell;
- anything else a rule reads (strings, booleans, ``in`` lists, arithmetic, derived values that
  are not plain comparisons) must keep its exact value;
- ``time_in_state()`` and ``entries()`` inside a guard or a derived value it reads, or a
  ``for:``/``after:`` that is not a constant or a cached cooldown, make the state "always
  evaluate" (no gate);
- ``for:`` holds in progress and ``after:`` timers give a due time.

Derived values are inlined: a rule reading ``ready`` depends on what ``ready``'s expression
reads. The check per event is, per namespace, one C-level fetch of the watched values and two
C-level comparisons of them with the cell bounds; the cells are built after each evaluation
that fired nothing (bisect over the precomputed thresholds).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..spec.expr import BOOL, NUM, Binding, Expr, Node
from .bounds import Analysis, Unbounded, analyse, compile_bounds, resolve, value_of

NS = 1_000_000_000
_INF = math.inf
_NAN = math.nan
_CELL_TYPES = (float, int, bool, str)


class AlwaysEvaluate(Exception):
    """The state's outcome depends on something the gate cannot bound (a clock read)."""


@dataclass
class _Watch:
    """What one input's cell depends on."""

    exact: bool = False  # any change may matter
    thresholds: set = field(default_factory=set)  # constants it is compared with
    pivots: list = field(default_factory=list)  # closures computing the values it is compared with


class _Collector:
    """Walks the typed trees of one state's guards; raises AlwaysEvaluate when it cannot bound."""

    def __init__(self, derived: dict[str, Node]):
        self.derived = derived
        self.watch: dict[tuple[str, str], _Watch] = {}
        self.pivots: list[tuple[tuple[str, str], Node]] = []
        # computed numbers compared with constants: id(node) -> (node, analysis, thresholds)
        self.sums: dict[int, tuple[Node, Analysis, set]] = {}

    def _w(self, ns: str, key: str) -> _Watch:
        return self.watch.setdefault((ns, key), _Watch())

    def value(self, n: Node) -> None:
        """``n`` must keep its exact value: a boolean its truth, anything else the exact values
        of its inputs."""
        if n.is_const:
            return
        if n.type.kind == BOOL:
            self.truth(n)
            return
        self._exact(n)

    def _exact(self, n: Node) -> None:
        if n.is_const:
            return
        if n.kind == "input":
            ns, key = n.lookup
            if ns == "derived":
                self.value(self.derived[key])
            else:
                self._w(ns, key).exact = True
            return
        if n.kind in ("clock", "entries") or not n.kind:
            raise AlwaysEvaluate(n.kind or "an expression of unknown shape")
        for k in n.kids:
            self.value(k)

    def truth(self, n: Node) -> None:
        """What keeps the boolean ``n`` at its value."""
        if n.is_const:
            return
        kind = n.kind
        if kind == "input":
            ns, key = n.lookup
            if ns == "derived":
                self.value(self.derived[key])
            else:
                self._w(ns, key).exact = True
        elif kind in ("not", "and", "or"):
            for k in n.kids:
                self.truth(k)
        elif kind == "if":
            for k in n.kids:
                self.value(k)
        elif kind == "cmp":
            self._compare(*n.kids)
        else:  # "in" and anything else: exact values
            self._exact(n)

    def _compare(self, left: Node, right: Node) -> None:
        if left.type.kind != NUM:
            self.value(left)
            self.value(right)
            return
        left, right = resolve(left, self.derived), resolve(right, self.derived)
        lp, rp = _plain(left), _plain(right)
        if lp is not None and right.is_const:
            self._threshold(lp, right.const)
        elif rp is not None and left.is_const:
            self._threshold(rp, left.const)
        elif right.is_const and self._bounded(left, right.const):
            pass
        elif left.is_const and self._bounded(right, left.const):
            pass
        elif lp is not None:
            self.value(right)
            self.pivots.append((lp, right))
        elif rp is not None:
            self.value(left)
            self.pivots.append((rp, left))
        else:
            self.value(left)
            self.value(right)

    def _bounded(self, n: Node, c: Any) -> bool:
        """``n OP c`` for a computed ``n`` that interval bounds can hold inside its cell: its
        inputs get boxes (``_Sum``) instead of exact values. False when it cannot be bounded."""
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            return False
        if c != c:
            return True  # a comparison with NaN never changes
        if isinstance(c, int) and float(c) != c:
            return False
        entry = self.sums.get(id(n))
        if entry is None:
            analysis = analyse(n, self.derived)
            if analysis is None:
                return False
            for cond in analysis.conds:
                self.truth(cond)
            for key in analysis.gains:
                self._w(*key)
            entry = self.sums[id(n)] = (n, analysis, set())
        entry[2].add(float(c))
        return True

    def _threshold(self, key: tuple[str, str], c: Any) -> None:
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            self._w(*key).exact = True
            return
        if c != c:
            return  # a comparison with NaN never changes
        if isinstance(c, int) and float(c) != c:
            self._w(*key).exact = True  # cell bounds are floats; keep it exact
            return
        self._w(*key).thresholds.add(float(c))


def _plain(n: Node) -> tuple[str, str] | None:
    """The (namespace, key) of a non-derived input read as it is."""
    if n.kind == "input" and n.lookup[0] != "derived":
        return n.lookup
    return None


@dataclass
class _Key:
    """One watched input, ready for building its cell."""

    key: str
    exact: bool
    thresholds: tuple[float, ...]  # sorted
    lows: tuple[float, ...]  # lows[i]: the cell's lower bound when thresholds[i-1] < v < thresholds[i]
    highs: tuple[float, ...]
    pivots: tuple[Callable[[], Any], ...]


@dataclass
class _Sum:
    """A computed number compared with constants (a score): its inputs' boxes keep it in its cell."""

    bounds: Callable[[dict], tuple[float, float]]  # box of the inputs -> interval of the number
    thresholds: tuple[float, ...]  # sorted
    leaves: tuple[tuple[int, dict, str, tuple[str, str], float], ...]  # (cell index, dict, key, (ns, key), gain)
    value: Callable[[], Any]  # the number now, as the machine computes it

    tries = 3  # halvings of the boxes before the inputs are kept exact

    def boxes(self) -> list[tuple[float, float]] | None:
        """Per input, a box around its value in which the number stays in its current cell;
        None when there is none (an input NaN or infinite, the number on a threshold)."""
        if not self.leaves:
            return []  # a constant, but for the branches its conditions take (watched apart)
        values = []
        for _, d, key, _, _ in self.leaves:
            v = value_of(d[key])
            if v is None:
                return None
            values.append(v)
        # The cell is found from the number as computed (a plain evaluation, a third of an
        # interval one); only the interval check below proves anything.
        x = self.value()
        if type(x) not in (float, int) or not -_MAX <= x <= _MAX:
            return None
        ts = self.thresholds
        i = bisect_left(ts, x)
        if i < len(ts) and x == ts[i]:
            return None  # on a threshold
        cell_lo = math.nextafter(ts[i - 1], _INF) if i else -_INF
        cell_hi = math.nextafter(ts[i], -_INF) if i < len(ts) else _INF
        slack = min(x - cell_lo, cell_hi - x)
        if not slack > 0:
            return None
        # Each input gets an equal share of the room the number has, by its slope bound; the
        # interval check below decides (the share is only a guess, rounding included).
        share = slack / (2 * len(values))
        for _ in range(self.tries):
            box = {}
            ends = []
            for (_, _, _, name, gain), v in zip(self.leaves, values, strict=True):
                r = share / gain if gain > 0 else _INF
                b = (max(v - r, -_MAX), min(v + r, _MAX))
                box[name] = b
                ends.append(b)
            try:
                lo, hi = self.bounds(box)
            except Unbounded:
                lo = hi = _NAN
            if cell_lo <= lo and hi <= cell_hi:
                return ends
            share /= 4
        return None


_MAX = 1.7976931348623157e308


class StateGate:
    """The compiled gate of one state of one machine; ``None`` from ``compile_state`` when the
    state must be evaluated on every event."""

    def __init__(self, groups: list[tuple[dict[str, Any], list[_Key]]], holds: tuple, afters: tuple,
                 signed_zero: bool = False, sums: tuple[_Sum, ...] = (), watch: Any = None):
        self.groups = groups
        self.sums = sums
        # The derived values are published: an exact input must not turn 0.0 into -0.0 unseen
        # (equal in every comparison, but another layer could log it)
        self.signed_zero = signed_zero
        self.holds = holds  # (rule index, hold seconds)
        self.afters = afters  # after_ns (int) or a cached after: closure
        # The cells of the values a compiled metric kernel computes are checked by the kernel
        # after each event (``watch``: the machine's slot there); the rest by ``Box.holds``.
        cells = [(d, k.key) for d, keys in groups for k in keys]
        columns = watch.columns if watch is not None else {}
        kernel = [(i, columns[key]) for i, (d, key) in enumerate(cells)
                  if watch is not None and d is watch.values and key in columns]
        self.watch = watch if kernel else None  # no cell of the kernel's: nothing to arm
        self.kernel_index = [i for i, _ in kernel]  # positions in the cells
        self.kernel_columns = [col for _, col in kernel]  # the same list on every arm: written once
        self.own_cells = [i for i in range(len(cells)) if i not in self.kernel_index]

    def box(self, now_ns: int, entered_ns: int, held_since: dict[int, int]) -> Box | None:
        """The cells the watched inputs are in now, and when a timer falls due. Built right
        after an evaluation that fired nothing: the derived values are the ones it computed."""
        cells = []
        for d, keys in self.groups:
            for k in keys:
                v = d[k.key]
                if type(v) not in _CELL_TYPES:
                    return None
                if v != v:
                    cells.append((d, k.key, _NAN, _NAN))  # the NaN cell
                elif k.exact or type(v) is str or type(v) is bool:
                    if self.signed_zero and v == 0 and type(v) is float:
                        return None
                    cells.append((d, k.key, v, v))
                else:
                    lo, hi = _cell(v, k)
                    cells.append((d, k.key, lo, hi))
        for s in self.sums:
            boxes = s.boxes()
            if boxes is None:  # its inputs keep their exact values
                for index, d, key, _, _ in s.leaves:
                    v = d[key]
                    cells[index] = (d, key, v, v) if v == v else (d, key, _NAN, _NAN)
            else:
                for (index, d, key, _, _), (blo, bhi) in zip(s.leaves, boxes, strict=True):
                    _, _, lo, hi = cells[index]
                    cells[index] = (d, key, max(lo, blo), min(hi, bhi))
        due = _FOREVER
        for index, hold_s in self.holds:
            since = held_since.get(index)
            if since is not None:
                due = min(due, since + _floor_ns(hold_s))
        for after in self.afters:
            if type(after) is int:
                due = min(due, entered_ns + after)
            else:
                value = after()
                due = min(due, entered_ns + _floor_ns(value), after.cache[3])
        if self.watch is None:
            return Box(tuple(cells), now_ns, due, dict(held_since))
        index = self.kernel_index
        bit = self.watch.arm(self.kernel_columns, [cells[i][2] for i in index], [cells[i][3] for i in index])
        return Box(tuple(cells[i] for i in self.own_cells), now_ns, due, dict(held_since), self.watch.metrics, bit)


_FOREVER = 1 << 126


def _floor_ns(seconds: Any) -> int:
    x = seconds * NS
    if type(x) not in (float, int) or x != x:
        return -_FOREVER  # `now - entered < nan` is false: due at once; keep evaluating
    if x in (_INF, -_INF):
        return _FOREVER if x > 0 else -_FOREVER
    return math.floor(x)


def _cell(v: float, k: _Key) -> tuple[float, float]:
    """The closed float interval around ``v`` in which no comparison with a threshold changes."""
    ts = k.thresholds
    lo, hi = -_INF, _INF
    if ts:
        i = bisect_left(ts, v)
        if i < len(ts) and ts[i] == v:
            return v, v
        lo, hi = k.lows[i], k.highs[i]
    for pivot in k.pivots:
        c = pivot()
        if type(c) not in (float, int) or (type(c) is int and float(c) != c):
            return v, v  # not a plain float: keep the input exact
        if c != c:
            continue  # NaN: the comparison is false whatever the input
        if c == v:
            return v, v
        if c < v:
            lo = max(lo, math.nextafter(c, _INF))
        else:
            hi = min(hi, math.nextafter(c, -_INF))
    return lo, hi


class Box:
    """The cells after one evaluation; ``holds`` answers whether the next one can be skipped."""

    __slots__ = ("cells", "built", "due", "held", "metrics", "bit")

    def __init__(self, cells: tuple, built: int, due: int, held: dict[int, int], metrics: Any = None, bit: int = 0):
        self.cells = cells  # (namespace, key, lo, hi): lo <= value <= hi; lo = hi = NaN for NaN
        self.built = built  # event time of the evaluation (an earlier time is not covered)
        self.due = due
        self.held = held
        self.metrics = metrics  # whose compiled kernel checks the other cells: bit ``bit`` of
        self.bit = bit  # ``metrics.armed`` stays set while they hold

    def holds(self, now_ns: int, held_since: dict[int, int]) -> bool:
        """No input left its cell, no timer is due, no hold was started or reset meanwhile.
        (A plain loop: cheaper here than C-level maps over fetched tuples.)"""
        if not self.built <= now_ns < self.due or held_since != self.held:
            return False
        if self.bit and not self.metrics.armed & self.bit:
            return False
        try:
            for d, k, lo, hi in self.cells:
                v = d[k]
                if not (lo <= v <= hi) and (v == v or lo == lo):
                    return False
        except TypeError:  # a value of another type than at the evaluation
            return False
        return True


def compile_state(rules: Iterable[tuple], derived: dict[str, Expr], binding: Binding,
                  published: bool = False, watch: Any = None) -> StateGate | None:
    """The gate of one state from its compiled rules ``(rule, when, after_ns, after, hold)``;
    None when the state must be evaluated on every event. ``published``: other layers read the
    derived values, so a skipped evaluation must leave every one of them as it would compute it.
    ``watch``: the machine's slot in the compiled metric kernel (``WatchSlot``), which then
    checks the cells of the values it computes."""
    collector = _Collector({name: e.root for name, e in derived.items()})
    holds = []
    afters = []
    try:
        if published:
            for e in derived.values():
                collector.value(e.root)
        for rule, _when, after_ns, after, _hold in rules:
            if rule.when is not None:
                collector.truth(rule.when.root)
            if rule.hold is not None:
                if not rule.hold.is_const:
                    return None
                holds.append((rule.index, rule.hold.root.const))
            if after_ns is not None:
                afters.append(after_ns)
            elif after is not None:
                if getattr(after, "cache", None) is None:
                    return None
                afters.append(after)
    except AlwaysEvaluate:
        return None
    for key, node in collector.pivots:
        collector._w(*key).pivots.append(node)
    by_ns: dict[str, list[_Key]] = {}
    for (ns, key), w in collector.watch.items():
        ts = tuple(sorted(w.thresholds))
        lows = (-_INF, *(math.nextafter(t, _INF) for t in ts))
        highs = (*(math.nextafter(t, -_INF) for t in ts), _INF)
        pivots = tuple(_bind(n, binding) for n in w.pivots)
        by_ns.setdefault(ns, []).append(_Key(key, w.exact, ts, lows, highs, pivots))
    groups = [(binding.namespaces[ns], keys) for ns, keys in by_ns.items()]
    index = {(ns, k.key): i for i, (ns, k) in enumerate((ns, k) for ns, keys in by_ns.items() for k in keys)}
    sums = []
    for node, analysis, thresholds in collector.sums.values():
        leaves = tuple((index[name], binding.namespaces[name[0]], name[1], name, gain)
                       for name, gain in analysis.gains.items())
        sums.append(_Sum(compile_bounds(node, collector.derived, binding), tuple(sorted(thresholds)), leaves,
                         _bind(node, binding)))
    return StateGate(groups, tuple(holds), tuple(afters), signed_zero=published, sums=tuple(sums), watch=watch)


def _bind(n: Node, binding: Binding) -> Callable[[], Any]:
    if n.is_const:
        value = n.const
        return lambda: value
    return n.build(binding)


def derived_needed(rules: Iterable[tuple], derived: dict[str, Expr]) -> set[str]:
    """The derived values the rules read, directly or through other derived values."""
    need: set[str] = set()
    todo = [name for rule, *_ in rules for e in (rule.when, rule.after, rule.hold) if e is not None
            for name in e.reads if "." not in name]
    while todo:
        name = todo.pop()
        if name in need or name not in derived:
            continue
        need.add(name)
        todo.extend(n for n in derived[name].reads if "." not in n)
    return need
