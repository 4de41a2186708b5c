"""Sweep test fixtures: short excerpts of the shipped recordings, sweep files, and a real Dask
cluster (a scheduler and two workers, separate processes on 127.0.0.1) started for the tests."""

import gzip
from pathlib import Path

import pytest

from tests.support import REPO

EXCERPT_LINES = 1500  # about 10 s of each recording: a trial takes well under a second


@pytest.fixture(scope="session")
def short_recordings(tmp_path_factory) -> list[Path]:
    """The first lines of every shipped recording (the real frames, cut short)."""
    folder = tmp_path_factory.mktemp("recordings")
    out = []
    for src in sorted((REPO / "data").glob("*.frames.gz")):
        with gzip.open(src, "rb") as f:
            lines = [f.readline() for _ in range(EXCERPT_LINES)]
        dst = folder / src.name
        with gzip.GzipFile(dst, "wb", mtime=0) as g:
            g.write(b"".join(lines))
        out.append(dst)
    return out


def write_sweep(folder: Path, recordings: list[Path], *, name: str = "small", extra: str = "",
                params: str | None = None, objective: str | None = None) -> Path:
    """A sweep file over 2 x 2 params and the given recordings (symbol from the file name)."""
    recs = "\n".join(f"  - path: {p}\n    symbols: [{p.name.split('-')[2].upper()}]" for p in recordings)
    params = params or ("  permission.cooldown_s: {values: [5, 30]}\n"
                        "  regime.fast_move_x: {low: 2, high: 5, count: 2}")
    objective = objective or ("objective:\n  - {name: tradable, maximize: decision.tradable_share}\n"
                              "  - {name: markout, maximize: exec.markout_5s_bps}")
    text = (f"sweep: {name}\nbase: {REPO / 'configs' / 'default.yaml'}\nrecordings:\n{recs}\n"
            f"params:\n{params}\n{objective}\n"
            "constraints:\n  - exec.fills == 0 or exec.markout_5s_bps >= -20\n"
            f"figures: {{warmup_s: 5}}\nout: out-{name}\n{extra}")
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A real Dask scheduler and two single-threaded workers, separate processes on 127.0.0.1,
    torn down after the tests."""
    pytest.importorskip("distributed")
    from framework.sweep.cluster import LoopbackCluster

    folder = tmp_path_factory.mktemp("cluster")
    env = {"EXECLAB_SWEEP_CACHE": str(folder / "worker-cache"), "PYTHONPATH": str(REPO)}
    with LoopbackCluster(2, folder, env) as address:
        yield address
