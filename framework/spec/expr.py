"""The expression language of guards, timers, derived values and decision rules.

Text from a config is parsed with Python's ``ast`` parser (syntax only), every node is checked
against a whitelist and typed, parameters are folded in as constants, and the result is
compiled once into a tree of small Python closures. Nothing from a config is ever passed to
``eval`` or ``exec``.

Language:
  numbers, 'strings', true/false, comparisons (== != < <= > >=, chained), and/or/not,
  ``in`` / ``not in`` a literal list, + - * / % **, unary -, ``a if cond else b``,
  dotted names of declared inputs (``metrics.spread_bps``, ``regime.state``,
  ``params.cooldown_s``, ``risk.kill_switch``), bare names of derived values, and calls of
  whitelisted functions: min max abs clip log exp sqrt, and for timers
  time_in_state() and entries('STATE', window_s).

Types are checked at load time: ``num``, ``bool``, and ``str`` (state names, with the set of
allowed values when known, so ``regime.state == 'UNSTALBE'`` is an error at its line).
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NUM, BOOL, STR = "num", "bool", "str"

MAX_POW_EXPONENT = 64  # a constant exponent above this is refused (9**9**9 burns CPU/memory)
MAX_CONST_MAGNITUDE = 1e300
MAX_EXPR_LENGTH = 2000
MAX_EXPR_DEPTH = 40
MAX_TIMER_S = 1e9  # about 31 years: a timer or window in nanoseconds stays far inside int64


class ExprError(Exception):
    """An error in one expression, with the column offset inside the expression text."""

    def __init__(self, message: str, col: int = 0):
        super().__init__(message)
        self.message = message
        self.col = col


@dataclass(frozen=True)
class InputType:
    """The static type of a readable input; ``values`` lists the allowed strings for a state."""

    kind: str
    values: frozenset[str] | None = None


@dataclass
class Env:
    """What an expression may read: typed inputs by dotted name, params with their values,
    derived names with their types, and which timer functions are available."""

    inputs: dict[str, InputType] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    derived: dict[str, InputType] = field(default_factory=dict)
    states: frozenset[str] | None = None  # this machine's states, for entries()
    timers: bool = False  # time_in_state() and entries() allowed

    def namespaces(self) -> set[str]:
        return {name.split(".", 1)[0] for name in self.inputs} | {"params"}


# Whitelisted functions: name -> (min args, max args or None, python implementation)
def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _safe_log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _safe_exp(x: float) -> float:
    return math.exp(x) if x < 709 else math.inf


def _safe_sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., float]]] = {
    "min": (2, None, min),
    "max": (2, None, max),
    "abs": (1, 1, abs),
    "clip": (3, 3, _clip),
    "log": (1, 1, _safe_log),
    "exp": (1, 1, _safe_exp),
    "sqrt": (1, 1, _safe_sqrt),
}
TIMER_FUNCTIONS = ("time_in_state", "entries")


def _safe_pow(a: float, b: float) -> float:
    try:
        return float(a) ** b
    except OverflowError:
        return math.inf
    except ZeroDivisionError:
        return math.inf


def _safe_div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


def _safe_mod(a: float, b: float) -> float:
    return math.nan if b == 0 else a % b


_BINOPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", _safe_div),
    ast.Mod: ("%", _safe_mod),
    ast.Pow: ("**", _safe_pow),
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_REFUSED: dict[type, str] = {
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.Starred: "* unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
}


@dataclass
class Node:
    """A checked, typed expression node. ``build`` makes its closure once bound."""

    type: InputType
    const: Any = None  # set when the value is known at load time
    is_const: bool = False
    build: Callable[[Binding], Callable[[], Any]] | None = None
    # for the common shape "input <op> constant" the parent can fuse the lookup:
    lookup: tuple[str, str] | None = None  # (namespace, key)
    # set on "input <op> constant" comparisons, so 'not' can fuse with them too:
    fused: tuple[Callable[[Any, Any], bool], tuple[str, str], Any] | None = None
    # The tree's shape, for what needs more than the closure (machines/gate.py, the numpy
    # backend spec/vector.py): "input" (see lookup), "not", "and", "or", "cmp" (op: the
    # comparison), "in" (op: (values, negate)), "arith" (op: the symbol), "neg", "call" (op: the
    # name), "if" (kids: cond, a, b), "clock" (time_in_state()), "entries"; "" for constants
    # and for the operand after an 'in' in a chained comparison (which has no closure).
    kind: str = ""
    kids: tuple[Node, ...] = ()
    op: Any = None


@dataclass
class Binding:
    """What a compiled expression is bound to at run time."""

    namespaces: dict[str, dict[str, Any]]
    time_in_state: Callable[[], float] | None = None
    entries: Callable[[str, float], int] | None = None


@dataclass
class Expr:
    """A checked expression: its text, type, the inputs and params it reads."""

    text: str
    type: InputType
    root: Node
    reads: tuple[str, ...]  # dotted input names and derived names, in first-use order
    params: tuple[str, ...]
    entries_windows: tuple[tuple[str, float], ...]
    reads_clock: bool = False  # calls time_in_state()

    @property
    def is_const(self) -> bool:
        return self.root.is_const

    def bind(self, binding: Binding) -> Callable[[], Any]:
        """A zero-argument function computing the expression against ``binding``."""
        if self.root.is_const:
            value = self.root.const
            return lambda: value
        return self.root.build(binding)


def compile_expr(text: Any, env: Env) -> Expr:
    """Parse, check and type an expression. Raises ExprError with a column offset."""
    if isinstance(text, bool):
        text = "true" if text else "false"
    elif isinstance(text, (int, float)):
        text = repr(text)
    if not isinstance(text, str):
        raise ExprError(f"expected an expression (text or number), got {type(text).__name__}")
    if len(text) > MAX_EXPR_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long; expected at most {MAX_EXPR_LENGTH}")
    source = text.strip()
    if not source:
        raise ExprError("empty expression; expected an expression")
    _refuse_non_ascii(source)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error ({exc.msg}); expected an expression", max((exc.offset or 1) - 1, 0)) from None
    checker = _Checker(env, source)
    root = checker.visit(tree.body, 0)
    return Expr(
        text=source,
        type=root.type,
        root=root,
        reads=tuple(dict.fromkeys(checker.reads)),
        params=tuple(dict.fromkeys(checker.params)),
        entries_windows=tuple(checker.entries_windows),
        reads_clock=checker.reads_clock,
    )


def _refuse_non_ascii(source: str) -> None:
    """Python's parser NFKC-normalises names (a full-width 'ｍetrics' reads as 'metrics'), so
    the text in a log could differ from what runs; the language is ASCII only."""
    for i, ch in enumerate(source):
        if ord(ch) > 127:
            raise ExprError(f"character {ch!r} (U+{ord(ch):04X}) is not ASCII; expected ASCII names, "
                            "numbers and operators only", i)


def _describe(t: InputType) -> str:
    if t.kind == STR and t.values:
        return "a state name (" + ", ".join(sorted(t.values)) + ")"
    return {NUM: "a number", BOOL: "a boolean", STR: "a string"}[t.kind]


class _Checker:
    def __init__(self, env: Env, source: str):
        self.env = env
        self.source = source
        self.reads: list[str] = []
        self.params: list[str] = []
        self.entries_windows: list[tuple[str, float]] = []
        self.reads_clock = False

    # -- helpers -------------------------------------------------------------------------
    def fail(self, node: ast.AST, message: str) -> ExprError:
        return ExprError(message, getattr(node, "col_offset", 0))

    def const(self, value: Any, node: ast.AST) -> Node:
        if isinstance(value, bool):
            return Node(InputType(BOOL), const=value, is_const=True)
        if isinstance(value, (int, float)):
            if isinstance(value, float) and math.isnan(value):
                return Node(InputType(NUM), const=value, is_const=True)
            if abs(value) > MAX_CONST_MAGNITUDE:
                raise self.fail(node, f"constant {value!r} is too large; expected a magnitude below 1e300")
            return Node(InputType(NUM), const=float(value) if isinstance(value, float) else value, is_const=True)
        if isinstance(value, str):
            return Node(InputType(STR), const=value, is_const=True)
        raise self.fail(node, f"constant {value!r} is not allowed; expected a number, a string or true/false")

    def expect(self, node: ast.AST, got: Node, kind: str, what: str) -> None:
        if got.type.kind != kind:
            raise self.fail(node, f"{what} is {_describe(got.type)}; expected {_describe(InputType(kind))}")

    # -- dispatch ------------------------------------------------------------------------
    def visit(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_EXPR_DEPTH:
            raise self.fail(node, f"expression nests deeper than {MAX_EXPR_DEPTH}; expected a simpler expression")
        for kind, message in _REFUSED.items():
            if isinstance(node, kind):
                raise self.fail(node, f"{message}; expected names, numbers, operators and whitelisted calls")
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.fail(node, f"'{type(node).__name__}' is not part of the expression language; "
                                  "expected names, numbers, operators and whitelisted calls")
        return method(node, depth + 1)

    def visit_Constant(self, node: ast.Constant, depth: int) -> Node:
        return self.const(node.value, node)

    def visit_Name(self, node: ast.Name, depth: int) -> Node:
        name = node.id
        if name.startswith("_"):
            raise self.fail(node, f"name '{name}' is not allowed (leading underscore); expected a declared input")
        if name in ("true", "True"):
            return self.const(True, node)
        if name in ("false", "False"):
            return self.const(False, node)
        if name in self.env.derived:
            self.reads.append(name)
            return self._lookup("derived", name, self.env.derived[name])
        if name in self.env.namespaces():
            raise self.fail(node, f"'{name}' is a namespace; expected a dotted name such as {name}.something")
        known = ", ".join(sorted(self.env.derived)) or "none declared"
        raise self.fail(node, f"unknown name '{name}'; expected a dotted input (metrics.X, params.X, ...) or a derived name ({known})")

    def visit_Attribute(self, node: ast.Attribute, depth: int) -> Node:
        if not isinstance(node.value, ast.Name):
            raise self.fail(node, "attribute access is only allowed on a declared namespace; expected namespace.name")
        ns, key = node.value.id, node.attr
        if ns.startswith("_") or key.startswith("_"):
            raise self.fail(node, f"'{ns}.{key}' is not allowed (underscore names); expected a declared input")
        dotted = f"{ns}.{key}"
        if ns == "params":
            if key not in self.env.params:
                known = ", ".join(sorted(self.env.params)) or "none declared"
                raise self.fail(node, f"param '{key}' is not declared; expected one of: {known}")
            self.params.append(key)
            value = self.env.params[key]
            if isinstance(value, str):
                return Node(InputType(STR), const=value, is_const=True)
            return self.const(value, node)
        if dotted in self.env.inputs:
            self.reads.append(dotted)
            return self._lookup(ns, key, self.env.inputs[dotted])
        if ns in self.env.namespaces():
            known = sorted(n.split(".", 1)[1] for n in self.env.inputs if n.startswith(ns + "."))
            close = difflib.get_close_matches(key, known, n=1)
            if close:
                raise self.fail(node, f"unknown input '{dotted}'; expected {ns}.{close[0]}? (or another of {len(known)} inputs of {ns})")
            hint = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
            raise self.fail(node, f"unknown input '{dotted}'; expected one of {ns}.{{{hint}}}")
        spaces = ", ".join(sorted(self.env.namespaces()))
        raise self.fail(node, f"unknown namespace '{ns}'; expected one of: {spaces} (declare upstream machines in reads:)")

    def _lookup(self, ns: str, key: str, t: InputType) -> Node:
        def build(b: Binding) -> Callable[[], Any]:
            d = b.namespaces[ns]
            return lambda: d[key]

        return Node(t, build=build, lookup=(ns, key), kind="input")

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        operand = self.visit(node.operand, depth)
        if isinstance(node.op, ast.Not):
            self.expect(node.operand, operand, BOOL, "the operand of 'not'")
            if operand.is_const:
                return self.const(not operand.const, node)
            if operand.fused is not None:
                fn, (ns, key), c = operand.fused
                return Node(InputType(BOOL), build=lambda b: _NOT_CMP_LC[fn](b.namespaces[ns], key, c),
                            kind="not", kids=(operand,))
            f_build = operand.build
            return Node(InputType(BOOL), build=lambda b: (lambda f: (lambda: not f()))(f_build(b)),
                        kind="not", kids=(operand,))
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            self.expect(node.operand, operand, NUM, "the operand of unary minus")
            if isinstance(node.op, ast.UAdd):
                return operand
            if operand.is_const:
                return self.const(-operand.const, node)
            f_build = operand.build
            return Node(InputType(NUM), build=lambda b: (lambda f: (lambda: -f()))(f_build(b)),
                        kind="neg", kids=(operand,))
        raise self.fail(node, "operator not allowed; expected not, - or +")

    def visit_BoolOp(self, node: ast.BoolOp, depth: int) -> Node:
        parts = [self.visit(v, depth) for v in node.values]
        for v, p in zip(node.values, parts, strict=True):
            self.expect(v, p, BOOL, "each side of 'and'/'or'")
        is_and = isinstance(node.op, ast.And)
        # Fold constants: 'x and true' -> x, 'x and false' -> false.
        dynamic = []
        for p in parts:
            if p.is_const:
                if bool(p.const) != is_and:  # false in 'and' / true in 'or' decides it
                    return self.const(not is_and, node)
                continue
            dynamic.append(p)
        if not dynamic:
            return self.const(is_and, node)
        if len(dynamic) == 1:
            return dynamic[0]

        def build(b: Binding) -> Callable[[], bool]:
            return _chain([p.build(b) for p in dynamic], is_and)

        return Node(InputType(BOOL), build=build, kind="and" if is_and else "or", kids=tuple(dynamic))

    def visit_BinOp(self, node: ast.BinOp, depth: int) -> Node:
        if type(node.op) not in _BINOPS:
            raise self.fail(node, "operator not allowed; expected + - * / % **")
        symbol, fn = _BINOPS[type(node.op)]
        left = self.visit(node.left, depth)
        right = self.visit(node.right, depth)
        self.expect(node.left, left, NUM, f"the left side of '{symbol}'")
        self.expect(node.right, right, NUM, f"the right side of '{symbol}'")
        if symbol == "**" and right.is_const and abs(right.const) > MAX_POW_EXPONENT:
            raise self.fail(node, f"exponent {right.const!r} is too large; expected at most {MAX_POW_EXPONENT}")
        if left.is_const and right.is_const:
            value = fn(left.const, right.const)
            return self.const(value, node)
        native = _NATIVE_BINOPS.get(symbol) if symbol != "/" else None
        if symbol == "/" and right.is_const and right.const != 0:
            native = _NATIVE_BINOPS["/"]  # a nonzero constant divisor needs no zero check
        if native is not None:
            return Node(InputType(NUM), build=lambda b: native(_operand(left, b), _operand(right, b)),
                        kind="arith", kids=(left, right), op=symbol)
        lb = self._value_builder(left)
        rb = self._value_builder(right)
        return Node(InputType(NUM), build=lambda b: (lambda x, y: (lambda: fn(x(), y())))(lb(b), rb(b)),
                    kind="arith", kids=(left, right), op=symbol)

    @staticmethod
    def _value_builder(n: Node) -> Callable[[Binding], Callable[[], Any]]:
        if n.is_const:
            v = n.const
            return lambda b: (lambda: v)
        return n.build

    def visit_Compare(self, node: ast.Compare, depth: int) -> Node:
        operands = [node.left, *node.comparators]
        nodes = [self.visit(node.left, depth)]
        steps = []
        for op, right_ast in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                steps.append(self._membership(op, nodes[-1], right_ast, operands[len(steps)], depth))
                nodes.append(Node(InputType(STR)))  # a chained compare after 'in' makes no sense
                continue
            if type(op) not in _CMPOPS:
                raise self.fail(node, "comparison not allowed; expected == != < <= > >= in")
            right = self.visit(right_ast, depth)
            self._check_comparable(node, nodes[-1], right, op)
            steps.append((_CMPOPS[type(op)], nodes[-1], right))
            nodes.append(right)
        return self._combine_compare(node, steps)

    def _check_comparable(self, node: ast.AST, left: Node, right: Node, op: ast.cmpop) -> None:
        lk, rk = left.type.kind, right.type.kind
        if lk != rk:
            raise self.fail(node, f"cannot compare {_describe(left.type)} with {_describe(right.type)}; expected both sides of the same type")
        if lk in (STR, BOOL) and not isinstance(op, (ast.Eq, ast.NotEq)):
            raise self.fail(node, f"{_describe(left.type)} can only be compared with == or !=; expected an equality test")
        if lk == STR:
            for a, b in ((left, right), (right, left)):
                if a.type.values and b.is_const and b.const not in a.type.values:
                    raise self.fail(node, f"'{b.const}' is not one of its states; expected one of: {', '.join(sorted(a.type.values))}")

    def _membership(self, op: ast.cmpop, left: Node, right_ast: ast.AST, left_ast: ast.AST, depth: int):
        if not isinstance(right_ast, (ast.List, ast.Tuple)):
            raise self.fail(right_ast, "'in' needs a literal list on its right; expected ['A', 'B']")
        items = [self.visit(e, depth) for e in right_ast.elts]
        values = []
        for e, item in zip(right_ast.elts, items, strict=True):
            if not item.is_const:
                raise self.fail(e, "items of an 'in' list must be constants; expected literals")
            self._check_comparable(right_ast, left, item, ast.Eq())
            values.append(item.const)
        frozen = frozenset(values)
        negate = isinstance(op, ast.NotIn)
        return ("in", negate, left, frozen)

    def _combine_compare(self, node: ast.AST, steps: list) -> Node:
        builders = []
        shapes = []  # the steps left after folding, as tree nodes
        folded_all = True
        folded_value = True
        for step in steps:
            if step[0] == "in":
                _, negate, left, values = step
                if left.is_const:
                    folded_value = folded_value and ((left.const in values) != negate)
                    continue
                folded_all = False
                builders.append(self._in_builder(left, values, negate))
                shapes.append(Node(InputType(BOOL), kind="in", kids=(left,), op=(values, negate)))
            else:
                fn, left, right = step
                if left.is_const and right.is_const:
                    folded_value = folded_value and fn(left.const, right.const)
                    continue
                folded_all = False
                builders.append(self._cmp_builder(fn, left, right))
                shapes.append(Node(InputType(BOOL), kind="cmp", kids=(left, right), op=fn))
        if folded_all or not folded_value:
            return self.const(bool(folded_value) if folded_all else False, node)
        if len(builders) == 1:
            fused = None
            if len(steps) == 1 and steps[0][0] != "in":
                fn, left, right = steps[0]
                if left.lookup and right.is_const:
                    fused = (fn, left.lookup, right.const)
            return Node(InputType(BOOL), build=builders[0], fused=fused, kind=shapes[0].kind,
                        kids=shapes[0].kids, op=shapes[0].op)

        def build(b: Binding) -> Callable[[], bool]:
            return _chain([bb(b) for bb in builders], True)

        for shape, bb in zip(shapes, builders, strict=True):
            shape.build = bb
        return Node(InputType(BOOL), build=build, kind="and", kids=tuple(shapes))

    @staticmethod
    def _in_builder(left: Node, values: frozenset, negate: bool):
        def build(b: Binding) -> Callable[[], bool]:
            if left.lookup:
                d, k = b.namespaces[left.lookup[0]], left.lookup[1]
                return (lambda: d[k] not in values) if negate else (lambda: d[k] in values)
            f = left.build(b)
            return (lambda: f() not in values) if negate else (lambda: f() in values)

        return build

    @staticmethod
    def _cmp_builder(fn: Callable[[Any, Any], bool], left: Node, right: Node):
        # Fuse the most common shape, "input <op> constant", into one closure.
        def build(b: Binding) -> Callable[[], bool]:
            if left.lookup and right.is_const:
                return _CMP_LC[fn](b.namespaces[left.lookup[0]], left.lookup[1], right.const)
            if right.lookup and left.is_const:
                return _CMP_CL[fn](left.const, b.namespaces[right.lookup[0]], right.lookup[1])
            if right.is_const:
                return _CMP_FC[fn](left.build(b), right.const)
            lf = _Checker._value_builder(left)(b)
            rf = _Checker._value_builder(right)(b)
            return lambda: fn(lf(), rf())

        return build

    def visit_IfExp(self, node: ast.IfExp, depth: int) -> Node:
        cond = self.visit(node.test, depth)
        self.expect(node.test, cond, BOOL, "the condition of 'if'")
        a = self.visit(node.body, depth)
        c = self.visit(node.orelse, depth)
        if a.type.kind != c.type.kind:
            raise self.fail(node, f"both branches of 'if' must have the same type; got {_describe(a.type)} and {_describe(c.type)}")
        if cond.is_const:
            return a if cond.const else c
        cb, ab, eb = cond.build, self._value_builder(a), self._value_builder(c)
        shape = {"kind": "if", "kids": (cond, a, c)}
        if a.is_const and c.is_const:
            x, y = a.const, c.const
            return Node(a.type, build=lambda b: (lambda t: (lambda: x if t() else y))(cb(b)), **shape)
        if a.is_const:
            x = a.const
            return Node(a.type, build=lambda b: (lambda t, f: (lambda: x if t() else f()))(cb(b), eb(b)), **shape)
        if c.is_const:
            y = c.const
            return Node(a.type, build=lambda b: (lambda t, f: (lambda: f() if t() else y))(cb(b), ab(b)), **shape)
        return Node(a.type, build=lambda b: (lambda t, x, y: (lambda: x() if t() else y()))(cb(b), ab(b), eb(b)),
                    **shape)

    def visit_Call(self, node: ast.Call, depth: int) -> Node:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only whitelisted functions may be called; expected a call like min(a, b)")
        name = node.func.id
        if node.keywords:
            raise self.fail(node, f"keyword arguments are not allowed in {name}(); expected positional arguments")
        if name in TIMER_FUNCTIONS:
            return self._timer_call(node, name, depth)
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted([*FUNCTIONS, *TIMER_FUNCTIONS]))
            raise self.fail(node, f"function '{name}' is not allowed; expected one of: {allowed}")
        lo, hi, fn = FUNCTIONS[name]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise self.fail(node, f"{name}() takes {want} arguments; got {n}")
        args = [self.visit(a, depth) for a in node.args]
        for a_ast, a in zip(node.args, args, strict=True):
            self.expect(a_ast, a, NUM, f"an argument of {name}()")
        if all(a.is_const for a in args):
            return self.const(fn(*[a.const for a in args]), node)
        shape = {"kind": "call", "kids": tuple(args), "op": name}
        if name == "clip" and args[1].is_const and args[2].is_const:
            x_build, lo, hi = args[0].build, args[1].const, args[2].const
            return Node(InputType(NUM), build=lambda b: _clip_const(x_build(b), lo, hi), **shape)
        if len(args) == 2 and args[1].is_const and not args[0].is_const:
            x_build, c = args[0].build, args[1].const
            return Node(InputType(NUM), build=lambda b: (lambda x: (lambda: fn(x(), c)))(x_build(b)), **shape)
        builders = [self._value_builder(a) for a in args]
        if len(builders) == 1:
            b0 = builders[0]
            return Node(InputType(NUM), build=lambda b: (lambda x: (lambda: fn(x())))(b0(b)), **shape)
        if len(builders) == 2:
            b0, b1 = builders
            return Node(InputType(NUM), build=lambda b: (lambda x, y: (lambda: fn(x(), y())))(b0(b), b1(b)), **shape)
        return Node(InputType(NUM), build=lambda b: (lambda fs: (lambda: fn(*[f() for f in fs])))([bb(b) for bb in builders]),
                    **shape)

    def _timer_call(self, node: ast.Call, name: str, depth: int) -> Node:
        if not self.env.timers:
            raise self.fail(node, f"{name}() is only available inside a state machine; expected a plain expression here")
        if name == "time_in_state":
            if node.args:
                raise self.fail(node, "time_in_state() takes no arguments; expected time_in_state()")
            self.reads_clock = True
            return Node(InputType(NUM), build=lambda b: b.time_in_state, kind="clock")
        if len(node.args) != 2:
            raise self.fail(node, "entries() takes 2 arguments; expected entries('STATE', window_s)")
        state = self.visit(node.args[0], depth)
        window = self.visit(node.args[1], depth)
        if not (state.is_const and state.type.kind == STR):
            raise self.fail(node.args[0], "the first argument of entries() must be a state name in quotes; expected entries('STATE', window_s)")
        if self.env.states is not None and state.const not in self.env.states:
            raise self.fail(node.args[0], f"'{state.const}' is not a state of this machine; expected one of: {', '.join(sorted(self.env.states))}")
        if not (window.is_const and window.type.kind == NUM) or not 0 < window.const <= MAX_TIMER_S:
            raise self.fail(node.args[1], "the window of entries() must be a positive constant (a number or params.X) "
                                          f"of at most {MAX_TIMER_S:g} s; expected seconds")
        s, w = state.const, float(window.const)
        self.entries_windows.append((s, w))
        return Node(InputType(NUM), build=lambda b: (lambda: b.entries(s, w)), kind="entries", op=(s, w))

    def visit_List(self, node: ast.List, depth: int) -> Node:
        raise self.fail(node, "a list is only allowed on the right of 'in'; expected x in ['A', 'B']")

    visit_Tuple = visit_List


# -- closure shapes ---------------------------------------------------------------------------
# Guards run on every event, so the common shapes get one closure each instead of a closure per
# node: "input <op> constant" reads the dict and compares in one call, and/or chains are one
# call, arithmetic with a constant or an input operand uses the operator inline. Results are
# the same as the generic closures (same operations, same order, same short-circuiting).

_CMP_LC = {  # input <op> constant
    operator.eq: lambda d, k, c: (lambda: d[k] == c),
    operator.ne: lambda d, k, c: (lambda: d[k] != c),
    operator.lt: lambda d, k, c: (lambda: d[k] < c),
    operator.le: lambda d, k, c: (lambda: d[k] <= c),
    operator.gt: lambda d, k, c: (lambda: d[k] > c),
    operator.ge: lambda d, k, c: (lambda: d[k] >= c),
}
_NOT_CMP_LC = {  # not (input <op> constant)
    operator.eq: lambda d, k, c: (lambda: not d[k] == c),
    operator.ne: lambda d, k, c: (lambda: not d[k] != c),
    operator.lt: lambda d, k, c: (lambda: not d[k] < c),
    operator.le: lambda d, k, c: (lambda: not d[k] <= c),
    operator.gt: lambda d, k, c: (lambda: not d[k] > c),
    operator.ge: lambda d, k, c: (lambda: not d[k] >= c),
}
_CMP_CL = {  # constant <op> input
    operator.eq: lambda c, d, k: (lambda: c == d[k]),
    operator.ne: lambda c, d, k: (lambda: c != d[k]),
    operator.lt: lambda c, d, k: (lambda: c < d[k]),
    operator.le: lambda c, d, k: (lambda: c <= d[k]),
    operator.gt: lambda c, d, k: (lambda: c > d[k]),
    operator.ge: lambda c, d, k: (lambda: c >= d[k]),
}
_CMP_FC = {  # expression <op> constant
    operator.eq: lambda f, c: (lambda: f() == c),
    operator.ne: lambda f, c: (lambda: f() != c),
    operator.lt: lambda f, c: (lambda: f() < c),
    operator.le: lambda f, c: (lambda: f() <= c),
    operator.gt: lambda f, c: (lambda: f() > c),
    operator.ge: lambda f, c: (lambda: f() >= c),
}


def _chain(fns: list[Callable[[], Any]], is_and: bool) -> Callable[[], Any]:
    """``f1() and f2() and ...`` (or ``or``) as one closure for up to four parts."""
    while len(fns) > 4:
        fns = [_chain(fns[:4], is_and), *fns[4:]]
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return (lambda: a() and b()) if is_and else (lambda: a() or b())
    if len(fns) == 3:
        a, b, c = fns
        return (lambda: a() and b() and c()) if is_and else (lambda: a() or b() or c())
    a, b, c, d = fns
    return (lambda: a() and b() and c() and d()) if is_and else (lambda: a() or b() or c() or d())


def _operand(n: Node, b: Binding) -> tuple:
    """('c', value) for a constant, ('l', dict, key) for an input, ('f', closure) otherwise."""
    if n.is_const:
        return ("c", n.const)
    if n.lookup:
        return ("l", b.namespaces[n.lookup[0]], n.lookup[1])
    return ("f", n.build(b))


def _native_binop(add, sub, mul, div):
    """A builder choosing the closure for an operand shape; each argument is a table of
    shape -> factory for one operator."""

    def make(table):
        def native(lo: tuple, ro: tuple) -> Callable[[], Any]:
            shape = lo[0] + ro[0]
            if shape in table:
                return table[shape](*lo[1:], *ro[1:])
            lf = (lambda v: (lambda: v))(lo[1]) if lo[0] == "c" else \
                (lambda d, k: (lambda: d[k]))(lo[1], lo[2]) if lo[0] == "l" else lo[1]
            rf = (lambda v: (lambda: v))(ro[1]) if ro[0] == "c" else \
                (lambda d, k: (lambda: d[k]))(ro[1], ro[2]) if ro[0] == "l" else ro[1]
            return table["ff"](lf, rf)

        return native

    return {"+": make(add), "-": make(sub), "*": make(mul), "/": make(div)}


_NATIVE_BINOPS = _native_binop(
    {"ff": lambda x, y: (lambda: x() + y()), "fc": lambda x, c: (lambda: x() + c),
     "cf": lambda c, y: (lambda: c + y()), "lc": lambda d, k, c: (lambda: d[k] + c),
     "cl": lambda c, d, k: (lambda: c + d[k])},
    {"ff": lambda x, y: (lambda: x() - y()), "fc": lambda x, c: (lambda: x() - c),
     "cf": lambda c, y: (lambda: c - y()), "lc": lambda d, k, c: (lambda: d[k] - c),
     "cl": lambda c, d, k: (lambda: c - d[k])},
    {"ff": lambda x, y: (lambda: x() * y()), "fc": lambda x, c: (lambda: x() * c),
     "cf": lambda c, y: (lambda: c * y()), "lc": lambda d, k, c: (lambda: d[k] * c),
     "cl": lambda c, d, k: (lambda: c * d[k])},
    # only used with a nonzero constant divisor (see visit_BinOp)
    {"fc": lambda x, c: (lambda: x() / c), "lc": lambda d, k, c: (lambda: d[k] / c),
     "ff": lambda x, y: (lambda: _safe_div(x(), y()))},
)


def _clip_const(x: Callable[[], float], lo: Any, hi: Any) -> Callable[[], float]:
    def clip() -> float:
        v = x()
        return lo if v < lo else hi if v > hi else v

    return clip
