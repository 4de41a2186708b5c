"""A gap in the data: which clock ticks can be skipped, provably.

Once the data has been silent for longer than every metric window (``settle_ns``), a clock tick
changes the metrics only through the ages (``quote_age``, ``trade_age``: affine in time) and the
layers only through time: ``time_in_state()``, ``entries()`` leaving their windows, ``after:``
and ``for:`` timers, the risk guard's stale flag, orders leaving the rate window, the kill
switch's reset, and the paper engine's wake-ups. ``QuietSpan.provably_quiet(t0, t1)`` proves
that no tick in ``[t0, t1]`` would change any state or write any record, by evaluating every
expression the current states read (derived values, guards, timers, the decision table) over the
whole span with interval arithmetic: each time-dependent input becomes the interval of its values
over the span, computed with the same float operations at both ends (IEEE rounding is monotone,
so the ends bound every tick between them). Anything it cannot bound (``%``, ``**`` of a varying
value, a possible NaN, an ``in`` list of a varying value) is unknown, and unknown is not quiet.
The runtime then skips to the end of the longest quiet span (found by bisection, O(log gap)
proofs per change) and processes the next tick in full.

In such a gap (the "quiet" part, after ``settle_ns``) the runtime asks no intent generator and
writes no ``metrics`` sample: both resume at the first tick after data resumes (docs/sessions.md).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from ..spec.expr import _BINOPS, FUNCTIONS

NS = 1_000_000_000
SETTLE_MARGIN_NS = NS  # beyond the longest metric window
_ARITH = dict(_BINOPS.values())  # symbol -> the operation the closures apply


class _Iv:
    """A number that varies over the span: every value lies in [lo, hi] (never NaN)."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi


_BOTH = object()  # a boolean that may be either
_UNKNOWN = _Iv(-math.inf, math.inf)


class _Unknown(Exception):
    pass


def _iv(lo: Any, hi: Any) -> Any:
    if lo != lo or hi != hi:  # NaN
        raise _Unknown
    return lo if lo == hi and type(lo) is type(hi) else _Iv(min(lo, hi), max(lo, hi))


def _corners(fn: Callable, a: Any, b: Any) -> Any:
    al, ah = (a.lo, a.hi) if type(a) is _Iv else (a, a)
    bl, bh = (b.lo, b.hi) if type(b) is _Iv else (b, b)
    vals = [fn(al, bl), fn(al, bh), fn(ah, bl), fn(ah, bh)]
    if any(v != v for v in vals):
        raise _Unknown
    return _Iv(min(vals), max(vals))


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class SpanEval:
    """Evaluates a checked expression over a span, walking its typed tree (``Expr.root``, the
    tree the closures are built from): exact values, ``_Iv`` or ``_BOTH``. Params and constant
    parts are already folded into the tree."""

    def __init__(self, lookup: Callable[[str], Any], call: Callable[[str, list], Any]):
        self.lookup, self.call = lookup, call

    def run(self, expr: Any) -> Any:
        try:
            return self.visit(expr.root)
        except _Unknown:
            return _UNKNOWN

    def visit(self, node: Any) -> Any:
        if node.is_const:
            return node.const
        if not node.kind:  # no value and no shape: nothing to bound it with
            raise _Unknown
        return getattr(self, "v_" + node.kind)(node)

    def v_input(self, node):
        ns, key = node.lookup
        return self.lookup(key if ns == "derived" else f"{ns}.{key}")

    def v_not(self, node):
        v = self.visit(node.kids[0])
        return _BOTH if v is _BOTH else not v

    def v_neg(self, node):
        v = self.visit(node.kids[0])
        return _Iv(-v.hi, -v.lo) if type(v) is _Iv else -v

    def _bool_op(self, node, is_and: bool):
        vals = [self.visit(k) for k in node.kids]
        if any(v is not _BOTH and bool(v) != is_and for v in vals):
            return not is_and
        return _BOTH if any(v is _BOTH for v in vals) else is_and

    def v_and(self, node):
        return self._bool_op(node, True)

    def v_or(self, node):
        return self._bool_op(node, False)

    def v_arith(self, node):
        a, b = self.visit(node.kids[0]), self.visit(node.kids[1])
        symbol = node.op
        fn = _ARITH[symbol]
        if type(a) is not _Iv and type(b) is not _Iv:
            return fn(a, b)
        if symbol in ("%", "**"):
            raise _Unknown
        if symbol == "/":
            bl, bh = (b.lo, b.hi) if type(b) is _Iv else (b, b)
            if bl <= 0 <= bh:
                raise _Unknown
        return _corners(fn, a, b)

    def v_cmp(self, node):
        a, b = self.visit(node.kids[0]), self.visit(node.kids[1])
        fn = node.op
        if a is _BOTH or b is _BOTH:
            return _BOTH
        if type(a) is not _Iv and type(b) is not _Iv:
            return fn(a, b)
        if (type(a) is not _Iv and a != a) or (type(b) is not _Iv and b != b):
            return fn(math.nan, 0.0)  # anything against NaN: False (True for !=)
        al, ah = (a.lo, a.hi) if type(a) is _Iv else (a, a)
        bl, bh = (b.lo, b.hi) if type(b) is _Iv else (b, b)
        ends = {fn(x, y) for x in (al, ah) for y in (bl, bh)}
        if fn in (operator.eq, operator.ne):
            if ah < bl or bh < al:  # disjoint: never equal
                return fn(0, 1)
            return _BOTH
        # <, <=, >, >=: monotone in each side, so the corners decide when they agree
        return ends.pop() if len(ends) == 1 else _BOTH

    def v_in(self, node):
        left = self.visit(node.kids[0])
        values, negate = node.op
        if type(left) is _Iv or left is _BOTH:
            return _BOTH
        return (left in values) != negate

    def v_if(self, node):
        cond, body, orelse = node.kids
        test = self.visit(cond)
        if test is not _BOTH:
            return self.visit(body if test else orelse)
        a, b = self.visit(body), self.visit(orelse)
        if type(a) is not _Iv and type(b) is not _Iv and a == b and type(a) is type(b):
            return a
        if (_num(a) or type(a) is _Iv) and (_num(b) or type(b) is _Iv):
            lo = min(a.lo if type(a) is _Iv else a, b.lo if type(b) is _Iv else b)
            hi = max(a.hi if type(a) is _Iv else a, b.hi if type(b) is _Iv else b)
            return _iv(lo, hi)
        if isinstance(a, bool) and isinstance(b, bool):
            return _BOTH
        raise _Unknown

    def v_clock(self, node):
        return self.call("time_in_state", [])

    def v_entries(self, node):
        return self.call("entries", list(node.op))

    def v_call(self, node):
        name = node.op
        args = [self.visit(a) for a in node.kids]
        fn = FUNCTIONS[name][2]
        if not any(type(a) is _Iv for a in args):
            return fn(*args)
        if any(a != a for a in args if type(a) is not _Iv) or any(type(a) is not _Iv and not _num(a) for a in args):
            raise _Unknown
        if name in ("min", "max"):
            return _iv(fn(*[a.lo if type(a) is _Iv else a for a in args]),
                       fn(*[a.hi if type(a) is _Iv else a for a in args]))
        if name == "abs":
            (a,) = args
            if a.lo >= 0:
                return a
            if a.hi <= 0:
                return _Iv(-a.hi, -a.lo)
            return _Iv(0, max(-a.lo, a.hi))
        if name == "clip":
            x, lo, hi = args
            if type(lo) is _Iv or type(hi) is _Iv:
                raise _Unknown
            return _iv(fn(x.lo, lo, hi), fn(x.hi, lo, hi))
        (a,) = args  # log, exp, sqrt: monotone
        return _iv(fn(a.lo), fn(a.hi))


class QuietSpan:
    """Proves runs of clock ticks of one pipeline quiet (see the module doc).

    ``stamps()`` gives the metrics' last valid quote and trade times (None before any), so the
    ages at any time are known without advancing the metrics."""

    def __init__(self, pipeline: Any, stamps: Callable[[], tuple[int | None, int | None]] | None = None):
        self.p = pipeline  # read afresh on every proof: a hot reload may replace its layers
        self._stamps = stamps

    def stamps(self) -> tuple[int | None, int | None]:
        return self._stamps() if self._stamps is not None else self.p.metrics.last_stamps()

    # -- the proof -----------------------------------------------------------------------------
    def provably_quiet(self, t0: int, t1: int) -> bool:
        p = self.p
        wake = p.engine.next_wakeup_ns()
        if wake is None or wake <= t1:
            return False
        qts, tts = self.stamps()
        ages: dict[str, Any] = {}
        for m in p.metrics.metric_set:
            last = qts if m.kind == "quote_age" else tts if m.kind == "trade_age" else 0
            if last != 0:
                ages[f"metrics.{m.name}"] = _iv((t0 - last) * 1e-6, (t1 - last) * 1e-6) if last is not None \
                    else math.inf
        book = getattr(p, "book", None)
        if book is not None:  # the book's age grows like the quote's (SymbolBook.age_ms)
            last = book.last_ns
            for n in p.book_metrics.age_names:
                ages[f"metrics.{n}"] = _iv((t0 - last) / 1_000_000, (t1 - last) / 1_000_000) if last is not None \
                    else math.inf
        if not self._risk_steady(t0, t1, ages):
            return False
        published: dict[str, Any] = {}  # machine derived values over the span
        for m in p.machines:
            if not self._machine_quiet(m, t0, t1, ages, published):
                return False
        return self._decision_steady(ages, published)

    def _value(self, name: str, ages: dict, published: dict, own: dict | None = None) -> Any:
        if own is not None and name in own:
            return own[name]
        if name in ages:
            return ages[name]
        if name in published:
            return published[name]
        ns, _, key = name.partition(".")
        spaces = self.p.namespaces
        return (spaces if ns in spaces else self.p.risk.namespaces)[ns][key]  # account: the risk machine's

    def _risk_steady(self, t0: int, t1: int, ages: dict) -> bool:
        """The risk machine writes no alert and changes no state over the span: the account does
        not change (the engine sleeps past it; orders leaving the window are counted here), no
        guard flips and no rule of the kill switch fires or starts or resets a hold."""
        p = self.p
        risk, engine = p.risk, p.engine
        n = risk.orders_in_window(engine, t0)
        if n != risk.orders_in_window(engine, t1) or n != risk.account["orders_in_window"]:
            return False
        guards: dict[str, Any] = {}
        if not self._machine_quiet(risk.machine, t0, t1, ages, guards):
            return False
        name = risk.machine.spec.name
        return all(guards[f"{name}.{g}"] is on for g, on in zip(risk.guards, risk.flags, strict=True))

    def _machine_quiet(self, m: Any, t0: int, t1: int, ages: dict, published: dict) -> bool:
        entered = m.entered_ns
        if entered is None:
            return False
        own: dict[str, Any] = {}

        def lookup(name: str) -> Any:
            if "." not in name and name not in own:
                return m.out[name]  # a derived value read before this pass computed it
            return self._value(name, ages, published, own)

        def call(name: str, args: list) -> Any:
            if name == "time_in_state":
                return _iv((t0 - entered) / NS, (t1 - entered) / NS)
            state, window_s = args
            now = m.now_ns
            m.now_ns = t0
            first = m.entries(state, window_s)
            m.now_ns = t1
            last = m.entries(state, window_s)
            m.now_ns = now
            return first if first == last else _Iv(last, first)

        ev = SpanEval(lookup, call)
        for name, (expr, _) in m.spec.derive.items():
            val = ev.run(expr)
            if val is _UNKNOWN:
                return False
            own[name] = val
            published[f"{m.spec.name}.{name}"] = val
        for rule, _when, after_ns, _after, _hold in m.rules_by_state[m.state]:
            w = ev.run(rule.when) if rule.when is not None else True
            if w is _UNKNOWN or w is _BOTH:
                return False
            if not w:
                if rule.hold is not None and rule.index in m.held_since:
                    return False  # the next tick resets it
                continue
            if rule.hold is not None:
                since = m.held_since.get(rule.index)
                h = ev.run(rule.hold)
                if since is None or type(h) is _Iv or h is _UNKNOWN or not _num(h):
                    return False
                if t1 - since < h * NS:
                    continue  # held too briefly all along: the scalar path looks no further
            if after_ns is not None:
                if not (t1 - entered < after_ns):
                    return False
            elif rule.after is not None:
                a = ev.run(rule.after)
                lo = a.lo if type(a) is _Iv else a
                if a is _UNKNOWN or not _num(lo) or not (t1 - entered < lo * NS):
                    return False
            else:
                return False  # nothing holds it back: it fires
        return True

    def _decision_steady(self, ages: dict, published: dict) -> bool:
        table = self.p.decision
        spec = table.spec

        def lookup(name: str) -> Any:
            return self._value(name, ages, published)

        ev = SpanEval(lookup, lambda name, args: _UNKNOWN)
        out = table.out
        for rule in spec.rules:
            w = ev.run(rule.when)
            if w is _UNKNOWN or w is _BOTH:
                return False
            if w:
                b = ev.run(rule.risk_budget)
                if type(b) is _Iv or b is _UNKNOWN or not _num(b):
                    return False
                b = 0.0 if b != b else min(max(float(b), 0.0), 1.0)
                return out["rule"] == rule.name and out["risk_budget"] == b
        return False


def settle_ns(metric_set: Any) -> int:
    """How long after the last event every metric window has emptied."""
    return max((m.window_ns for m in metric_set), default=0) + SETTLE_MARGIN_NS


def last_quiet_tick(prove: Callable[[int, int], bool], t0: int, t_end: int, tick: int) -> int:
    """The last tick ``t`` in ``[t0, t_end]`` with ``[t0, t]`` provably quiet (``t0 - tick`` when
    ``t0`` itself is not): a quiet span's sub-spans are quiet, so bisection finds it."""
    if t_end < t0 or not prove(t0, t0):
        return t0 - tick
    if prove(t0, t_end):
        return t_end
    lo, hi = 0, (t_end - t0) // tick  # tick offsets: lo proven, hi not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if prove(t0, t0 + mid * tick):
            lo = mid
        else:
            hi = mid
    return t0 + lo * tick
