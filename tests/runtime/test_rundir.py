"""The run directory: never overwritten, locked while a session writes it, and output faults
(a full disk, a file size limit, special or unwritable paths) end a run with a message and exit 2,
its log readable up to its last complete line. Real files, real processes, no mocks."""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framework.cli import main
from framework.runtime.auditlog import AuditLog, LogLines
from framework.runtime.commands import default_out_dir
from framework.runtime.run import run_session
from framework.runtime.rundir import RunDirLock, claim_run_dir, read_log
from framework.spec.session import load_session
from tests.support import REPO

RECORDING = str(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz")
EXCERPT = str(REPO / "data" / "BTCUSDT-trades-2021-05-19.excerpt.csv")


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, **kw)


def small_config(tmp_path, output, source=EXCERPT):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"""\
session: small
doc: a short replay
symbols: [BTCUSDT]
source: {{kind: replay, path: {source}}}
output:
{output}""")
    return cfg


def quick_run(out, *extra):
    return main(["run", "--replay", EXCERPT, "--no-progress", "--out", str(out), *extra])


# --- never overwritten ---------------------------------------------------------------------------

def test_a_second_session_into_a_run_directory_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "run"
    assert quick_run(out) == 0
    first = (out / "log.jsonl").read_bytes()
    (out / "reloads.jsonl").write_text("{}\n")  # a file the previous run might have left
    capsys.readouterr()
    assert quick_run(out) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--force" in err
    assert (out / "log.jsonl").read_bytes() == first  # untouched
    assert quick_run(out, "--force") == 0
    assert not (out / "reloads.jsonl").exists()  # the previous run's files are gone, not mixed in
    assert (out / "log.jsonl").read_bytes() == first  # same input, same log
    assert not (out / ".lock").exists()  # released at the end


def test_a_directory_with_other_files_is_refused_and_an_empty_one_is_taken(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert quick_run(tmp_path) == 2
    assert "already holds files" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert quick_run(empty) == 0


def test_two_sessions_started_in_the_same_second_get_two_directories(tmp_path):
    session = load_session(REPO / "configs" / "default.yaml")
    session.data["output"] = {"dir": str(tmp_path)}
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    a, b = default_out_dir(session, now), default_out_dir(session, now)
    assert a == b  # the same name...
    ra = run_session(session, a, replay=[EXCERPT], unique=True)
    rb = run_session(session, b, replay=[EXCERPT], unique=True)
    assert ra.out_dir != rb.out_dir  # ...two directories
    assert ra.out_dir == a and rb.out_dir.name == a.name + "-2"
    assert (ra.out_dir / "log.jsonl").read_bytes() == (rb.out_dir / "log.jsonl").read_bytes()


HOLDER = """
import os, signal, sys
from pathlib import Path
from framework.runtime.rundir import claim_run_dir
out, lock = claim_run_dir(Path(sys.argv[1]))
print("locked", os.getpid(), flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


def test_a_directory_a_living_session_holds_is_refused_even_with_force(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), "hold"], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().split()[0] == "locked"
        res = cli("run", "--replay", EXCERPT, "--no-progress", "--out", str(out), "--force")
        assert res.returncode == 2, res.stderr
        assert f"in use: session process {holder.pid}" in res.stderr and "Traceback" not in res.stderr
        assert not (out / "log.jsonl").exists()
    finally:
        holder.stdin.close()
        holder.wait(60)
    # The holder has gone: the directory is free again (and empty: no --force needed).
    assert cli("run", "--replay", EXCERPT, "--no-progress", "--out", str(out)).returncode == 0


def test_a_stale_lock_from_a_killed_session_is_recognised(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.run([sys.executable, "-c", HOLDER, str(out), "die"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    word, pid = holder.stdout.split()
    assert holder.returncode == -signal.SIGKILL and word == "locked"
    lock_file = out / ".lock"
    assert int(lock_file.read_text()) == int(pid)  # the dead process's lock file is still there
    lock = RunDirLock(out)
    try:
        assert lock.stale_pid == int(pid)
        assert int(lock_file.read_text()) == os.getpid()
    finally:
        lock.release()
    assert quick_run(out) == 0  # only the lock file was there: a new run takes the directory


def test_claim_releases_the_lock_when_it_refuses(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(Exception, match="already holds"):
        claim_run_dir(tmp_path)
    out, lock = claim_run_dir(tmp_path, force=True)  # lockable again: the refusal released it
    lock.release()
    assert (tmp_path / "x").exists()  # --force removes a run's files, never anything else


# --- special and unwritable output paths ---------------------------------------------------------

@pytest.mark.parametrize("target", ["/dev/null", "/dev/full", "regular-file", "/"])
def test_out_that_cannot_be_a_run_directory_is_a_clear_error(tmp_path, target):
    if target == "regular-file":
        target = tmp_path / "file.txt"
        target.write_text("keep me")
    res = cli("run", "--replay", EXCERPT, "--no-progress", "--out", str(target))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert ("not a directory" in res.stderr) or ("filesystem root" in res.stderr)
    if isinstance(target, Path):
        assert target.read_text() == "keep me"


@pytest.mark.parametrize("target", ["/dev/null", "regular-file", "/"])
def test_output_dir_in_the_config_that_cannot_hold_runs_is_a_file_line_error(tmp_path, target):
    if target == "regular-file":
        target = tmp_path / "file.txt"
        target.write_text("keep me")
    cfg = small_config(tmp_path, f"  dir: {target}\n")
    before = set(os.listdir("/"))
    res = cli("run", str(cfg), "--no-progress")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    line = cfg.read_text().splitlines().index(f"  dir: {target}") + 1
    assert f"{cfg}:{line}:" in res.stderr and "output.dir" in res.stderr
    assert set(os.listdir("/")) == before  # nothing written at the filesystem root


def _without_root_overrides():
    """Root writes anywhere: drop the capabilities that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
    from the bounding set, so the session runs under ordinary permission checks."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unwritable_directory_is_a_clear_error(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    res = cli("run", "--replay", EXCERPT, "--no-progress", "--out", str(parent / "run"),
              preexec_fn=_without_root_overrides)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "cannot create the run directory (Permission denied)" in res.stderr


def _limit_file_size(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("compress", [False, True])
def test_a_full_disk_stops_the_run_with_a_message_and_a_log_valid_to_its_last_line(tmp_path, compress):
    cfg = small_config(tmp_path, f"  compress: {str(compress).lower()}\n", source=RECORDING)
    complete = list(read_log(run_session(load_session(cfg), tmp_path / "full").out_dir))
    out = tmp_path / "run"
    full = tmp_path / "full"
    biggest_other = max(f.stat().st_size for f in full.rglob("*") if f.is_file() and not f.name.startswith("log."))
    limit = 100_000 if not compress else biggest_other + 4_000  # the snapshot fits; the log does not
    assert (full / ("log.jsonl.gz" if compress else "log.jsonl")).stat().st_size > limit
    res = cli("run", str(cfg), "--no-progress", "--out", str(out), preexec_fn=_limit_file_size(limit))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "cannot write (File too large)" in res.stderr and "valid up to its last complete line" in res.stderr
    log = out / ("log.jsonl.gz" if compress else "log.jsonl")
    assert 0 < log.stat().st_size <= limit
    records = list(read_log(out))
    assert 0 < len(records) < len(complete)
    assert records == complete[: len(records)]  # a prefix of the whole log, not a byte of garbage


def test_a_write_to_a_full_device_fails_once_and_leaves_what_was_written(tmp_path):
    log = AuditLog(tmp_path / "log.jsonl")
    log.emit({"kind": "session_start", "ts_ns": 0, "symbol": ""})
    log.flush()
    log._raw.close()
    log._raw = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 - the device that is always full
    log.emit({"kind": "metrics", "ts_ns": 1, "symbol": ""})
    with pytest.raises(OSError) as exc:
        log.flush()
    assert exc.value.errno == 28 and exc.value.filename == str(tmp_path / "log.jsonl")
    log.emit({"kind": "metrics", "ts_ns": 2, "symbol": ""})
    with pytest.raises(OSError):
        log.flush()  # failed once: nothing more is written
    log.abandon()
    assert [json.loads(x)["kind"] for x in LogLines(tmp_path / "log.jsonl")] == ["session_start"]


def test_a_link_to_the_filesystem_root_is_refused_even_with_force(tmp_path):
    link = tmp_path / "root"
    link.symlink_to("/")
    before = set(os.listdir("/"))
    res = cli("run", "--replay", EXCERPT, "--no-progress", "--out", str(link), "--force")
    assert res.returncode == 2 and "filesystem root" in res.stderr
    assert set(os.listdir("/")) == before
