"""SIGINT and SIGTERM end a session promptly with a summary, on every path: the replay fast path,
event by event, paced, and live; also while the clock crosses a long gap in the data.

Each test runs the real command in a subprocess, waits until its log shows the session is
under way, sends a real signal and waits for the exit. The time from signal to exit is
printed; the bound asserted is a hang detector only, far above the expected fraction of a
second.
"""

from __future__ import annotations

import gzip
import itertools
import json
import signal
import subprocess
import sys
import time

import pytest

from framework.market.replay import read_frames
from framework.runtime.rundir import read_log
from tests.runtime.test_live_session import ServerThread
from tests.support import REPO

S = 1_000_000_000
DATA = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"
HANG_S = 30  # far above the fraction of a second a stop takes: only a hang fails this


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """The shipped recording ten times over, after a first copy and a 30-day gap: long enough
    that no path can finish before the signal, and a gap the clock must cross."""
    frames = list(read_frames(DATA))
    span = frames[-1][0] - frames[0][0] + S
    path = tmp_path_factory.mktemp("signals") / "long.frames.gz"
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        for copy in range(10):
            shift = copy * span + (30 * 86_400 * S if copy else 0)
            for ts, raw in frames:
                f.write(f"{ts + shift} {raw}\n")
    return path, frames[-1][0]  # and when the gap starts


def wait_past(out, ts_ns, proc, timeout_s=120):
    """A bounded wait on a condition: the log has a record later than ``ts_ns`` (the session is
    crossing the gap, or past it)."""
    path = out / "log.jsonl"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file():
            raw = path.read_bytes()
            tail = raw[: raw.rfind(b"\n") + 1].splitlines()[-50:]
            if any(json.loads(line)["ts_ns"] > ts_ns for line in tail):
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{path} never went past {ts_ns}")


def wait_for_lines(path, n, proc, timeout_s=120):
    """A bounded wait on a condition: the log has at least n complete lines."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def stop_and_check(proc, out, sig, lines=3):
    try:
        wait_for_lines(out / "log.jsonl", lines, proc)
    except BaseException:
        proc.kill()  # never leave a session running behind a failed test
        proc.communicate()
        raise
    return signal_and_check(proc, out, sig)


def signal_and_check(proc, out, sig):
    sent = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=HANG_S + 30)
    took = time.monotonic() - sent
    print(f"{sig.name}: exit {took:.3f} s after the signal")
    assert took < HANG_S
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"stopped by {sig.name}" in stdout
    records = list(read_log(out))
    assert records[-1]["kind"] == "session_end" and records[-1]["end_reason"] == f"stopped by {sig.name}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["end_reason"] == f"stopped by {sig.name}"
    return summary


@pytest.mark.parametrize(("extra", "path", "sig"), [
    ([], "blocks", signal.SIGINT),
    (["--scalar"], "events", signal.SIGTERM),
    (["--speed", "1000"], "events", signal.SIGINT),  # paced: the gap is a 43-minute wait
])
def test_a_signal_ends_a_replay_with_a_summary_even_across_a_long_gap(tmp_path, long_recording, extra, path, sig):
    recording, gap_start = long_recording
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "framework.cli", "run", "--no-progress", "--replay",
                             str(recording), "--out", str(out), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if "--speed" in extra:  # nothing is written (or flushed) while a paced replay waits
        summary = stop_and_check(proc, out, sig)  # the first copy lasts 0.4 s: the wait follows
    else:
        try:
            wait_past(out, gap_start - 2 * S, proc)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        summary = signal_and_check(proc, out, sig)
    assert summary["wall"]["path"] == path


def test_a_signal_ends_a_live_session_with_a_summary(tmp_path):
    frames = list(itertools.islice(read_frames(DATA), 20000))
    with ServerThread(frames, speed=1.0) as srv:
        cfg = tmp_path / "live.yaml"
        cfg.write_text(f"""\
session: live-signal
doc: live against the local fake server, stopped by a signal
symbols: [BTCUSDT]
source: {{kind: live, market: spot, url: "{srv.server.url}", duration_s: 600}}
intents: {{generator: none}}
""")
        out = tmp_path / "run"
        proc = subprocess.Popen([sys.executable, "-m", "framework.cli", "run", str(cfg), "--no-progress",
                                 "--out", str(out)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        summary = stop_and_check(proc, out, signal.SIGTERM, lines=5)
    assert summary["events"] > 0
