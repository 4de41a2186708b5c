"""Machine diagrams annotated with a run: transition counts on the edges, time in each state.

The drawing itself is ``framework.diagrams.render.machine_graph``; this module only turns a
run's log into its ``Annotation``s (summed over the run's symbols).
"""

from __future__ import annotations

import re
from pathlib import Path

import graphviz

from ..diagrams.render import Annotation, machine_graph
from ..spec.machines import MachineSet
from .analysis import RunFacts, facts
from .runlog import load_records, log_path, run_machine_set, writing


def annotations(f: RunFacts, symbol: str | None = None) -> dict[str, Annotation]:
    counts = f.transition_counts(symbol)
    tis = f.time_in_state(symbol)
    return {m: Annotation(edge_counts=counts.get(m, {}), time_in_state_s=tis.get(m, {}))
            for m in set(counts) | set(tis)}


def annotated_graphs(machine_set: MachineSet, f: RunFacts, symbol: str | None = None) -> list[graphviz.Digraph]:
    ann = annotations(f, symbol)
    return [machine_graph(m, ann.get(m.name, Annotation({}, {}))) for m in machine_set.machines]


_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)


def inline_svg(g: graphviz.Digraph) -> str:
    """The graph as an ``<svg>`` element to embed in HTML (no XML prolog or DOCTYPE)."""
    return _PROLOG.sub("", g.pipe(format="svg", encoding="utf-8"), count=1).strip()


def render_run_diagrams(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``<machine>.dot`` and ``<machine>.svg`` annotated with the run; default RUN/diagrams."""
    run = Path(run_dir)
    log_path(run)
    out = Path(out_dir) if out_dir is not None else run / "diagrams"
    f = facts(load_records(run))
    graphs = annotated_graphs(run_machine_set(run), f)
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        for g in graphs:
            (out / f"{g.name}.dot").write_text(g.source, encoding="utf-8")
            (out / f"{g.name}.svg").write_text(g.pipe(format="svg", encoding="utf-8"), encoding="utf-8")
    return out
