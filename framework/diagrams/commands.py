"""``execlab diagrams``: render the machines (and a run's annotations) with Graphviz."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..spec import workspace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagrams", help="render state diagrams (SVG + DOT) from the machine specs")
    p.add_argument("--config", help="session config whose machines to draw (default: configs/default.yaml)")
    p.add_argument("--out", type=Path, help="output folder (default: diagrams/, or RUN/diagrams with --run)")
    p.add_argument("--check", action="store_true", help="exit 1 if the diagrams in --out are stale")
    p.add_argument("--run", type=Path, help="annotate with a run's transition counts and time in state")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.run is not None:
        from ..audit.annotate import render_run_diagrams

        out = render_run_diagrams(args.run, args.out)
        print(f"wrote annotated diagrams to {out}")
        return 0
    import graphviz  # imported here: `execlab --help` loads no command's machinery

    from ..spec.session import load_session
    from .render import render_all, stale_diagrams

    session = load_session(args.config)
    out = args.out or workspace.require() / "diagrams"
    if args.check:
        stale = stale_diagrams(session.machine_set, out)
        if stale:
            print(f"stale diagrams in {out}: {', '.join(stale)}; run `execlab diagrams` to regenerate", file=sys.stderr)
            return 1
        print(f"diagrams in {out} are up to date")
        return 0
    try:
        written = render_all(session.machine_set, out)
    except graphviz.ExecutableNotFound:
        print("Graphviz's `dot` program is not installed; install it (Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz)", file=sys.stderr)
        return 2
    for p in written:
        print(f"wrote {p}")
    return 0
