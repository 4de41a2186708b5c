"""Interval bounds of a numeric expression over a box of its inputs, from the typed tree.

The machine gate (``gate.py``) uses them for a guard comparing a computed number with
constants, such as a health score that is a weighted sum of clipped terms: any input change
moves the score, yet the comparisons keep their outcome while every input stays in a box around
its value. ``analyse`` says whether an expression can be bounded (and which conditions of its
``if`` branches must keep their truth); ``compile_bounds`` gives a function from a box of its
inputs to an interval enclosing every value the expression's closures can compute there.

Only operations that are monotone in each argument are bounded: + and - of two operands, * and
/ by a constant, unary -, abs, min, max, clip with constant bounds, ``if`` (the branch its
condition takes now). IEEE rounding is monotone, so these computed in floats at the box's ends
already enclose every float result inside; each arithmetic result is still widened by one ulp
outwards, so the enclosure holds whatever the order of operations inside. Any end that is not
finite (an infinite input, an overflow) makes the expression unbounded for that box: a float
NaN (``inf - inf``) could hide inside such an interval and pass a clip unseen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..spec.expr import BOOL, NUM, Binding, Node

_INF = math.inf
_MAX = 1.7976931348623157e308
Interval = tuple[float, float]
Box = dict[tuple[str, str], Interval]  # (namespace, key) -> (lo, hi)


class Unbounded(Exception):
    """The interval left the finite floats: no enclosure is claimed."""


@dataclass
class Analysis:
    """What bounding an expression depends on."""

    gains: dict[tuple[str, str], float] = field(default_factory=dict)  # input -> slope bound
    conds: list[Node] = field(default_factory=list)  # ``if`` conditions whose truth must stay


def _const_float(n: Node) -> float | None:
    c = n.const
    if isinstance(c, bool) or not isinstance(c, (int, float)):
        return None
    f = float(c)
    if f != c or not math.isfinite(f):
        return None
    return f


def resolve(n: Node, derived: dict[str, Node]) -> Node:
    """The expression behind a chain of derived names."""
    seen = 0
    while n.kind == "input" and n.lookup[0] == "derived" and seen < 64:
        n = derived[n.lookup[1]]
        seen += 1
    return n


def analyse(n: Node, derived: dict[str, Node]) -> Analysis | None:
    """The inputs of ``n`` with a bound on how fast ``n`` moves with each (a heuristic for box
    sizes, never trusted for exactness), or None when ``n`` cannot be bounded."""
    out = Analysis()
    return out if _walk(n, derived, 1.0, out, 0) else None


def _walk(n: Node, derived: dict[str, Node], gain: float, out: Analysis, depth: int) -> bool:
    if depth > 200:
        return False
    if n.is_const:
        return _const_float(n) is not None
    if n.type.kind != NUM:
        return False
    kind = n.kind
    if kind == "input":
        ns, key = n.lookup
        if ns == "derived":
            return _walk(derived[key], derived, gain, out, depth + 1)
        out.gains[(ns, key)] = out.gains.get((ns, key), 0.0) + gain
        return True
    if kind == "neg" or (kind == "call" and n.op == "abs"):
        return _walk(n.kids[0], derived, gain, out, depth + 1)
    if kind == "arith":
        left, right = n.kids
        if n.op in ("+", "-"):
            return _walk(left, derived, gain, out, depth + 1) and _walk(right, derived, gain, out, depth + 1)
        if n.op == "*":
            if right.is_const and _const_float(right) is not None:
                return _walk(left, derived, gain * abs(_const_float(right)), out, depth + 1)
            if left.is_const and _const_float(left) is not None:
                return _walk(right, derived, gain * abs(_const_float(left)), out, depth + 1)
            return False
        if n.op == "/":
            c = _const_float(right) if right.is_const else None
            if c is None or c == 0:
                return False
            return _walk(left, derived, gain / abs(c), out, depth + 1)
        return False
    if kind == "call" and n.op in ("min", "max"):
        return all(_walk(k, derived, gain, out, depth + 1) for k in n.kids)
    if kind == "call" and n.op == "clip":
        x, lo, hi = n.kids
        if not (lo.is_const and hi.is_const):
            return False
        a, b = _const_float(lo), _const_float(hi)
        if a is None or b is None or a > b:  # lo > hi: clip is not monotone
            return False
        return _walk(x, derived, gain, out, depth + 1)
    if kind == "if":
        cond, a, b = n.kids
        if cond.type.kind != BOOL:
            return False
        out.conds.append(cond)
        return _walk(a, derived, gain, out, depth + 1) and _walk(b, derived, gain, out, depth + 1)
    return False


def compile_bounds(n: Node, derived: dict[str, Node], binding: Binding) -> Callable[[Box], Interval]:
    """``box -> (lo, hi)`` for an expression ``analyse`` accepted. Raises ``Unbounded`` when an
    end is not finite. The branch of an ``if`` is the one its condition takes now (the gate
    keeps that condition's truth)."""
    if n.is_const:
        c = _const_float(n)
        return lambda box: (c, c)
    kind = n.kind
    if kind == "input":
        ns, key = n.lookup
        if ns == "derived":
            return compile_bounds(derived[key], derived, binding)
        k = (ns, key)
        return lambda box: box[k]
    if kind == "neg":
        f = compile_bounds(n.kids[0], derived, binding)

        def neg(box: Box) -> Interval:
            lo, hi = f(box)
            return -hi, -lo

        return neg
    if kind == "call":
        fs = [compile_bounds(k, derived, binding) for k in n.kids]
        return _CALLS[n.op](fs, n)
    if kind == "arith":
        return _arith(n, derived, binding)
    if kind == "if":
        cond = n.kids[0].build(binding)
        fa = compile_bounds(n.kids[1], derived, binding)
        fb = compile_bounds(n.kids[2], derived, binding)
        return lambda box: fa(box) if cond() else fb(box)
    raise ValueError(f"not a bounded expression: {kind!r}")


def _out(lo: float, hi: float) -> Interval:
    """One ulp outwards; unbounded when an end is not finite."""
    lo = math.nextafter(lo, -_INF)
    hi = math.nextafter(hi, _INF)
    if not (-_MAX <= lo and hi <= _MAX):
        raise Unbounded
    return lo, hi


def _arith(n: Node, derived: dict[str, Node], binding: Binding) -> Callable[[Box], Interval]:
    left, right = n.kids
    op = n.op
    if op in ("+", "-"):
        fl = compile_bounds(left, derived, binding)
        fr = compile_bounds(right, derived, binding)
        if op == "+":
            def add(box: Box) -> Interval:
                a, b = fl(box)
                c, d = fr(box)
                return _out(a + c, b + d)
            return add

        def sub(box: Box) -> Interval:
            a, b = fl(box)
            c, d = fr(box)
            return _out(a - d, b - c)
        return sub
    if op == "*":
        x, c = (left, right) if right.is_const else (right, left)
        f = compile_bounds(x, derived, binding)
        k = _const_float(c)
        if k >= 0:
            def mul(box: Box) -> Interval:
                a, b = f(box)
                return _out(a * k, b * k)
            return mul

        def mul_neg(box: Box) -> Interval:
            a, b = f(box)
            return _out(b * k, a * k)
        return mul_neg
    # "/" by a nonzero constant
    f = compile_bounds(left, derived, binding)
    k = _const_float(right)
    if k > 0:
        def div(box: Box) -> Interval:
            a, b = f(box)
            return _out(a / k, b / k)
        return div

    def div_neg(box: Box) -> Interval:
        a, b = f(box)
        return _out(b / k, a / k)
    return div_neg


def _abs(fs: list, n: Node) -> Callable[[Box], Interval]:
    (f,) = fs

    def bound(box: Box) -> Interval:
        lo, hi = f(box)
        if lo >= 0:
            return lo, hi
        if hi <= 0:
            return -hi, -lo
        return 0.0, max(-lo, hi)

    return bound


def _min(fs: list, n: Node) -> Callable[[Box], Interval]:
    def bound(box: Box) -> Interval:
        ends = [f(box) for f in fs]
        return min(e[0] for e in ends), min(e[1] for e in ends)

    return bound


def _max(fs: list, n: Node) -> Callable[[Box], Interval]:
    def bound(box: Box) -> Interval:
        ends = [f(box) for f in fs]
        return max(e[0] for e in ends), max(e[1] for e in ends)

    return bound


def _clip(fs: list, n: Node) -> Callable[[Box], Interval]:
    f = fs[0]
    a, b = _const_float(n.kids[1]), _const_float(n.kids[2])

    def bound(box: Box) -> Interval:
        lo, hi = f(box)
        return (a if lo < a else b if lo > b else lo), (a if hi < a else b if hi > b else hi)

    return bound


_CALLS: dict[str, Callable[[list, Node], Callable[[Box], Interval]]] = {
    "abs": _abs, "min": _min, "max": _max, "clip": _clip}


def value_of(v: Any) -> float | None:
    """An input's value as a finite float for a box, None when it cannot be boxed (NaN,
    infinite, not a number, an integer a float cannot hold exactly)."""
    t = type(v)
    if t is float:
        return v if -_MAX <= v <= _MAX else None
    if t is int and -(1 << 53) <= v <= (1 << 53):
        return float(v)
    return None
