"""``execlab init``: a new workspace with copies of the shipped machines, configs and data."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import workspace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a workspace (machines/, configs/, data/, runs/) with the defaults")
    p.add_argument("dir", nargs="?", default=".", type=Path, help="folder to create it in (default: here)")
    p.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    made = workspace.init(args.dir)
    root = made[-1].parent
    for p in made:
        print(f"created {p}")
    where = "" if root == Path.cwd().resolve() else f"cd {args.dir} && "
    print(f"\nworkspace ready in {root}\nnext: {where}execlab run")
    return 0
