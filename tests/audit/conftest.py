"""Real runs shared by the audit tests: the shock scenario and the shipped default recording."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from framework.spec.session import load_session

REPO = Path(__file__).resolve().parents[2]


def make_run(config: str, out: Path) -> Path:
    from framework.runtime.rundir import session_from_run  # noqa: F401 - the API these tests rely on

    try:
        from framework.runtime.pipeline import run_session
    except ImportError:
        from framework.runtime.run import run_session
    result = run_session(load_session(REPO / config), out)
    return Path(result.out_dir)


@pytest.fixture(scope="session")
def shock_run(tmp_path_factory) -> Path:
    """configs/scenario-shock.yaml: calm, a liquidity sweep at +240 s, a quote gap, recovery."""
    return make_run("configs/scenario-shock.yaml", tmp_path_factory.mktemp("shock") / "run")


@pytest.fixture(scope="session")
def replay_run(tmp_path_factory) -> Path:
    """configs/default.yaml: six minutes of the shipped BTCUSDT recording."""
    return make_run("configs/default.yaml", tmp_path_factory.mktemp("default") / "run")


@pytest.fixture
def run_copy(tmp_path, shock_run) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(shock_run, dest)
    return dest
