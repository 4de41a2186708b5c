"""Graphviz diagrams of the machines and of the pipeline, built from the same specs that run.

Each machine becomes ``<name>.dot`` (the source, deterministic, checked for drift) and
``<name>.svg`` (rendered by Graphviz's ``dot``). Edges carry the rule's priority, timer and
guard; states carry their docs as tooltips. ``annotate`` adds a run's transition counts and
time in state.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import graphviz

from ..spec.machines import DecisionSpec, MachineSet, MachineSpec


@dataclass
class Annotation:
    """What a run adds to a machine diagram."""

    edge_counts: Mapping[tuple[str, str, int], int]  # (from, to, rule) -> count
    time_in_state_s: Mapping[str, float]


def _wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(" ".join(text.split()), width)) or text


def machine_graph(spec: MachineSpec, annotation: Annotation | None = None) -> graphviz.Digraph:
    g = graphviz.Digraph(name=spec.name, comment=f"generated from {Path(spec.path).name}; do not edit")
    g.attr(rankdir="LR", fontname="Helvetica", labelloc="t", label=f"{spec.name}\n{_wrap(spec.doc, 90)}",
           tooltip=" ".join(spec.doc.split()))
    g.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontcolor="white")
    g.attr("edge", fontname="Helvetica", fontsize="10")
    g.node("__start", label="", shape="point", width="0.15", style="filled", fillcolor="black")
    for name, state in spec.states.items():
        label = name
        if annotation is not None:
            label += f"\n{annotation.time_in_state_s.get(name, 0.0):.1f} s"
        g.node(name, label=label, tooltip=" ".join(state.doc.split()), fillcolor=state.color or "#4c72b0",
               peripheries="2" if state.terminal else "1")
    g.edge("__start", spec.initial)
    leaving: dict[str, int] = {}
    for rule in spec.rules:
        for s in rule.sources:
            leaving[s] = leaving.get(s, 0) + 1
    for rule in spec.rules:
        for s in rule.sources:
            parts = ([f"#{rule.index}"] if leaving[s] > 1 else []) + rule.conditions()
            label = "\n".join(_wrap(p, 48) for p in parts)
            attrs = {"tooltip": " ".join((rule.doc or rule.describe()).split())}
            if annotation is not None:
                n = annotation.edge_counts.get((s, rule.dest, rule.index), 0)
                label += f"\n× {n}"
                attrs["penwidth"] = str(1 + min(n, 20) * 0.25) if n else "1"
                attrs["color"] = "black" if n else "gray60"
            g.edge(s, rule.dest, label=label, **attrs)
    return g


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


def render_all(machine_set: MachineSet, out_dir: Path, annotations: Mapping[str, Annotation] | None = None) -> list[Path]:
    """Write <name>.dot and <name>.svg for each machine and the pipeline; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    graphs = [machine_graph(m, (annotations or {}).get(m.name)) for m in machine_set.machines]
    if annotations is None:
        graphs.append(pipeline_graph(machine_set))
    for g in graphs:
        dot_path = out_dir / f"{g.name}.dot"
        dot_path.write_text(g.source, encoding="utf-8")
        svg = g.pipe(format="svg", encoding="utf-8")
        svg_path = out_dir / f"{g.name}.svg"
        svg_path.write_text(svg, encoding="utf-8")
        written += [dot_path, svg_path]
    return written


def stale_diagrams(machine_set: MachineSet, out_dir: Path) -> list[str]:
    """Names of diagrams whose DOT source in ``out_dir`` differs from the specs (or is missing)."""
    stale = []
    for g in [*(machine_graph(m) for m in machine_set.machines), pipeline_graph(machine_set)]:
        dot_path = out_dir / f"{g.name}.dot"
        svg_path = out_dir / f"{g.name}.svg"
        if not dot_path.is_file() or dot_path.read_text(encoding="utf-8") != g.source or not svg_path.is_file():
            stale.append(g.name)
    return stale
