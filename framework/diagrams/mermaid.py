"""Machine diagrams as Mermaid ``stateDiagram-v2`` text, for review inside Markdown.

The same ``MachineView`` as the Graphviz drawing: one transition per (rule, source state),
labelled with the rule number and one clause a line. Mermaid has no tooltips on transitions, so
the full guard text and the params' docs follow the diagram as a Markdown list. Characters that
Mermaid's label grammar reads as syntax are written as its entity codes (``#35;`` for ``#``).
"""

from __future__ import annotations

from .view import MachineView

_STATUS_STYLE = {"added": "fill:#2ca02c,stroke:#145214,stroke-width:3px,color:#fff",
                 "removed": "fill:#cccccc,stroke:#d62728,stroke-width:3px,stroke-dasharray:5 5,color:#555",
                 "changed": "stroke:#1f77b4,stroke-width:3px"}
_ESCAPES = {"#": "#35;", ";": "#59;", ":": "#58;", "<": "#lt;", ">": "#gt;", '"': "#quot;", "{": "#123;",
            "}": "#125;", "%": "#37;"}


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def _marked(line: str, status: str) -> str:
    if status == "removed":
        return "− " + line
    if status == "added":
        return "+ " + line
    return line


def mermaid(view: MachineView) -> str:
    """The ``stateDiagram-v2`` source of a machine view."""
    out = ["stateDiagram-v2", "    direction LR"]
    for name, s in view.states.items():
        out.append(f"    {name} : {_escape(name + (f' ({s.status})' if s.status else ''))}")
    out.append(f"    [*] --> {view.initial}")
    for e in view.edges:
        head = f"#{e.rule}" + (f" (was #{e.old_rule})" if e.old_rule not in (None, e.rule) else "")
        head += f" {e.status}" if e.status else ""
        statuses = e.line_status or ("",) * len(e.lines)
        lines = [head, *(_marked(x, st) for x, st in zip(e.lines, statuses, strict=True))]
        out.append(f"    {e.source} --> {e.dest} : " + "<br/>".join(_escape(x) for x in lines))
    for name, s in view.states.items():
        if s.terminal:
            out.append(f"    {name} --> [*]")
    styled = {}
    for name, s in view.states.items():
        style = _STATUS_STYLE.get(s.status) or (f"fill:{s.color},color:#fff" if s.color else "")
        if style:
            styled.setdefault(style, []).append(name)
    for i, (style, names) in enumerate(styled.items()):
        out.append(f"    classDef c{i} {style}")
        out.append(f"    class {','.join(names)} c{i}")
    return "\n".join(out) + "\n"


def markdown(view: MachineView, heading_level: int = 2) -> str:
    """A Markdown section: heading, the Mermaid block, then each rule's guard, doc and params."""
    h = "#" * heading_level
    parts = [f"{h} {view.name}", "", view.doc, ""]
    if view.subtitle:
        parts += [f"*{view.subtitle}*", ""]
    parts += ["```mermaid", mermaid(view).rstrip("\n"), "```", ""]
    if view.notes:
        parts += [f"- {n}" for n in view.notes] + [""]
    seen = set()
    for e in view.edges:
        if e.rule in seen and not e.status:
            continue
        seen.add(e.rule)
        tip = e.tooltip.splitlines()
        parts.append(f"- **{tip[0]}**" + (f" ({e.status})" if e.status else ""))
        parts += [f"  - {x.strip()}" for x in tip[1:] if x.strip() and x.strip() != "params:"]
    return "\n".join(parts) + "\n"
