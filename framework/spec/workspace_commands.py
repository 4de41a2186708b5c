"""``execlab init``: a new workspace with copies of the shipped machines, configs and data;
``execlab schema``: the JSON Schemas editors use to complete and check the YAML files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import workspace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a workspace (machines/, configs/, data/, runs/) with the defaults")
    p.add_argument("dir", nargs="?", default=".", type=Path, help="folder to create it in (default: here)")
    p.set_defaults(func=run_init)

    p = sub.add_parser("schema", help="write the JSON Schemas of the YAML files for editors (default: schemas/)")
    p.add_argument("--out", type=Path, help="folder (default: the workspace's schemas/)")
    p.add_argument("--check", action="store_true", help="exit 1 if the schemas in the folder are stale")
    p.set_defaults(func=run_schema)


def run_init(args: argparse.Namespace) -> int:
    made = workspace.init(args.dir)
    root = made[-1].parent
    for p in made:
        print(f"created {p}")
    where = "" if root == Path.cwd().resolve() else f"cd {args.dir} && "
    print(f"\nworkspace ready in {root}\nnext: {where}execlab run")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from . import editor_schemas

    out = args.out or workspace.require() / "schemas"
    if args.check:
        stale = editor_schemas.stale(out)
        if stale:
            print(f"stale schemas in {out}: {', '.join(stale)}; run `execlab schema` to regenerate", file=sys.stderr)
            return 1
        print(f"schemas in {out} are up to date")
        return 0
    for p in editor_schemas.write_all(out):
        print(f"wrote {p}")
    print(f"editors with the YAML language server read them from each file's first line: "
          f"{editor_schemas.MODELINE}../schemas/<kind>.schema.json")
    return 0
