"""Expressions as a reviewer reads them: params replaced by their values, units shown.

``metrics.spread_bps >= params.unstable_spread_bps`` reads ``spread ≥ 5 bps``. The text of a
checked expression is parsed again with Python's ``ast`` parser (syntax only; nothing is
evaluated) and the tree is printed node by node. Sub-trees made only of params and constants are
folded with the expression compiler itself, so a label shows the number the guard really
compares with (``spread < 3.5 bps (5 bps × 0.7)``).

Units come from names: a param's suffix (``_s``, ``_ms``, ``_bps``, ``_hz``, ``_usd``,
``_ratio``, ...; see ``PARAM_UNIT_SUFFIXES``) and the unit word inside a metric's name
(``quote_rate_hz_10s`` is in Hz over a 10 s window).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .expr import Env, ExprError, compile_expr

# name suffix / token -> unit shown after a value ("" = a plain number)
UNIT_OF_SUFFIX = {
    "_ms": "ms", "_s": "s", "_bps": "bps", "_hz": "Hz", "_usd": "USD", "_ratio": "×", "_x": "×",
    "_count": "", "_weight": "", "_score": "", "_enabled": "",
}
_METRIC_UNIT_TOKENS = {"bps": "bps", "hz": "Hz", "ms": "ms", "usd": "USD", "ratio": "×"}
_DIMENSIONLESS = ("", "×", None)
_CMP_SYMBOLS = {ast.Eq: "=", ast.NotEq: "≠", ast.Lt: "<", ast.LtE: "≤", ast.Gt: ">", ast.GtE: "≥"}
# not (a < b) is true when a ≥ b or when either side is unknown (NaN): say so.
_NEGATED = {ast.Lt: "≥", ast.LtE: ">", ast.Gt: "≤", ast.GtE: "<"}
_BIN_SYMBOLS = {ast.Add: "+", ast.Sub: "−", ast.Mult: "×", ast.Div: "/", ast.Mod: "mod", ast.Pow: "^"}
_PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.Mod: 2, ast.Pow: 4}


def param_unit(name: str) -> str:
    """The unit a param's name declares ("" for plain numbers)."""
    for suffix in sorted(UNIT_OF_SUFFIX, key=len, reverse=True):
        if name.endswith(suffix):
            return UNIT_OF_SUFFIX[suffix]
    return ""


def _split_metric(name: str) -> tuple[list[str], str | None, str | None]:
    """(words, unit, window) of a metric name: ``mid_move_bps_1s`` -> (['mid', 'move'], 'bps', '1 s')."""
    tokens = name.split("_")
    window = None
    last = tokens[-1]
    if len(tokens) > 1 and last[:-1].isdigit() and last.endswith("s") and last[:-1]:
        window = f"{last[:-1]} s"
        tokens = tokens[:-1]
    elif len(tokens) > 1 and last.endswith("ms") and last[:-2].isdigit() and last[:-2]:
        window = f"{last[:-2]} ms"
        tokens = tokens[:-1]
    unit = None
    words = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "per" and i + 1 < len(tokens) and tokens[i + 1] == "s":
            unit = (f"{words[-1]}/s" if words else "/s")
            i += 2
            continue
        if t in _METRIC_UNIT_TOKENS and unit is None and i > 0:
            unit = _METRIC_UNIT_TOKENS[t]
        else:
            words.append(t)
        i += 1
    return words or tokens, unit, window


def metric_unit(name: str) -> str | None:
    """The unit a metric's name declares, or None when the name says none."""
    return _split_metric(name)[1]


def metric_label(name: str) -> str:
    """``mid_move_bps_1s`` -> ``mid move (1 s)``."""
    words, _, window = _split_metric(name)
    return " ".join(words) + (f" ({window})" if window else "")


def fmt_number(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def fmt_value(value: Any, unit: str | None) -> str:
    """``5.0, 'bps'`` -> ``5 bps``; ratios as ``200×``."""
    text = fmt_number(value)
    if not unit or isinstance(value, bool):
        return text
    if unit == "×":
        return text + "×"
    return f"{text} {unit}"


@dataclass
class Rendered:
    text: str
    unit: str | None = None
    prec: int = 9  # binding strength of the outermost operator (9 = atom)
    const: Any = None
    is_const: bool = False


@dataclass
class Printer:
    """Prints the expressions of one machine (or table) with its params' values."""

    params: Mapping[str, Any]
    derived_units: Mapping[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # footnotes such as "n = entries into ..."
    show_formulas: bool = True
    _in_formula: int = 0

    # -- public ----------------------------------------------------------------------------
    def render(self, text: str) -> str:
        text = text.strip()
        return self._node(_parse(text), text).text

    def clauses(self, text: str) -> list[tuple[str, str]]:
        """The top-level clauses of a condition as (connector, text): ('', a), ('or', b), ..."""
        text = text.strip()
        tree = _parse(text)
        if isinstance(tree, ast.BoolOp):
            word = "and" if isinstance(tree.op, ast.And) else "or"
            return [("" if i == 0 else word, self._node(v, text, 0).text) for i, v in enumerate(tree.values)]
        return [("", self._node(tree, text).text)]

    def seconds(self, text: str) -> str:
        """A timer expression (seconds): ``0.25 s``, ``min(30 s × 2^max(n − 1, 0), 600 s)``."""
        text = text.strip()
        r = self._node(_parse(text), text)
        if r.is_const and r.prec == 9 and not r.unit:
            return fmt_value(r.const, "s")
        return r.text

    # -- printing ----------------------------------------------------------------------------
    def _fold(self, node: ast.AST, source: str) -> tuple[bool, Any]:
        """(True, value) when the sub-tree is made only of params and constants."""
        heads = set()  # Name nodes that are a namespace or a function name, not a value
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute):
                if not (isinstance(n.value, ast.Name) and n.value.id == "params"):
                    return False, None
                heads.add(id(n.value))
            elif isinstance(n, ast.Call):
                if not isinstance(n.func, ast.Name) or n.func.id in ("entries", "time_in_state"):
                    return False, None
                heads.add(id(n.func))
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and id(n) not in heads and n.id not in ("true", "false", "True", "False"):
                return False, None  # a derived value
        segment = ast.get_source_segment(source, node) or ""
        try:
            expr = compile_expr(f"({segment})", Env(params=dict(self.params)))
        except ExprError:
            return False, None
        return (True, expr.root.const) if expr.is_const else (False, None)

    def _node(self, node: ast.AST, source: str, parent_prec: int = 0) -> Rendered:
        r = self._render(node, source)
        if r.prec < parent_prec:
            return Rendered(f"({r.text})", r.unit, 9, r.const, r.is_const)
        return r

    def _render(self, node: ast.AST, source: str) -> Rendered:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, str):
                return Rendered(v, None, 9, v, True)
            return Rendered(fmt_number(v), "", 9, v, True)
        if isinstance(node, ast.Name):
            if node.id in ("true", "True", "false", "False"):
                v = node.id in ("true", "True")
                return Rendered(fmt_number(v), "", 9, v, True)
            return Rendered(node.id, self.derived_units.get(node.id))  # derived names as declared
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            ns, key = node.value.id, node.attr
            if ns == "params":
                value = self.params.get(key)
                return Rendered(fmt_value(value, param_unit(key)), param_unit(key), 9, value, True)
            if ns == "metrics":
                return Rendered(metric_label(key), metric_unit(key))
            if key == "state":
                return Rendered(ns)
            return Rendered(f"{ns}.{key}", param_unit(key) or None)
        folded, value = False, None
        if isinstance(node, (ast.BinOp, ast.Call, ast.UnaryOp)) and not self._in_formula:
            folded, value = self._fold(node, source)
        if not folded:
            return self._operator(node, source, False, None)
        self._in_formula += 1  # the formula after a folded value shows the params, not sub-results
        try:
            return self._operator(node, source, True, value)
        finally:
            self._in_formula -= 1

    def _operator(self, node: ast.AST, source: str, folded: bool, value: Any) -> Rendered:
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                inner = node.operand
                if isinstance(inner, ast.Compare) and len(inner.ops) == 1 and type(inner.ops[0]) in _NEGATED:
                    left = self._node(inner.left, source, 3)
                    right = self._node(inner.comparators[0], source, 3)
                    return Rendered(f"{left.text} {_NEGATED[type(inner.ops[0])]} {right.text} (or unknown)",
                                    None, 2)
                r = self._node(inner, source, 9)
                return Rendered(f"not {r.text}", None, 2)
            r = self._node(node.operand, source, 3)
            if folded:
                return self._folded(value, r.unit, r.text if r.prec < 9 else None)
            return Rendered(f"−{r.text}" if isinstance(node.op, ast.USub) else r.text, r.unit, 3)
        if isinstance(node, ast.BoolOp):
            word = " and " if isinstance(node.op, ast.And) else " or "
            parts = [self._node(v, source, 1 if isinstance(node.op, ast.And) else 0).text for v in node.values]
            return Rendered(word.join(parts), None, 1 if isinstance(node.op, ast.And) else 0)
        if isinstance(node, ast.Compare):
            return self._compare(node, source)
        if isinstance(node, ast.BinOp):
            return self._binop(node, source, folded, value)
        if isinstance(node, ast.IfExp):
            body = self._node(node.body, source, 1)
            test = self._node(node.test, source, 1)
            orelse = self._node(node.orelse, source, 0)
            return Rendered(f"{body.text} if {test.text} else {orelse.text}", body.unit or orelse.unit, 0)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node, source, folded, value)
        return Rendered(ast.get_source_segment(source, node) or "?")

    def _folded(self, value: Any, unit: str | None, formula: str | None) -> Rendered:
        text = fmt_value(value, unit)
        if formula and self.show_formulas:
            text += f" ({formula})"
        return Rendered(text, unit, 9 if not formula else 8, value, True)

    def _compare(self, node: ast.Compare, source: str) -> Rendered:
        left = self._node(node.left, source, 3)
        parts = [left.text]
        left_unit = left.unit if left.unit not in _DIMENSIONLESS else None
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                items = [self._node(e, source, 9).text for e in getattr(right, "elts", [])]
                parts.append(("∉" if isinstance(op, ast.NotIn) else "∈") + " {" + ", ".join(items) + "}")
            else:
                r = self._node(right, source, 3)
                if isinstance(right, ast.Constant) and r.unit == "" and left_unit:
                    r = Rendered(fmt_value(r.const, left_unit), left_unit, 9, r.const, True)  # x_hz < 1 -> 1 Hz
                parts.append(f"{_CMP_SYMBOLS.get(type(op), '?')} {r.text}")
        return Rendered(" ".join(parts), None, 2)

    def _binop(self, node: ast.BinOp, source: str, folded: bool, value: Any) -> Rendered:
        prec = _PRECEDENCE[type(node.op)]
        sym = _BIN_SYMBOLS[type(node.op)]
        left = self._node(node.left, source, prec if not isinstance(node.op, ast.Pow) else 5)
        right = self._node(node.right, source, prec + 1 if not isinstance(node.op, ast.Pow) else 9)
        unit = _combine_units(type(node.op), left.unit, right.unit)
        # Inside a formula a ratio reads as a plain factor: "5 bps × 0.7", not "5 bps × 0.7×".
        left, right = _bare_ratio(left), _bare_ratio(right)
        if isinstance(node.op, ast.Pow):
            text = f"{left.text}^{right.text}"
        else:
            text = f"{left.text} {sym} {right.text}"
        if folded:
            return self._folded(value, unit, text)
        return Rendered(text, unit, prec)

    def _call(self, node: ast.Call, source: str, folded: bool, value: Any) -> Rendered:
        name = node.func.id  # type: ignore[attr-defined]
        if name == "time_in_state":
            return Rendered("time in state", "s")
        if name == "entries":
            state = self._node(node.args[0], source).text
            window = self._node(node.args[1], source).text
            if not window.endswith(" s") and not window.endswith("ms"):
                window += " s"
            note = f"entries into {state} in the last {window}"
            if note not in self.notes:
                self.notes.append(note)
            symbol = "n" if self.notes.index(note) == 0 else f"n{self.notes.index(note) + 1}"
            return Rendered(symbol, "")
        args = [self._node(a, source, 0) for a in node.args]
        unit = next((a.unit for a in args if a.unit not in _DIMENSIONLESS), args[0].unit if args else None)
        if name in ("log", "exp", "sqrt"):
            unit = ""
        text = f"{name}({', '.join(a.text for a in args)})"
        if folded:
            return self._folded(value, unit, text)
        return Rendered(text, unit, 9)


def _bare_ratio(r: Rendered) -> Rendered:
    if r.unit == "×" and r.is_const and r.prec == 9:
        return Rendered(fmt_number(r.const), r.unit, 9, r.const, True)
    return r


def _combine_units(op: type, a: str | None, b: str | None) -> str | None:
    if op is ast.Mult and a == "×" and b == "×":
        return "×"
    if op in (ast.Add, ast.Sub, ast.Mod):
        return a if a not in _DIMENSIONLESS else b if b not in _DIMENSIONLESS else (a if a is not None else b)
    if op is ast.Mult:
        if a in _DIMENSIONLESS:
            return b if b not in _DIMENSIONLESS else ""
        return a if b in _DIMENSIONLESS else None
    if op is ast.Div:
        if a == b:
            return ""
        return a if b in _DIMENSIONLESS else None
    return ""  # powers: a number


def _parse(text: str) -> ast.AST:
    return ast.parse(text, mode="eval").body
