"""Workspaces: `execlab init`, the lookup from the current folder upward, --workspace, and a
config's machine files resolved within the config's own workspace."""

import os
from pathlib import Path

import pytest

from framework.cli import main
from framework.spec import workspace
from framework.spec.session import load_session
from tests.support import REPO


@pytest.fixture
def in_dir(monkeypatch):
    def go(path: Path) -> None:
        monkeypatch.chdir(path)
    yield go
    workspace.use(None)


def test_the_checkout_is_a_workspace():
    assert workspace.find(REPO / "configs" / "scenarios") == REPO


def test_init_then_commands_find_the_workspace_from_below(tmp_path, in_dir, capsys):
    assert main(["init", str(tmp_path / "ws")]) == 0
    ws = tmp_path / "ws"
    in_dir(ws / "configs" / "scenarios")
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert f"ok  {ws}/machines/health.yaml" in out and f"ok  {ws}/configs/default.yaml" in out
    assert str(REPO) not in out


def test_a_config_without_machine_paths_uses_its_workspace_machines(tmp_path, in_dir):
    workspace.init(tmp_path / "ws")
    ws = tmp_path / "ws"
    regime = ws / "machines" / "regime.yaml"
    regime.write_text(regime.read_text() + "\n# edited in the workspace\n")
    in_dir(tmp_path)  # outside: the config's own workspace counts, not the current folder
    session = load_session(ws / "configs" / "default.yaml")
    assert session.spec_paths["regime"] == str(regime)
    assert session.snapshot["specs"]["regime"].endswith("# edited in the workspace\n")


def test_workspace_option_names_one_from_anywhere(tmp_path, in_dir, capsys):
    workspace.init(tmp_path / "ws")
    (tmp_path / "elsewhere").mkdir()
    in_dir(tmp_path / "elsewhere")
    assert main(["--workspace", str(tmp_path / "ws"), "validate"]) == 0
    assert f"ok  {tmp_path / 'ws'}/configs/live-binance.yaml" in capsys.readouterr().out


def test_outside_a_workspace_is_a_clear_error(tmp_path, in_dir, capsys):
    in_dir(tmp_path)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "not inside a workspace" in err and "execlab init" in err
    assert main(["--workspace", str(tmp_path), "validate"]) == 2
    assert "not a workspace" in capsys.readouterr().err


def test_init_never_overwrites(tmp_path, capsys):
    (tmp_path / "ws" / "configs").mkdir(parents=True)
    assert main(["init", str(tmp_path / "ws")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert os.listdir(tmp_path / "ws") == ["configs"]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("execlab ")
