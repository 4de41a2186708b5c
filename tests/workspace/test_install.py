"""The package installed from a wheel (not editable) into a fresh environment outside the
checkout: `execlab init`, then `execlab run` and `execlab validate` in the new workspace.

The wheel is built offline from a copy of the sources; the fresh environment sees the
dependencies of the test environment through a path file instead of downloading them, so
the test takes about as long as one default session plus the metric kernel's compilation.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO

SOURCES = ("framework", "machines", "configs", "data", "pyproject.toml", "README.md")


def _sh(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(REPO / name, src / name)
    built = _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                 "-w", str(tmp / "dist"), str(src)], cwd=tmp)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp / "dist").glob("crypto_execution_lab-*.whl"))
    venv = tmp / "venv"
    made = _sh([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    added = _sh([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                 "--disable-pip-version-check", str(wheel)], cwd=tmp)
    assert added.returncode == 0, added.stderr
    site = Path(_sh([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    # The dependencies come from the test environment (listed after the fresh site-packages,
    # so `framework` itself is the installed wheel's, not the checkout's).
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    home = tmp / "home"
    home.mkdir()
    return {"wheel": wheel, "venv": venv, "python": python, "env": env, "home": home}


def test_the_wheel_carries_the_defaults(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for part in ("framework/defaults/machines/regime.yaml", "framework/defaults/configs/default.yaml",
                 "framework/defaults/data/binance-spot-btcusdt-20240808.frames.gz",
                 "framework/defaults/workspace-README.md", "framework/spec/schemas/session.schema.json"):
        assert part in names


def test_init_run_validate_in_a_fresh_environment(installed):
    env, home = installed["env"], installed["home"]
    where = _sh([str(installed["python"]), "-c", "import framework; print(framework.__file__)"], cwd=home, env=env)
    assert where.stdout.strip().startswith(str(installed["venv"])), where.stdout + where.stderr

    version = _sh(["execlab", "--version"], cwd=home, env=env)
    assert version.returncode == 0 and version.stdout.startswith("execlab 0.")

    outside = _sh(["execlab", "validate"], cwd=home, env=env)
    assert outside.returncode == 2 and "execlab init" in outside.stderr and "Traceback" not in outside.stderr

    init = _sh(["execlab", "init", "ws"], cwd=home, env=env)
    assert init.returncode == 0, init.stderr
    ws = home / "ws"
    for part in ("machines/regime.yaml", "configs/default.yaml", "data/binance-spot-btcusdt-20240808.frames.gz",
                 "runs", "README.md", ".execlab", "schemas/session.schema.json"):
        assert (ws / part).exists(), part

    run = _sh(["execlab", "run", "--no-progress"], cwd=ws, env=env)
    assert run.returncode == 0, run.stderr
    assert "session default:" in run.stdout
    # a fresh install compiles the kernel once, and says so instead of sitting silent
    assert "compiling the metric kernel" in run.stderr and "metric kernel compiled in" in run.stderr
    runs = list((ws / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "log.jsonl").is_file()
    # the run used the workspace's machines, not anything in the checkout
    assert str(REPO) not in (runs[0] / "session.json").read_text()

    validate = _sh(["execlab", "validate"], cwd=ws / "configs", env=env)
    assert validate.returncode == 0, validate.stderr
    assert f"ok  {ws}/machines/regime.yaml" in validate.stdout
    assert f"ok  {ws}/configs/default.yaml" in validate.stdout

    second = _sh(["execlab", "run", "--no-progress", "--out", str(home / "second")], cwd=ws, env=env)
    assert second.returncode == 0 and "metric kernel" not in second.stderr, second.stderr
    assert (home / "second" / "log.jsonl").read_bytes() == (runs[0] / "log.jsonl").read_bytes()

    again = _sh(["execlab", "init", "ws"], cwd=home, env=env)
    assert again.returncode == 2 and "already a workspace" in again.stderr
