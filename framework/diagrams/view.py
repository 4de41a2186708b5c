"""What a machine diagram says, independent of how it is drawn (Graphviz or Mermaid).

A ``MachineView`` holds the states and one ``EdgeView`` per (rule, source state) with the
label lines a reviewer reads: the rule number, ``after``, one line per clause of ``when``,
``for``, with the params' values and units substituted (``framework.spec.pretty``), and a
tooltip with the full guard text, the rule's doc and the docs of the params it uses. The diff
(``framework.diagrams.diff``) compares two views.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec.machines import MachineSpec, Rule
from ..spec.pretty import Printer, fmt_value, param_unit


@dataclass(frozen=True)
class StateView:
    name: str
    doc: str
    color: str
    terminal: bool
    status: str = ""  # in a diff: "added", "removed" or ""


@dataclass(frozen=True)
class EdgeView:
    source: str
    dest: str
    rule: int  # the rule's 1-based priority
    lines: tuple[str, ...]  # clause lines, without the rule number
    tooltip: str
    guard: str  # the rule's conditions as written, one line
    # in a diff: "added", "removed", "changed" or ""; and per line "added", "removed" or ""
    status: str = ""
    line_status: tuple[str, ...] = ()
    old_rule: int | None = None  # the rule's number before, when it moved


@dataclass
class MachineView:
    name: str
    doc: str
    file: str
    initial: str
    states: dict[str, StateView]
    edges: list[EdgeView]
    notes: list[str] = field(default_factory=list)  # "n = entries into BLOCKED ...", derived values
    params: dict[str, tuple[Any, str]] = field(default_factory=dict)  # name -> (value, doc)
    subtitle: str = ""  # e.g. the session's overrides


def rule_lines(rule: Rule, printer: Printer) -> list[str]:
    """The label lines of a rule: ``after …``, the clauses of ``when``, ``for …``."""
    lines = []
    if rule.after is not None:
        lines.append(f"after {printer.seconds(rule.after.text)}")
    if rule.when is not None:
        for connector, text in printer.clauses(rule.when.text):
            lines.append(f"{connector} {text}" if connector else text)
    if rule.hold is not None:
        lines.append(f"for {printer.seconds(rule.hold.text)}")
    return lines


def param_line(name: str, value: Any, doc: str) -> str:
    return f"{name} = {fmt_value(value, param_unit(name))}: {' '.join(doc.split())}"


def machine_view(spec: MachineSpec) -> MachineView:
    values = {k: p.value for k, p in spec.params.items()}
    printer = Printer(values, derived_units={d: None for d in spec.derive})
    states = {n: StateView(n, " ".join(s.doc.split()), s.color or "#4c72b0", s.terminal) for n, s in spec.states.items()}
    file = Path(spec.path).name
    edges = []
    for rule in spec.rules:
        lines = tuple(rule_lines(rule, printer))
        tip = [f"#{rule.index} {' / '.join(rule.sources)} → {rule.dest}  ({file}:{rule.line})"]
        if rule.doc:
            tip.append(" ".join(rule.doc.split()))
        tip += [" ".join(c.split()) for c in rule.conditions()]
        if rule.params:
            tip.append("params:")
            tip += [f"  {param_line(p, spec.params[p].value, spec.params[p].doc)}" for p in rule.params]
        for s in rule.sources:
            edges.append(EdgeView(s, rule.dest, rule.index, lines, "\n".join(tip), rule.describe()))
    notes = [f"{'n' if i == 0 else f'n{i + 1}'} = {n}" for i, n in enumerate(printer.notes)]
    for name, (expr, _doc) in spec.derive.items():
        notes.append(f"{name} = {printer.render(expr.text)}")
    params = {k: (p.value, p.doc) for k, p in spec.params.items()}
    return MachineView(spec.name, " ".join(spec.doc.split()), file, spec.initial, states, edges, notes, params)


def overrides_note(overrides: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``session overrides: unstable_spread_bps = 6 bps (file 5 bps)``."""
    parts = [f"{k} = {fmt_value(v, param_unit(k))} (file {fmt_value(defaults.get(k), param_unit(k))})"
             for k, v in overrides.items()]
    return "session overrides: " + ", ".join(parts) if parts else ""
