"""Every command's help is printable: argparse formats help strings with %, so a bare "95%"
in one of them breaks `execlab --help` for every command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from framework.cli import build_parser

PARSER = build_parser()
COMMANDS = sorted(next(a for a in PARSER._actions if a.dest == "command").choices)


def test_the_top_level_help_lists_every_command():
    text = PARSER.format_help()
    assert [c for c in COMMANDS if c not in text] == []


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_help_formats(command):
    sub = next(a for a in PARSER._actions if a.dest == "command").choices[command]
    assert sub.format_help().startswith(f"usage: execlab {command}")


def test_execlab_help_exits_0():
    proc = subprocess.run([sys.executable, "-c", "import sys; from framework.cli import main; sys.exit(main())",
                           "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "tca" in proc.stdout
