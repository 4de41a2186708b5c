"""Workspaces: the folder a user works in (machines/, configs/, data/, runs/), found like git's.

A workspace is a folder holding a ``.execlab`` marker file. Every command works in the
workspace found from the current directory upward, or the one named with ``--workspace``.
``execlab init`` creates one with copies of the defaults that ship inside the package
(``framework/defaults``: the project's own machines/, configs/ and data/, put into the wheel
at build time). The project's checkout is itself a workspace.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import SpecError, SpecErrors

MARKER = ".execlab"
FOLDERS = ("machines", "configs", "data")  # copied from the defaults by `execlab init`
DEFAULTS_DIR = Path(__file__).resolve().parents[1] / "defaults"
MARKER_TEXT = "# A Crypto Execution Lab workspace: execlab commands run in here or below use its\n" \
              "# machines/, configs/, data/ and runs/.\nworkspace: 1\n"

_chosen: Path | None = None  # set by --workspace


def use(path: str | Path | None) -> None:
    """Make ``path`` the workspace of every later lookup (the ``--workspace`` option)."""
    global _chosen
    if path is None:
        _chosen = None
        return
    p = Path(path).resolve()
    if not (p / MARKER).is_file():
        raise SpecErrors([SpecError(str(p), 0, 0, f"not a workspace (no {MARKER} file); expected a folder made by `execlab init`")])
    _chosen = p


def find(start: str | Path | None = None) -> Path | None:
    """The workspace holding ``start`` (default: the current directory), or None."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    return None


def current() -> Path | None:
    """The workspace named with --workspace, else the one around the current directory."""
    return _chosen or find()


def require() -> Path:
    """The current workspace; a clear error when there is none."""
    ws = current()
    if ws is None:
        raise SpecErrors([SpecError(str(Path.cwd()), 0, 0,
                                    "not inside a workspace (no .execlab file here or in any folder above); "
                                    "expected one made by `execlab init DIR`, or name one with --workspace DIR")])
    return ws


def of_file(path: str | Path) -> Path | None:
    """The workspace a file belongs to, else the current one."""
    return find(Path(path).resolve().parent) or current()


def machines_dir(config_path: str | Path | None = None) -> Path:
    """Where a config's unnamed machine files come from: its workspace's (or, without a config,
    the current one's), else the ones shipped with the package."""
    ws = of_file(config_path) if config_path is not None else current()
    if ws is not None and (ws / "machines").is_dir():
        return ws / "machines"
    return DEFAULTS_DIR / "machines"


def default_config() -> Path:
    return require() / "configs" / "default.yaml"


def scenarios_dir() -> Path:
    ws = current()
    if ws is not None and (ws / "configs" / "scenarios").is_dir():
        return ws / "configs" / "scenarios"
    return DEFAULTS_DIR / "configs" / "scenarios"


def init(target: str | Path) -> list[Path]:
    """Create a workspace in ``target`` with copies of the defaults; never overwrites a file."""
    target = Path(target).resolve()
    if (target / MARKER).exists():
        raise SpecErrors([SpecError(str(target), 0, 0, "already a workspace; expected a new or empty folder")])
    clashes = [target / name for name in (*FOLDERS, "runs", "schemas", "README.md") if (target / name).exists()]
    if clashes:
        raise SpecErrors([SpecError(str(p), 0, 0, "already exists; expected a new or empty folder for the workspace")
                          for p in clashes])
    if not (DEFAULTS_DIR / "machines").is_dir():
        raise SpecErrors([SpecError(str(DEFAULTS_DIR), 0, 0, "the installed package carries no defaults; expected a complete install (pip install crypto-execution-lab)")])
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for name in FOLDERS:
        shutil.copytree(DEFAULTS_DIR / name, target / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        made.append(target / name)
    (target / "runs").mkdir()
    made.append(target / "runs")
    from .editor_schemas import write_all  # the files' first lines point editors at these

    write_all(target / "schemas")
    made.append(target / "schemas")
    shutil.copyfile(DEFAULTS_DIR / "workspace-README.md", target / "README.md")
    made.append(target / "README.md")
    (target / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    made.append(target / MARKER)
    return made
