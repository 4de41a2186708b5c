"""``execlab bench --e2e``: runs ``execlab run`` as a whole process on a small recording, and the
peers script next to it; prints every figure (never asserts on timing). The peers are an
optional extra: without them the bench says so and still prints ours."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import subprocess
import sys

import pytest

from framework.bench.e2e import repeated_recording
from framework.cli import main
from tests.support import REPO

DEFAULT = REPO / "configs" / "default.yaml"
RECORDING = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"
PEERS = {"nautilus": importlib.util.find_spec("nautilus_trader"), "hftbacktest": importlib.util.find_spec("hftbacktest")}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The first 4,000 lines of the default recording (about 40 s of market data)."""
    path = tmp_path_factory.mktemp("e2e") / "small.frames.gz"
    with gzip.open(RECORDING, "rb") as f:
        lines = [next(f) for _ in range(4000)]
    path.write_bytes(gzip.compress(b"".join(lines)))
    return path


def test_e2e_prints_every_figure(small, capsys):
    assert main(["bench", str(DEFAULT), "--e2e", "--recording", str(small), "--repeat", "2", "--runs", "1",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["frames"] == 8000 and r["runs"] == 1
    ours = r["ours"]
    assert ours["best_s"] > 0 and math.isfinite(ours["best_s"]) and ours["cpu_s"] > 0
    assert ours["path"] == "blocks"  # the replay fast path, as a user's `execlab run`
    assert ours["events"] > 7000
    for figure in ("help", "default_run"):  # start-up: whole processes, warm
        assert r["startup"][figure]["best_s"] > 0 and r["startup"][figure]["cpu_s"] > 0
    peers = r["peers"]
    for name, spec in PEERS.items():
        for mode in ("noop", "orders"):
            if spec is None:
                assert any(f"{name}" in n and "not installed" in n for n in peers["notes"]), peers
            else:
                p = peers[f"{name}_{mode}"]
                assert p["best_s"] > 0 and p["events"] > 7000, p
                assert (p["orders"] > 0) == (mode == "orders")


def test_e2e_table_names_every_row(small, capsys):
    assert main(["bench", str(DEFAULT), "--e2e", "--recording", str(small), "--repeat", "1", "--runs", "1",
                 "--no-startup"]) == 0
    out = capsys.readouterr().out
    assert "start-up" not in out
    assert "execlab run (default.yaml)" in out and "4,000 frames" in out and "load average" in out
    for name, spec in PEERS.items():
        assert ("not installed" in out) if spec is None else (name in out)
    assert "conversion of the frames to their input format is not timed" in out


def test_e2e_refuses_a_missing_recording_and_bad_counts(tmp_path, capsys):
    assert main(["bench", "--e2e", "--recording", str(tmp_path / "none.frames.gz")]) == 2
    assert main(["bench", "--e2e", "--repeat", "0"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "expected at least 1" in err


def test_e2e_with_a_missing_peers_interpreter_still_prints_ours(small, tmp_path, capsys):
    assert main(["bench", str(DEFAULT), "--e2e", "--recording", str(small), "--repeat", "1", "--runs", "1",
                 "--peers-python", str(tmp_path / "no-python")]) == 0
    out = capsys.readouterr().out
    assert "execlab run (default.yaml)" in out and "peers not run" in out and "no-python" in out
    assert "execlab --help" in out and "execlab run (the default session)" in out


def test_repeated_recording_shifts_each_copy_after_the_last(tmp_path, small):
    out = tmp_path / "x3.frames.gz"
    assert repeated_recording(small, out, 3) == 12000
    lines = gzip.decompress(out.read_bytes()).splitlines()
    stamps = [int(ln.split(b" ", 1)[0]) for ln in lines]
    first, last = stamps[:4000], stamps[-4000:]
    assert stamps[4000] - stamps[3999] >= 1_000_000_000  # a copy starts after the one before
    assert [b - a for a, b in zip(first, first[1:], strict=False)] == [b - a for a, b in zip(last, last[1:], strict=False)]
    assert [ln.split(b" ", 1)[1] for ln in lines[:4000]] == [ln.split(b" ", 1)[1] for ln in lines[-4000:]]


def test_peers_script_converts_the_same_frames_ours_reads(tmp_path, small):
    """The peers get the quotes and trades our decoder yields, stamped alike."""
    from framework.market.events import Quote, Trade
    from framework.market.replay import open_replay

    out = tmp_path / "conv"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "peers.py"), "convert", str(small), str(out)],
                          capture_output=True, text=True, check=True)
    meta = json.loads(proc.stdout)
    evs = list(open_replay(small))
    assert meta["quotes"] == sum(type(e) is Quote for e in evs)
    assert meta["trades"] == sum(type(e) is Trade for e in evs)
    assert meta["symbol"] == "BTCUSDT" and meta["price_dp"] == 2
    import numpy as np

    cols = np.load(out / "columns.npz")
    assert cols["quotes"]["ts"].tolist() == [e.ts_ns for e in evs if type(e) is Quote]
    assert cols["trades"]["price"].tolist() == [e.price for e in evs if type(e) is Trade]
