"""Graphviz diagrams of the machines and of the pipeline, built from the same specs that run.

Each machine becomes ``<name>.dot`` (the source, deterministic, checked for drift) and
``<name>.svg`` (rendered by Graphviz's ``dot``). Edges read like the spec: the rule number,
then one clause a line with the params' values and units (``spread ≥ 5 bps``, ``for 0.25 s``);
tooltips hold the full guard text, the rule's doc and the params' docs. States carry their docs
as tooltips. ``annotate`` adds a run's transition counts and time in state; a diff
(``framework.diagrams.diff``) colours what was added, removed or changed.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import graphviz

from ..spec.machines import DecisionSpec, MachineSet, MachineSpec
from .view import EdgeView, MachineView, machine_view, overrides_note

ADDED, REMOVED, CHANGED = "#2ca02c", "#d62728", "#1f77b4"
_STATUS_COLOR = {"added": ADDED, "removed": REMOVED, "changed": CHANGED}


@dataclass
class Annotation:
    """What a run adds to a machine diagram."""

    edge_counts: Mapping[tuple[str, str, int], int]  # (from, to, rule) -> count
    time_in_state_s: Mapping[str, float]


def _wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(" ".join(text.split()), width)) or text


def _html_line(text: str, status: str = "") -> str:
    t = html.escape(text, quote=False)
    if status == "removed":
        t = f'<FONT COLOR="{REMOVED}"><S>{t}</S></FONT>'
    elif status == "added":
        t = f'<FONT COLOR="{ADDED}"><B>{t}</B></FONT>'
    return t + '<BR ALIGN="LEFT"/>'


def _edge_label(e: EdgeView, extra: list[str]) -> str:
    head = f"#{e.rule}"
    if e.old_rule is not None and e.old_rule != e.rule:
        head = f"#{e.rule} (was #{e.old_rule})"
    if e.status:
        head += f" {e.status}"
    color = _STATUS_COLOR.get(e.status)
    head_html = f"<B>{html.escape(head)}</B>"
    if color:
        head_html = f'<FONT COLOR="{color}">{head_html}</FONT>'
    parts = [head_html + '<BR ALIGN="LEFT"/>']
    statuses = e.line_status or ("",) * len(e.lines)
    parts += [_html_line(line, st) for line, st in zip(e.lines, statuses, strict=True)]
    parts += [_html_line(x) for x in extra]
    return "<" + "".join(parts) + ">"


def draw(view: MachineView, annotation: Annotation | None = None) -> graphviz.Digraph:
    """The Graphviz graph of a machine view (statuses set by a diff are drawn in colour)."""
    g = graphviz.Digraph(name=view.name, comment=f"generated from {view.file}; do not edit")
    title = f"{view.name}\n{_wrap(view.doc, 90)}"
    if view.subtitle:
        title += f"\n{_wrap(view.subtitle, 90)}"
    g.attr(rankdir="LR", fontname="Helvetica", labelloc="t", label=title, tooltip=view.doc)
    g.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontcolor="white")
    g.attr("edge", fontname="Helvetica", fontsize="10")
    g.node("__start", label="", shape="point", width="0.15", style="filled", fillcolor="black")
    for name, state in view.states.items():
        label = name
        if annotation is not None:
            label += f"\n{annotation.time_in_state_s.get(name, 0.0):.1f} s"
        attrs = {"tooltip": state.doc, "fillcolor": state.color, "peripheries": "2" if state.terminal else "1"}
        if state.status:
            label += f"\n({state.status})"
            attrs.update(color=_STATUS_COLOR[state.status], penwidth="3")
            if state.status == "removed":
                attrs.update(style="rounded,filled,dashed", fillcolor="#cccccc", fontcolor="#555555")
        g.node(name, label=label, **attrs)
    g.edge("__start", view.initial)
    for e in view.edges:
        extra: list[str] = []
        attrs = {"tooltip": e.tooltip, "labeltooltip": e.tooltip}
        if annotation is not None:
            n = annotation.edge_counts.get((e.source, e.dest, e.rule), 0)
            extra.append(f"fired {n}×")
            attrs["penwidth"] = str(1 + min(n, 20) * 0.25) if n else "1"
            attrs["color"] = "black" if n else "gray60"
        if e.status:
            attrs.update(color=_STATUS_COLOR[e.status], fontcolor=_STATUS_COLOR[e.status], penwidth="2.5")
            if e.status == "removed":
                attrs["style"] = "dashed"
        g.edge(e.source, e.dest, label=_edge_label(e, extra), **attrs)
    if view.notes:
        g.node("__notes", label="<" + "".join(_html_line(n) for n in view.notes) + ">", shape="note",
               style="filled", fillcolor="#f7f7f7", fontcolor="black", fontsize="10",
               tooltip="names used in the labels")
    return g


def machine_graph(spec: MachineSpec, annotation: Annotation | None = None,
                  overrides: Mapping[str, object] | None = None, defaults: Mapping[str, object] | None = None) -> graphviz.Digraph:
    view = machine_view(spec)
    if overrides:
        view.subtitle = overrides_note(overrides, defaults or {})
    return draw(view, annotation)


def pipeline_graph(machine_set: MachineSet) -> graphviz.Digraph:
    """The layers left to right and what each reads."""
    g = graphviz.Digraph(name="pipeline", comment="generated from machines/; do not edit")
    g.attr(rankdir="LR", fontname="Helvetica", label="execlab pipeline: data flows left to right", labelloc="t")
    g.attr("node", shape="box", style="rounded,filled", fillcolor="#eeeeee", fontname="Helvetica")
    g.attr("edge", fontname="Helvetica", fontsize="10")
    g.node("market", "market data\n(Binance ws / replay / scenario)")
    g.node("metrics", f"state engine\n{len(machine_set.metric_names)} metrics")
    g.node("risk", "risk guardrails")
    g.node("execution", "paper execution\n(latency, fills, markouts)")
    g.node("audit", "audit log", shape="cylinder")
    g.edge("market", "metrics", label="trades, quotes, feed events")
    for m in machine_set.machines:
        g.node(m.name, f"{m.name}\n{' / '.join(m.states)}", fillcolor="#dbe9f6")
    dec: DecisionSpec = machine_set.decision
    g.node("decision", "decision\neligible, aggressiveness,\nrisk budget", fillcolor="#dbe9f6")
    for spec_name, reads in [*((m.name, m.reads) for m in machine_set.machines), ("decision", dec.reads)]:
        for r in reads:
            g.edge(r, spec_name)
    g.edge("decision", "execution", label="constraints")
    g.edge("execution", "risk", label="position, PnL")
    for n in ["metrics", *(m.name for m in machine_set.machines), "decision", "execution", "risk"]:
        g.edge(n, "audit", style="dotted", arrowhead="none")
    return g


def _graphs(machine_set: MachineSet, overrides: Mapping[str, Mapping[str, object]] | None,
            defaults: Mapping[str, Mapping[str, object]] | None, extra: Sequence[MachineSpec] = ()) -> list[graphviz.Digraph]:
    overrides, defaults = overrides or {}, defaults or {}
    return [*(machine_graph(m, None, overrides.get(m.name), defaults.get(m.name)) for m in machine_set.machines),
            *(machine_graph(m) for m in extra), pipeline_graph(machine_set)]


def render_all(machine_set: MachineSet, out_dir: Path, annotations: Mapping[str, Annotation] | None = None,
               overrides: Mapping[str, Mapping[str, object]] | None = None,
               defaults: Mapping[str, Mapping[str, object]] | None = None,
               extra: Sequence[MachineSpec] = ()) -> list[Path]:
    """Write <name>.dot and <name>.svg for each machine and the pipeline; return the paths.
    ``extra``: machines outside the pipeline's set to draw too (the risk machine).

    ``overrides`` ({machine: {param: value}}, a session's) are named under each title, with the
    file's ``defaults``; the labels already carry the overridden values."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if annotations is None:
        graphs = _graphs(machine_set, overrides, defaults, extra)
    else:
        graphs = [machine_graph(m, annotations.get(m.name)) for m in machine_set.machines]
    for g in graphs:
        dot_path = out_dir / f"{g.name}.dot"
        dot_path.write_text(g.source, encoding="utf-8")
        svg = g.pipe(format="svg", encoding="utf-8")
        svg_path = out_dir / f"{g.name}.svg"
        svg_path.write_text(svg, encoding="utf-8")
        written += [dot_path, svg_path]
    return written


def stale_diagrams(machine_set: MachineSet, out_dir: Path,
                   overrides: Mapping[str, Mapping[str, object]] | None = None,
                   defaults: Mapping[str, Mapping[str, object]] | None = None,
                   extra: Sequence[MachineSpec] = ()) -> list[str]:
    """Names of diagrams whose DOT source in ``out_dir`` differs from the specs (or is missing)."""
    stale = []
    for g in _graphs(machine_set, overrides, defaults, extra):
        dot_path = out_dir / f"{g.name}.dot"
        svg_path = out_dir / f"{g.name}.svg"
        if not dot_path.is_file() or dot_path.read_text(encoding="utf-8") != g.source or not svg_path.is_file():
            stale.append(g.name)
    return stale
