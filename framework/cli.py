"""The ``execlab`` command: parses arguments, calls the library, prints. Nothing else."""

from __future__ import annotations

import argparse
import importlib
import sys

from .spec.errors import SpecErrors

# Each area registers its own subcommands (framework/<area>/commands.py: register(subparsers)).
COMMAND_MODULES = (
    "framework.spec.commands",
    "framework.diagrams.commands",
    "framework.runtime.commands",
    "framework.market.commands",
    "framework.market.scenario_commands",
    "framework.state.commands",
    "framework.audit.commands",
    "framework.audit.score_commands",
    "framework.bench.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execlab",
        description="Crypto Execution Lab: declarative state machines over Binance market data; paper execution only.",
    )
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
        return int(func(args) or 0)
    except SpecErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        print(f"{len(exc.errors)} error(s)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
