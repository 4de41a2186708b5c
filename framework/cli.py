"""The ``execlab`` command: parses arguments, calls the library, prints. Nothing else."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .spec import workspace
from .spec.errors import SpecErrors

# Each area registers its own subcommands (framework/<area>/commands.py: register(subparsers)).
COMMAND_MODULES = (
    "framework.validate",
    "framework.spec.workspace_commands",
    "framework.diagrams.commands",
    "framework.runtime.commands",
    "framework.market.commands",
    "framework.market.data_commands",
    "framework.market.book_commands",
    "framework.market.scenario_commands",
    "framework.state.commands",
    "framework.audit.commands",
    "framework.audit.history_commands",
    "framework.audit.score_commands",
    "framework.audit.tca_commands",
    "framework.execution.commands",
    "framework.execution.latency_commands",
    "framework.bench.commands",
    "framework.dashboard.commands",  # after runtime: adds --dashboard to `run`
    "framework.sweep.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execlab",
        description="Crypto Execution Lab: declarative state machines over Binance market data; paper execution only.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--workspace", metavar="DIR",
                        help="the workspace to use (default: the one around the current folder, found like git's)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if name.startswith(exc.name or "?"):  # an area without commands yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        workspace.use(args.workspace)
        return int(func(args) or 0)
    except SpecErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        print(f"{len(exc.errors)} error(s)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `execlab ... | head`: the reader has gone; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
