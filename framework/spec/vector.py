"""Numpy versions of compiled expressions, for exact block screening in replay.

Replay evaluates guards over a whole block of events at once to find the events where some
guard is true; only those events then get the per-event evaluation. That is exact only if the
numpy result equals, element by element and bit for bit, what the scalar closure from
``expr.py`` returns for the same inputs. The scalar closures are the reference. Both are built
from the same checked, typed tree (``Expr.root``), in which the checker has already folded
params and constants; this module walks that tree and builds numpy closures that repeat each
operation: the ``_safe_div`` and ``_safe_sqrt`` rules, ``min``/``max`` as Python's builtins
(``b`` replaces ``a`` only if ``b < a``, folded left), ``clip`` and ``in`` lists.

Inputs: one mapping keyed by the names in ``Expr.reads`` (dotted inputs, bare derived names)
plus ``'time_in_state()'``. A value is an array of length n (float64 numbers, bool booleans)
or a scalar; state names are Python strings. The result is an array of length n, or a scalar
when it does not vary over the block (no array input reaches it); callers use
``np.broadcast_to(result, (n,))``. Numbers come out as float64, booleans as bool.

Ints: the scalar engine holds ``metrics.*`` and ``time_in_state()`` as floats, but other
numbers may be Python ints (risk counts, derived values), and ``1 if c else 0`` computes an
int. Their float64 form is exact up to 2**53, taking an int read from an input to be below
``INPUT_INT_BOUND``. What float64 cannot follow is the sign of an
int zero: ``-0`` and ``0 * -3`` are ``0`` for ints but ``-0.0`` for floats. Such a zero never
changes a comparison, so only a numeric result whose zero sign may differ is refused.

NaN signs: which NaN CPython returns for NaN + NaN or NaN * NaN of opposite signs depends on
whether the interpreter has specialized the closure's bytecode yet, so the scalar engine is
not deterministic there. A NaN's sign shows only where ``_safe_div`` divides it by zero
(``copysign(inf, a)``), so such a division is refused; everywhere else NaN equals NaN.

``vectorize`` returns None (the caller evaluates per event) for: ``entries()``; ``log``,
``exp``, ``**`` and ``%`` on non-constants (numpy does not round them like ``math``); ``in``
lists holding NaN (set membership tests identity first); a comparison chained after ``in``;
ints that may exceed 2**53; numeric results whose zero sign may differ; and a division that
may be by zero of a value that may be a NaN of either sign.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .expr import NUM, Expr, Node

EXACT_INT = 2**53
INPUT_INT_BOUND = 2**24  # an int the engine publishes (a count, a 0/1 factor) is below this
FLOAT_INPUTS = ("metrics",)  # namespaces the engine always holds as floats

Fn = Callable[[Mapping[str, Any]], Any]

_CMP = {operator.eq: np.equal, operator.ne: np.not_equal, operator.lt: np.less,
        operator.le: np.less_equal, operator.gt: np.greater, operator.ge: np.greater_equal}


class Unsupported(Exception):
    """The expression uses something this backend does not reproduce exactly."""


@dataclass
class _V:
    """A compiled node: a function of the inputs, and what about its value may differ from the
    scalar closure's."""

    fn: Fn
    ib: float | None = None  # may be a Python int in the scalar engine, of at most this magnitude
    zs: bool = False  # the sign of a zero value may differ from the scalar closure's
    ns: bool = False  # the sign of a NaN value may differ (NaN + NaN, NaN * NaN)


def vectorize(expr: Expr, params: Mapping[str, Any] | None = None) -> Fn | None:
    """A numpy version of ``expr``, or None when the expression uses something this backend does
    not reproduce exactly (then the caller evaluates it per event). ``params`` is accepted for
    callers that pass the values the expression was compiled with; the tree already holds them."""
    try:
        return build(expr, params)
    except Unsupported:
        return None


def build(expr: Expr, params: Mapping[str, Any] | None = None) -> Fn:
    """Like ``vectorize``, but raises Unsupported naming what is not reproduced."""
    if expr.is_const:
        value = float(expr.root.const) if expr.type.kind == NUM else expr.root.const
        return lambda inputs: value
    root = _compile(expr.root)
    if expr.type.kind == NUM and root.zs:
        raise Unsupported("the sign of a zero result may differ (negated or multiplied ints)")
    fn = root.fn

    def run(inputs: Mapping[str, Any]) -> Any:
        with np.errstate(all="ignore"):
            r = fn(inputs)
        return r[()] if isinstance(r, np.ndarray) and r.ndim == 0 else r

    return run


def _compile(n: Node) -> _V:
    if n.is_const:
        return _constant(n.const)
    compile_kind = _KINDS.get(n.kind)
    if compile_kind is None:  # only the operand after an 'in' has no shape (and no closure)
        raise Unsupported("a comparison chained after 'in'")
    return compile_kind(n)


def _checked(v: _V) -> _V:
    if v.ib is not None and v.ib > EXACT_INT:
        raise Unsupported("an int that may exceed 2**53")
    return v


def _constant(c: Any) -> _V:
    """A constant of the tree as a numpy scalar (state names stay Python strings)."""
    if isinstance(c, str):
        return _V(lambda i: c)
    if isinstance(c, bool):
        x = np.bool_(c)
        return _V(lambda i: x)
    x = np.float64(c)
    return _checked(_V(lambda i: x, ib=abs(c) if isinstance(c, int) else None))


def _leaf(key: str, ib: float | None) -> _V:
    def read(inputs: Mapping[str, Any]) -> Any:
        v = inputs[key]
        if isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype in (np.float64, np.bool_)):
            return v
        a = np.asarray(v)
        return a if a.dtype == np.bool_ else a.astype(np.float64)

    return _V(read, ib=ib)


def _input(n: Node) -> _V:
    ns, key = n.lookup
    if ns == "derived":
        return _leaf(key, INPUT_INT_BOUND)
    return _leaf(f"{ns}.{key}", None if ns in FLOAT_INPUTS else INPUT_INT_BOUND)


def _passed_bound(vs: list[_V]) -> float | None:
    """Bound of a result that is one of ``vs`` (if, min, max, clip)."""
    ibs = [v.ib for v in vs if v.ib is not None]
    return max(ibs) if ibs else None


def _may_be_nan(n: Node) -> bool:
    return not n.is_const or (isinstance(n.const, float) and math.isnan(n.const))


def _fold_left(op: Callable[[Any, Any], Any], fns: list[Fn]) -> Fn:
    def fold(i: Mapping[str, Any]) -> Any:
        r = fns[0](i)
        for f in fns[1:]:
            r = op(r, f(i))
        return r

    return fold


def _not(n: Node) -> _V:
    f = _compile(n.kids[0]).fn
    return _V(lambda i: np.logical_not(f(i)))


def _neg(n: Node) -> _V:
    v = _compile(n.kids[0])
    f = v.fn
    return _V(lambda i: np.negative(f(i)), ib=v.ib, zs=v.zs or v.ib is not None, ns=v.ns)


def _and(n: Node) -> _V:
    return _V(_fold_left(np.logical_and, [_compile(k).fn for k in n.kids]))


def _or(n: Node) -> _V:
    return _V(_fold_left(np.logical_or, [_compile(k).fn for k in n.kids]))


def _div(x: Any, y: Any) -> Any:
    return np.where(y == 0, np.where(x == 0, np.nan, np.copysign(np.inf, x)), np.divide(x, y))


def _arith(n: Node) -> _V:
    symbol, (left, right) = n.op, n.kids
    a, b = _compile(left), _compile(right)
    if symbol in ("**", "%"):
        raise Unsupported(f"'{symbol}' on a non-constant")
    fa, fb = a.fn, b.fn
    if symbol == "/":  # the sign of a zero divisor never matters (_safe_div); a zero dividend's stays
        if right.is_const and right.const != 0:
            return _V(lambda i: np.divide(fa(i), fb(i)), zs=a.zs, ns=a.ns or b.ns)
        if a.ns:
            raise Unsupported("a division by a possible zero of a NaN whose sign may differ")
        return _V(lambda i: _div(fa(i), fb(i)), zs=a.zs, ns=b.ns)
    ufunc = {"+": np.add, "-": np.subtract, "*": np.multiply}[symbol]
    # an int only when both operands are ints
    ib = None if a.ib is None or b.ib is None else a.ib * b.ib if symbol == "*" else a.ib + b.ib
    zs = a.zs or b.zs or (symbol == "*" and ib is not None)
    ns = a.ns or b.ns or (symbol != "-" and _may_be_nan(left) and _may_be_nan(right))
    return _checked(_V(lambda i: ufunc(fa(i), fb(i)), ib=ib, zs=zs, ns=ns))


def _cmp(n: Node) -> _V:
    cmp = _CMP[n.op]
    fl, fr = (_compile(k).fn for k in n.kids)
    return _V(lambda i: cmp(fl(i), fr(i)))


def _in(n: Node) -> _V:
    values, negate = n.op
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        raise Unsupported("NaN in an 'in' list")
    fx = _compile(n.kids[0]).fn
    items = [_constant(c).fn({}) for c in values]

    def member(i: Mapping[str, Any]) -> Any:
        x = fx(i)
        if isinstance(x, str):
            r = x in values
        else:
            r = np.zeros(np.shape(x), dtype=bool)
            for c in items:
                r = np.logical_or(r, np.equal(x, c))
        return np.logical_not(r) if negate else r

    return _V(member)


def _if(n: Node) -> _V:
    cond, a, b = (_compile(k) for k in n.kids)
    fc, fa, fb = cond.fn, a.fn, b.fn
    return _V(lambda i: np.where(fc(i), fa(i), fb(i)), ib=_passed_bound([a, b]), zs=a.zs or b.zs,
              ns=a.ns or b.ns)


def _call(n: Node) -> _V:
    name = n.op
    args = [_compile(k) for k in n.kids]
    if name in ("log", "exp"):
        raise Unsupported(f"{name}() on a non-constant")
    fns, zs, ns = [a.fn for a in args], any(a.zs for a in args), any(a.ns for a in args)
    if name in ("min", "max"):
        # Python's min/max: a later argument replaces the current one only if strictly better
        better = np.less if name == "min" else np.greater
        return _V(_fold_left(lambda r, y: np.where(better(y, r), y, r), fns), ib=_passed_bound(args),
                  zs=zs, ns=ns)
    if name == "abs":
        f = fns[0]
        return _V(lambda i: np.abs(f(i)), ib=args[0].ib)
    if name == "sqrt":
        f = fns[0]

        def sqrt(i: Mapping[str, Any]) -> Any:
            x = f(i)
            return np.where(np.greater_equal(x, 0), np.sqrt(x), np.nan)

        return _V(sqrt, zs=zs)
    fx, flo, fhi = fns  # clip

    def clip(i: Mapping[str, Any]) -> Any:
        x, lo, hi = fx(i), flo(i), fhi(i)
        return np.where(np.less(x, lo), lo, np.where(np.greater(x, hi), hi, x))

    return _V(clip, ib=_passed_bound(args), zs=zs, ns=ns)


def _entries(n: Node) -> _V:
    raise Unsupported("entries()")


_KINDS: dict[str, Callable[[Node], _V]] = {
    "input": _input, "clock": lambda n: _leaf("time_in_state()", None), "not": _not, "neg": _neg,
    "and": _and, "or": _or, "arith": _arith, "cmp": _cmp, "in": _in, "if": _if, "call": _call,
    "entries": _entries,
}
