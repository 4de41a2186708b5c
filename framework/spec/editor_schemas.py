"""Self-contained JSON Schemas for editors, one per kind of YAML file.

The packaged schemas validate one part each (the session config checks its ``execution``,
``risk`` and ``intents`` sections with their own schemas). An editor wants one schema per
file, complete, so the session schema is written with those sections inlined. YAML files name
theirs on their first line (``# yaml-language-server: $schema=../schemas/session.schema.json``),
which the YAML language server (VS Code, Neovim, Emacs, Helix, JetBrains) reads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .schema import schema

FILE_KINDS = ("session", "machine", "decision", "metrics", "scenario", "sweep")  # one schema per kind of file
SESSION_SECTIONS = ("execution", "risk", "intents")
MODELINE = "# yaml-language-server: $schema="


def bundled(name: str) -> dict:
    """The schema of ``name`` with the sections it validates separately inlined."""
    out = copy.deepcopy(schema(name))
    if name == "session":
        for section in SESSION_SECTIONS:
            part = copy.deepcopy(schema(section))
            for key in ("$schema", "$id"):
                part.pop(key, None)
            out["properties"][section] = part
    return out


def render(name: str) -> str:
    return json.dumps(bundled(name), indent=2, ensure_ascii=False) + "\n"


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILE_KINDS:
        path = out_dir / f"{name}.schema.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(out_dir: Path) -> list[str]:
    """Names of the schemas in ``out_dir`` that are missing or differ from the packaged ones."""
    return [name for name in FILE_KINDS
            if not (out_dir / f"{name}.schema.json").is_file()
            or (out_dir / f"{name}.schema.json").read_text(encoding="utf-8") != render(name)]
