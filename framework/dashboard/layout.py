"""What the page needs from the specs, sent once per connection: the machines with their
states' colours and Graphviz diagrams, the metrics to chart, and the thresholds the guards
compare those metrics with.

Thresholds are read from each rule's ``when`` text with Python's ``ast`` parser (syntax only,
never evaluated): a comparison of ``metrics.X`` with arithmetic over numbers and
``params.P`` gives a line on X's chart at that value, with the params in force.
"""

from __future__ import annotations

import ast
import operator
import shutil
from typing import Any

from ..audit.annotate import inline_svg
from ..diagrams.render import machine_graph
from ..spec.machines import MachineSet, MachineSpec

FALLBACK_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
ALWAYS_CHARTED = ["mid", "spread_bps"]
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _metric_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "metrics":
        return node.attr
    return None


def _constant(node: ast.AST, params: dict[str, float]) -> float | None:
    """The value of arithmetic over numbers and params; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "params":
        value = params.get(node.attr)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constant(node.operand, params)
        return -inner if inner is not None else None
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        left, right = _constant(node.left, params), _constant(node.right, params)
        if left is None or right is None or (isinstance(node.op, ast.Div) and right == 0):
            return None
        return _ARITH[type(node.op)](left, right)
    return None


def guard_thresholds(text: str, params: dict[str, float]) -> list[tuple[str, str, float]]:
    """``(metric, op, value)`` for each comparison of a metric with a constant in ``text``,
    written with the metric on the left (``5 < metrics.x`` gives ``("x", ">", 5.0)``)."""
    try:
        tree = ast.parse(" ".join(text.split()), mode="eval")
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            sym = _OPS.get(type(op))
            if sym is None:
                continue
            metric, value = _metric_name(left), _constant(right, params)
            if metric is None:
                metric, value, sym = _metric_name(right), _constant(left, params), _FLIP[sym]
            if metric is not None and value is not None:
                found.append((metric, sym, value))
    return found


def _param_values(spec: MachineSpec) -> dict[str, float]:
    return {name: p.value for name, p in spec.params.items()}


def thresholds(machine_set: MachineSet) -> dict[str, list[dict[str, Any]]]:
    """metric -> the lines to draw on its chart, one per distinct (value, op) a guard uses."""
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in machine_set.machines:
        params = _param_values(spec)
        for rule in spec.rules:
            if rule.when is None:
                continue
            for metric, op, value in guard_thresholds(rule.when.text, params):
                lines = out.setdefault(metric, [])
                label = f"{spec.name} #{rule.index} {','.join(rule.sources)}→{rule.dest}: {op} {value:g}"
                same = next((x for x in lines if x["value"] == value and x["op"] == op), None)
                if same is None:
                    lines.append({"value": value, "op": op, "labels": [label]})
                elif label not in same["labels"]:
                    same["labels"].append(label)
    return out


def charted_metrics(machine_set: MachineSet) -> list[str]:
    """mid and spread, then every metric a guard reads, in the order the machines read them."""
    names = list(ALWAYS_CHARTED)
    for spec in machine_set.machines:
        for rule in spec.rules:
            for read in rule.reads:
                if read.startswith("metrics."):
                    name = read.split(".", 1)[1]
                    if name not in names:
                        names.append(name)
    known = set(machine_set.metric_names) | set(ALWAYS_CHARTED)
    return [n for n in names if n in known or not machine_set.metric_names]


def diagram_svg(spec: MachineSpec) -> str | None:
    """The machine's Graphviz diagram as an inline ``<svg>`` (None without Graphviz's dot)."""
    if shutil.which("dot") is None:
        return None
    return inline_svg(machine_graph(spec))


def layout(machine_set: MachineSet, *, mode: str, diagrams: bool = True) -> dict[str, Any]:
    """The ``hello`` message: everything static about the session's page."""
    machines = []
    for spec in machine_set.machines:
        colours = {name: st.color or FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)]
                   for i, (name, st) in enumerate(spec.states.items())}
        machines.append({"name": spec.name, "states": colours, "initial": spec.initial,
                         "svg": diagram_svg(spec) if diagrams else None})
    return {"type": "hello", "mode": mode, "machines": machines, "charted": charted_metrics(machine_set),
            "thresholds": thresholds(machine_set)}
