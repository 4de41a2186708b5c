"""``execlab diagrams``: render the machines (and a run's annotations) with Graphviz or Mermaid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import workspace
from ..spec.errors import SpecError, SpecErrors

if TYPE_CHECKING:
    from ..spec.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagrams", help="render state diagrams (SVG + DOT, or Mermaid) from the machine specs",
                       description="Render the machines with the params' values and units on every edge. "
                                   "With --diff OLD NEW: what changed between two versions (exit 0 none, 1 changes, 2 error).")
    p.add_argument("--config", help="session config whose machines (and overrides) to draw (default: configs/default.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="MACHINE.PARAM=VALUE",
                   help="override a param, as for `execlab run` (repeatable); the labels show the value")
    p.add_argument("--format", choices=("svg", "mermaid"), default="svg",
                   help="svg: <name>.dot + <name>.svg (default); mermaid: <name>.md with a mermaid block")
    p.add_argument("--out", type=Path, help="output folder (default: diagrams/, or RUN/diagrams with --run)")
    p.add_argument("--check", action="store_true", help="exit 1 if the diagrams in --out are stale")
    p.add_argument("--run", type=Path, help="annotate with a run's transition counts and time in state")
    p.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"),
                   help="compare two machine files, two folders, or two git revisions of machines/ (e.g. HEAD~1 HEAD)")
    p.set_defaults(func=run)


def _overrides(session: Session) -> tuple[dict, dict]:
    from ..spec.machines import param_catalogue
    from ..spec.session import NOT_PIPELINE_SPECS

    machine_files = [p for k, p in session.spec_paths.items() if k not in NOT_PIPELINE_SPECS]
    return session.overrides, param_catalogue(machine_files, session.spec_paths["decision"])


def _risk(session: Session) -> tuple:
    """The risk machine, drawn with the files' values (the session's risk: section is not an
    override of them)."""
    from ..spec.risk import load_risk_machine

    return (load_risk_machine(session.spec_paths["risk"], session.metric_set.names).spec,)


def run(args: argparse.Namespace) -> int:
    if args.diff is not None:
        from .diff import run_diff

        return run_diff(args)
    if args.run is not None:
        # A run's annotations come from the audit area, which reads runs (it adds this hook:
        # diagrams sit upstream of audit and never import it).
        out = args.annotate_run(args.run, args.out)
        print(f"wrote annotated diagrams to {out}")
        return 0
    import graphviz  # imported here: `execlab --help` loads no command's machinery

    from ..spec.session import load_session
    from .mermaid import markdown
    from .render import render_all, stale_diagrams
    from .view import machine_view, overrides_note

    session = load_session(args.config, args.set)
    overrides, defaults = _overrides(session)
    if overrides and args.out is None:  # diagrams/ shows the files' own values (a test checks it)
        raise SpecErrors([SpecError("--out", 0, 0, "this session overrides params and diagrams/ shows the files' values; "
                                    "expected --out DIR for the session's diagrams")])
    out = args.out or workspace.require() / "diagrams"
    if args.format == "mermaid":
        if args.check:
            raise SpecErrors([SpecError("--check", 0, 0, "--check compares the Graphviz sources; expected --format svg")])
        out.mkdir(parents=True, exist_ok=True)
        for m in [*session.machine_set.machines, *_risk(session)]:
            view = machine_view(m)
            view.subtitle = overrides_note(overrides.get(m.name, {}), defaults.get(m.name, {}))
            path = out / f"{m.name}.md"
            path.write_text(markdown(view), encoding="utf-8")
            print(f"wrote {path}")
        return 0
    if args.check:
        stale = stale_diagrams(session.machine_set, out, overrides, defaults, _risk(session))
        if stale:
            print(f"stale diagrams in {out}: {', '.join(stale)}; run `execlab diagrams` to regenerate", file=sys.stderr)
            return 1
        print(f"diagrams in {out} are up to date")
        return 0
    try:
        written = render_all(session.machine_set, out, overrides=overrides, defaults=defaults, extra=_risk(session))
    except graphviz.ExecutableNotFound:
        print("Graphviz's `dot` program is not installed; install it (Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz)", file=sys.stderr)
        return 2
    for p in written:
        print(f"wrote {p}")
    return 0
