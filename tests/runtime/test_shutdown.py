"""Shutdown: SIGTERM ends a session cleanly; kill -9 leaves a log valid up to its last line."""

import json
import os
import signal
import subprocess
import sys
import time

from framework.runtime.rundir import read_log
from tests.support import REPO


def start_paced_run(out):
    # Paced at real time, so the session is surely still running when the signal comes.
    return subprocess.Popen([sys.executable, "-m", "framework.cli", "run", "--no-progress", "--speed", "1",
                             "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_log_lines(path, n, proc, timeout_s=60):
    """A bounded wait on a condition: the log has at least n complete lines on disk."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


def test_sigterm_cancels_orders_writes_summary_and_closes_the_log(tmp_path):
    out = tmp_path / "run"
    proc = start_paced_run(out)
    wait_for_log_lines(out / "log.jsonl", 2, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped by SIGTERM" in stdout
    records = list(read_log(out))
    assert records[-1]["kind"] == "session_end"
    assert records[-1]["end_reason"] == "stopped by SIGTERM"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["symbols"]["BTCUSDT"]["execution"]["open_orders"] == 0


def test_kill_9_leaves_a_log_valid_up_to_its_last_complete_line(tmp_path):
    out = tmp_path / "run"
    proc = start_paced_run(out)
    wait_for_log_lines(out / "log.jsonl", 2, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    raw = (out / "log.jsonl").read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    parsed = [json.loads(line) for line in complete.splitlines()]
    assert parsed[0]["kind"] == "session_start"
    assert [r["seq"] for r in parsed] == list(range(len(parsed)))
    assert list(read_log(out)) == parsed
