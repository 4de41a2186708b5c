"""Numpy versions of compiled expressions, for exact block screening in replay.

Replay evaluates guards over a whole block of events at once to find the events where some
guard is true; only those events then get the per-event evaluation. That is exact only if the
numpy result equals, element by element and bit for bit, what the scalar closure from
``expr.py`` returns for the same inputs. The scalar closures are the reference. This module
re-parses an expression's (already checked) text, folds constants exactly as the checker does
(with the same Python functions), and builds a tree of numpy closures that repeat each
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

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .expr import _BINOPS, _CMPOPS, FUNCTIONS, NUM, Expr

EXACT_INT = 2**53
INPUT_INT_BOUND = 2**24  # an int the engine publishes (a count, a 0/1 factor) is below this
FLOAT_INPUTS = ("metrics",)  # namespaces the engine always holds as floats

Fn = Callable[[Mapping[str, Any]], Any]

_CMP = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
        ast.Gt: np.greater, ast.GtE: np.greater_equal}


class Unsupported(Exception):
    """The expression uses something this backend does not reproduce exactly."""


@dataclass
class _V:
    """A compiled sub-expression: a constant (``fn`` is None) or a function of the inputs."""

    const: Any = None
    fn: Fn | None = None
    ib: float | None = None  # may be a Python int in the scalar engine, of at most this magnitude
    zs: bool = False  # the sign of a zero value may differ from the scalar closure's
    ns: bool = False  # the sign of a NaN value may differ (NaN + NaN, NaN * NaN)


def vectorize(expr: Expr, params: Mapping[str, Any]) -> Fn | None:
    """A numpy version of ``expr``, or None when the expression uses something this backend does
    not reproduce exactly (then the caller evaluates it per event). ``params`` maps param name
    to value, as the expression was compiled with (``{k: p.value for k, p in spec.params.items()}``)."""
    try:
        return build(expr, params)
    except Unsupported:
        return None


def build(expr: Expr, params: Mapping[str, Any]) -> Fn:
    """Like ``vectorize``, but raises Unsupported naming what is not reproduced."""
    if expr.is_const:
        root = _V(const=expr.root.const)
    else:
        root = _Compiler(params).visit(ast.parse(expr.text, mode="eval").body)
    if root.fn is None:
        value = float(root.const) if expr.type.kind == NUM else root.const
        return lambda inputs: value
    if expr.type.kind == NUM and root.zs:
        raise Unsupported("the sign of a zero result may differ (negated or multiplied ints)")
    fn = root.fn

    def run(inputs: Mapping[str, Any]) -> Any:
        with np.errstate(all="ignore"):
            r = fn(inputs)
        return r[()] if isinstance(r, np.ndarray) and r.ndim == 0 else r

    return run


def _checked(v: _V) -> _V:
    if v.ib is not None and v.ib > EXACT_INT:
        raise Unsupported("an int that may exceed 2**53")
    return v


def _operand(v: _V) -> _V:
    """``v`` as a function of the inputs; a constant becomes a numpy scalar."""
    if v.fn is not None:
        return v
    c = v.const
    if isinstance(c, str):
        return _V(fn=lambda i: c)
    if isinstance(c, bool):
        x = np.bool_(c)
        return _V(fn=lambda i: x)
    x = np.float64(c)
    return _checked(_V(fn=lambda i: x, ib=abs(c) if isinstance(c, int) else None))


def _fold(value: Any) -> _V:
    """A constant, as the checker keeps it."""
    return _V(const=float(value) if isinstance(value, float) else value)


def _leaf(key: str, ib: float | None) -> _V:
    def read(inputs: Mapping[str, Any]) -> Any:
        v = inputs[key]
        if isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype in (np.float64, np.bool_)):
            return v
        a = np.asarray(v)
        return a if a.dtype == np.bool_ else a.astype(np.float64)

    return _V(fn=read, ib=ib)


def _int_bound(vs: list[_V], combine: Callable[[float, float], float]) -> float | None:
    """Bound of an int result of +, - or *: an int only when every operand is one."""
    if any(v.ib is None for v in vs):
        return None
    out = vs[0].ib
    for v in vs[1:]:
        out = combine(out, v.ib)
    return out


def _passed_bound(vs: list[_V]) -> float | None:
    """Bound of a result that is one of ``vs`` (if, min, max, clip)."""
    ibs = [v.ib for v in vs if v.ib is not None]
    return max(ibs) if ibs else None


def _may_be_nan(v: _V) -> bool:
    return v.fn is not None or (isinstance(v.const, float) and math.isnan(v.const))


def _div(x: Any, y: Any) -> Any:
    return np.where(y == 0, np.where(x == 0, np.nan, np.copysign(np.inf, x)), np.divide(x, y))


def _pick(better: Callable[[Any, Any], Any], fns: list[Fn]) -> Fn:
    """Python's min/max: a later argument replaces the current one only if strictly better."""

    def pick(i: Mapping[str, Any]) -> Any:
        r = fns[0](i)
        for f in fns[1:]:
            y = f(i)
            r = np.where(better(y, r), y, r)
        return r

    return pick


class _Compiler:
    def __init__(self, params: Mapping[str, Any]):
        self.params = params

    def visit(self, node: ast.AST) -> _V:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise Unsupported(type(node).__name__)
        return method(node)

    def attempt(self, node: ast.AST) -> _V | Unsupported:
        """A part the checker may fold away: its failure counts only if it is used."""
        try:
            return self.visit(node)
        except Unsupported as exc:
            return exc

    def visit_Constant(self, node: ast.Constant) -> _V:
        return _fold(node.value)

    def visit_Name(self, node: ast.Name) -> _V:
        if node.id in ("true", "True", "false", "False"):
            return _V(const=node.id in ("true", "True"))
        return _leaf(node.id, INPUT_INT_BOUND)  # a derived value

    def visit_Attribute(self, node: ast.Attribute) -> _V:
        ns = node.value.id
        if ns == "params":
            value = self.params[node.attr]
            return _V(const=value) if isinstance(value, str) else _fold(value)
        return _leaf(f"{ns}.{node.attr}", None if ns in FLOAT_INPUTS else INPUT_INT_BOUND)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _V:
        v = self.visit(node.operand)
        if isinstance(node.op, ast.UAdd):
            return v
        is_not = isinstance(node.op, ast.Not)
        if v.fn is None:
            return _V(const=(not v.const) if is_not else -v.const)
        f = v.fn
        if is_not:
            return _V(fn=lambda i: np.logical_not(f(i)))
        return _V(fn=lambda i: np.negative(f(i)), ib=v.ib, zs=v.zs or v.ib is not None, ns=v.ns)

    def visit_BoolOp(self, node: ast.BoolOp) -> _V:
        is_and = isinstance(node.op, ast.And)
        dynamic = []
        for value in node.values:
            p = self.attempt(value)
            if isinstance(p, _V) and p.fn is None:
                if bool(p.const) != is_and:  # false in 'and' / true in 'or' decides it
                    return _V(const=not is_and)
                continue
            dynamic.append(p)
        for p in dynamic:
            if isinstance(p, Unsupported):
                raise p
        if not dynamic:
            return _V(const=is_and)
        if len(dynamic) == 1:
            return dynamic[0]
        fns = [p.fn for p in dynamic]
        op = np.logical_and if is_and else np.logical_or

        def both(i: Mapping[str, Any]) -> Any:
            r = fns[0](i)
            for f in fns[1:]:
                r = op(r, f(i))
            return r

        return _V(fn=both)

    def visit_BinOp(self, node: ast.BinOp) -> _V:
        a, b = self.visit(node.left), self.visit(node.right)
        symbol, fn = _BINOPS[type(node.op)]
        if a.fn is None and b.fn is None:
            return _fold(fn(a.const, b.const))
        if symbol in ("**", "%"):
            raise Unsupported(f"'{symbol}' on a non-constant")
        const_divisor = b.fn is None and b.const != 0
        two_nans = _may_be_nan(a) and _may_be_nan(b)
        a, b = _operand(a), _operand(b)
        fa, fb, zs, ns = a.fn, b.fn, a.zs or b.zs, a.ns or b.ns
        if symbol == "+":
            ib = _int_bound([a, b], lambda x, y: x + y)
            return _checked(_V(fn=lambda i: np.add(fa(i), fb(i)), ib=ib, zs=zs, ns=ns or two_nans))
        if symbol == "-":
            ib = _int_bound([a, b], lambda x, y: x + y)
            return _checked(_V(fn=lambda i: np.subtract(fa(i), fb(i)), ib=ib, zs=zs, ns=ns))
        if symbol == "*":
            ib = _int_bound([a, b], lambda x, y: x * y)
            return _checked(_V(fn=lambda i: np.multiply(fa(i), fb(i)), ib=ib, zs=zs or ib is not None, ns=ns or two_nans))
        # '/': the sign of a zero divisor never matters (_safe_div); a zero dividend's stays one
        if const_divisor:
            return _V(fn=lambda i: np.divide(fa(i), fb(i)), zs=a.zs, ns=ns)
        if a.ns:
            raise Unsupported("a division by a possible zero of a NaN whose sign may differ")
        return _V(fn=lambda i: _div(fa(i), fb(i)), zs=a.zs, ns=b.ns)

    def visit_Compare(self, node: ast.Compare) -> _V:
        ops = node.ops
        if any(isinstance(op, (ast.In, ast.NotIn)) for op in ops[:-1]):
            raise Unsupported("a comparison chained after 'in'")
        operands = [self.attempt(x) for x in (node.left, *node.comparators)]
        steps, folded_all, folded_value = [], True, True
        for k, op in enumerate(ops):
            left, right = operands[k], operands[k + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                values = [self.visit(e).const for e in node.comparators[k].elts]
                if any(isinstance(v, float) and math.isnan(v) for v in values):
                    raise Unsupported("NaN in an 'in' list")
                negate = isinstance(op, ast.NotIn)
                if isinstance(left, _V) and left.fn is None:
                    folded_value = folded_value and ((left.const in frozenset(values)) != negate)
                    continue
                steps.append(("in", left, values, negate))
            else:
                if isinstance(left, _V) and isinstance(right, _V) and left.fn is None and right.fn is None:
                    folded_value = folded_value and _CMPOPS[type(op)](left.const, right.const)
                    continue
                steps.append(("cmp", left, right, type(op)))
            folded_all = False
        if folded_all or not folded_value:
            return _V(const=bool(folded_value) if folded_all else False)
        fns = [self._step(*s) for s in steps]
        if len(fns) == 1:
            return _V(fn=fns[0])

        def chain(i: Mapping[str, Any]) -> Any:
            r = fns[0](i)
            for f in fns[1:]:
                r = np.logical_and(r, f(i))
            return r

        return _V(fn=chain)

    @staticmethod
    def _step(kind: str, left: Any, right: Any, extra: Any) -> Fn:
        for v in (left, right):
            if isinstance(v, Unsupported):
                raise v
        fl = _operand(left).fn
        if kind == "cmp":
            cmp, fr = _CMP[extra], _operand(right).fn
            return lambda i: cmp(fl(i), fr(i))
        items, negate = [_operand(_V(const=c)).fn({}) for c in right], extra
        members = frozenset(right)

        def member(i: Mapping[str, Any]) -> Any:
            x = fl(i)
            if isinstance(x, str):
                r = x in members
            else:
                r = np.zeros(np.shape(x), dtype=bool)
                for c in items:
                    r = np.logical_or(r, np.equal(x, c))
            return np.logical_not(r) if negate else r

        return member

    def visit_IfExp(self, node: ast.IfExp) -> _V:
        cond = self.visit(node.test)
        if cond.fn is None:
            return self.visit(node.body if cond.const else node.orelse)
        a, b = _operand(self.visit(node.body)), _operand(self.visit(node.orelse))
        fc, fa, fb = cond.fn, a.fn, b.fn
        return _V(fn=lambda i: np.where(fc(i), fa(i), fb(i)), ib=_passed_bound([a, b]), zs=a.zs or b.zs,
                  ns=a.ns or b.ns)

    def visit_Call(self, node: ast.Call) -> _V:
        name = node.func.id
        if name == "time_in_state":
            return _leaf("time_in_state()", None)
        if name == "entries":
            raise Unsupported("entries()")
        args = [self.visit(a) for a in node.args]
        if all(a.fn is None for a in args):
            return _fold(FUNCTIONS[name][2](*[a.const for a in args]))
        if name in ("log", "exp"):
            raise Unsupported(f"{name}() on a non-constant")
        args = [_operand(a) for a in args]
        fns, zs, ns = [a.fn for a in args], any(a.zs for a in args), any(a.ns for a in args)
        if name in ("min", "max"):
            better = np.less if name == "min" else np.greater
            return _V(fn=_pick(better, fns), ib=_passed_bound(args), zs=zs, ns=ns)
        if name == "abs":
            f = fns[0]
            return _V(fn=lambda i: np.abs(f(i)), ib=args[0].ib)
        if name == "sqrt":
            f = fns[0]

            def sqrt(i: Mapping[str, Any]) -> Any:
                x = f(i)
                return np.where(np.greater_equal(x, 0), np.sqrt(x), np.nan)

            return _V(fn=sqrt, zs=zs)
        fx, flo, fhi = fns  # clip

        def clip(i: Mapping[str, Any]) -> Any:
            x, lo, hi = fx(i), flo(i), fhi(i)
            return np.where(np.less(x, lo), lo, np.where(np.greater(x, hi), hi, x))

        return _V(fn=clip, ib=_passed_bound(args), zs=zs, ns=ns)
