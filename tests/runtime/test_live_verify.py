"""A live run re-created exactly: its frames plus RUN/live.jsonl (the wall-clock ticks and the
connection events a frames file cannot hold) re-run to the same log, whether the session ended,
was stopped, or was killed. Against a real local websocket server speaking Binance's format."""

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from framework.audit.verify import verify_run
from framework.cli import main
from framework.market.fake_server import FakeBinance
from framework.market.replay import read_frames
from framework.runtime import auditlog
from framework.runtime.run import StopFlag, run_session
from framework.runtime.rundir import read_log
from framework.spec.session import load_session
from tests.support import REPO

FRAMES = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"


class ServerThread:
    """The fake Binance server on its own event loop, so the session runs as it would live."""

    def __init__(self, frames, speed):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.frames, self.speed = frames, speed
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = FakeBinance(self.frames, speed=self.speed)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def drop(self):
        self.loop.call_soon_threadsafe(self.server.drop)

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def live_config(tmp_path, url, duration_s=60):
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"""\
session: live-verify
doc: live against the local fake server
symbols: [BTCUSDT]
source: {{kind: live, market: spot, url: "{url}", duration_s: {duration_s}}}
overrides: {{regime.unstable_exit_s: 0.5, health.recover_s: 0.3}}
""")
    return cfg


def test_a_live_run_with_a_reconnect_re_runs_to_a_byte_identical_log(tmp_path, capsys):
    frames = list(itertools.islice(read_frames(FRAMES), 6000))
    with ServerThread(frames, speed=10.0) as srv:
        stop = StopFlag()
        seen = {"dropped": False, "reconnected": False}

        def observer(record):
            if record["kind"] == "transition" and record["machine"] == "health" and record["from"] == "RED":
                if not seen["dropped"]:
                    seen["dropped"] = True
                    srv.drop()
                elif seen["reconnected"]:
                    stop.set = True
            if record["kind"] == "feed" and record["event"] == "reconnect":
                seen["reconnected"] = True

        out = tmp_path / "run"
        run_session(load_session(live_config(tmp_path, srv.server.url)), out, stop=stop, observer=observer)
    records = list(read_log(out))
    assert {"connect", "disconnect", "reconnect"} <= {r["event"] for r in records if r["kind"] == "feed"}
    journal = [json.loads(x) for x in (out / "live.jsonl").read_text().splitlines()]
    assert any("advance" in e for e in journal) and any("feed" in e for e in journal) and journal[-1]["end"]
    res = verify_run(out)
    assert res.identical, res.as_dict()
    assert main(["verify", str(out)]) == 0
    assert "byte-identical" in capsys.readouterr().out


def test_a_live_run_killed_right_after_any_log_flush_verifies_up_to_there(tmp_path, monkeypatch, capsys):
    """The run directory as a kill would leave it, copied after records reach the disk: the
    frames behind every logged line are on disk before it, so each copy re-runs to its log (the
    first copy, before any frame reached the disk, too)."""
    monkeypatch.setattr(auditlog, "FLUSH_EVERY_S", 0.0)  # every record reaches the disk at once
    frames = list(itertools.islice(read_frames(FRAMES), 4000))
    out = tmp_path / "run"
    copies = []
    stop = StopFlag()

    def observer(record):
        if record["kind"] == "metrics" or not copies:  # the first: before any frame is on disk
            copies.append(shutil.copytree(out, tmp_path / f"killed-{len(copies)}"))
            stop.set = len(copies) >= 6

    with ServerThread(frames, speed=20.0) as srv:
        run_session(load_session(live_config(tmp_path, srv.server.url)), out, stop=stop, observer=observer)
    assert len(copies) == 6
    for copy in copies:
        (copy / "summary.json").unlink(missing_ok=True)
        code = main(["verify", str(copy)])
        text = capsys.readouterr().out
        assert code == 0 and "interrupted" in text, text


def _start_live(cfg, out):
    return subprocess.Popen([sys.executable, "-m", "framework.cli", "run", str(cfg), "--no-progress", "--out", str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_metrics(log, n, proc, timeout_s=120):
    """A bounded wait on a condition: n metrics records (seconds of event time) are on disk."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.is_file() and log.read_bytes().count(b'"kind":"metrics"') >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{log} never reached {n} metrics records")


def test_live_runs_stopped_by_sigterm_or_killed_verify_up_to_where_they_stopped(tmp_path, capsys):
    frames = list(itertools.islice(read_frames(FRAMES), 20000))
    with ServerThread(frames, speed=2.0) as srv:
        cfg = live_config(tmp_path, srv.server.url)
        outs = {}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            out = outs[sig] = tmp_path / f"run-{sig.name}"
            proc = _start_live(cfg, out)
            _wait_for_metrics(out / "log.jsonl", 3, proc)
            os.kill(proc.pid, sig)
            proc.communicate(timeout=60)
    stopped = list(read_log(outs[signal.SIGTERM]))
    assert stopped[-1]["end_reason"] == "stopped by SIGTERM"
    assert main(["verify", str(outs[signal.SIGTERM])]) == 0, capsys.readouterr().out
    assert "ended early (stopped by SIGTERM" in capsys.readouterr().out
    killed = list(read_log(outs[signal.SIGKILL]))
    assert killed[-1]["kind"] != "session_end"
    code = main(["verify", str(outs[signal.SIGKILL])])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"interrupted at line {len(killed)}" in text
