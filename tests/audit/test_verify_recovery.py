"""``verify`` and every reader on runs that did not end cleanly, and on runs whose session was
shaped by more than its config file: torn logs, killed and stopped runs, --symbols, hot
reloads, changed input."""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.audit.diff import diff_run
from framework.audit.report import write_report
from framework.audit.runlog import load_records
from framework.audit.verify import verify_run
from framework.cli import main
from framework.runtime import reload as reload_module
from framework.runtime.run import StopFlag, run_session
from framework.runtime.rundir import read_log
from framework.spec.session import load_session
from tests.support import REPO

EXCERPT = str(REPO / "data" / "BTCUSDT-trades-2021-05-19.excerpt.csv")


def cut_log(run: Path, keep_lines: int, torn: bytes = b"") -> list[bytes]:
    """What a kill leaves: the first lines of the log, maybe with half a line after them."""
    lines = (run / "log.jsonl").read_bytes().splitlines(keepends=True)
    (run / "log.jsonl").write_bytes(b"".join(lines[:keep_lines]) + torn)
    return lines


# --- a torn last line, a killed run ----------------------------------------------------------------

def test_verify_checks_a_killed_run_with_a_torn_last_line_up_to_where_it_stopped(run_copy, capsys):
    lines = cut_log(run_copy, 700, b'{"kind":"metrics","sy')
    res = verify_run(run_copy)
    assert res.identical and res.interrupted_at == 700 and res.torn_bytes == len(b'{"kind":"metrics","sy')
    assert main(["verify", str(run_copy)]) == 0
    out = capsys.readouterr().out
    assert "interrupted at line 700 (no session_end); verified up to there" in out and "torn" in out
    assert len(lines) > 700  # the re-run went on past the cut; only the prefix was compared


def test_verify_of_a_killed_run_still_finds_a_divergence_before_the_cut(run_copy, capsys):
    lines = cut_log(run_copy, 700)
    k = next(i for i, line in enumerate(lines) if b'"kind":"transition"' in line and i > 1)
    lines[k] = lines[k].replace(b'"kind":"transition"', b'"kind":"transition","forged":1')
    (run_copy / "log.jsonl").write_bytes(b"".join(lines[:700]))
    res = verify_run(run_copy)
    assert not res.identical and res.divergence.line == k + 1 and res.divergence.field == "forged"
    assert main(["verify", str(run_copy)]) == 1
    assert "DIVERGED" in capsys.readouterr().out


def test_explain_report_and_diff_read_a_torn_run_up_to_its_last_complete_line(run_copy, tmp_path, capsys):
    cut_log(run_copy, 900, b'{"kind":"transi')
    records = load_records(run_copy)
    assert len(records) == 900 and records == list(read_log(run_copy))
    assert main(["explain", str(run_copy), "--at", "+200"]) == 0
    out = write_report(run_copy, tmp_path / "r.html")
    assert out.is_file() and "<svg" in out.read_text()
    d = diff_run(run_copy, ["permission.probation_s=20"])
    assert d["first_divergence"] is not None


def test_a_complete_line_that_is_not_json_is_an_error_at_its_line(run_copy, capsys):
    lines = cut_log(run_copy, 50)
    lines[9] = b"garbage\n"
    (run_copy / "log.jsonl").write_bytes(b"".join(lines))
    assert main(["explain", str(run_copy), "--at", "+1"]) == 2
    assert f"{run_copy / 'log.jsonl'}:10:" in capsys.readouterr().err


def test_a_cut_off_gzip_log_reads_up_to_its_last_complete_line(tmp_path):
    cfg = tmp_path / "gz.yaml"
    cfg.write_text(f"""\
session: gz
doc: compressed log
symbols: [BTCUSDT]
source: {{kind: replay, path: {EXCERPT}}}
output: {{compress: true}}
""")
    run = run_session(load_session(cfg), tmp_path / "run").out_dir
    data = (run / "log.jsonl.gz").read_bytes()
    whole = list(read_log(run))
    assert whole and gzip.decompress(data).count(b"\n") == len(whole)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 5):
        (run / "log.jsonl.gz").write_bytes(data[:cut])
        part = list(read_log(run))
        assert part == whole[: len(part)]


# --- runs stopped early, really --------------------------------------------------------------------

def start_paced_run(out):
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_verify_passes_on_a_real_run_ended_by_a_signal(tmp_path, sig, capsys):
    out = tmp_path / "run"
    proc = start_paced_run(out)
    wait_for_log_lines(out / "log.jsonl", 2, proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    records = list(read_log(out))
    assert main(["verify", str(out)]) == 0, capsys.readouterr().out
    text = capsys.readouterr().out
    if sig == signal.SIGTERM:
        assert records[-1]["end_reason"] == "stopped by SIGTERM"
        assert f"ended early (stopped by SIGTERM, after {records[-1]['events']} events)" in text
    else:
        assert f"interrupted at line {len(records)}" in text


def test_verify_re_runs_a_stopped_run_to_the_same_event(tmp_path, capsys):
    stop = StopFlag()
    seen = [0]

    def observer(record):
        seen[0] += 1
        if seen[0] == 800:
            stop.trip(signal.SIGINT)

    run = run_session(load_session(REPO / "configs" / "scenario-shock.yaml"), tmp_path / "run", stop=stop,
                      observer=observer, scalar=True).out_dir
    end = load_records(run)[-1]
    assert end["end_reason"] == "stopped by SIGINT" and end["events"] > 0
    res = verify_run(run)
    assert res.identical, res.as_dict()
    assert res.end_reason == "stopped by SIGINT" and res.end_events == end["events"]


# --- what shaped the session besides its config ------------------------------------------------------

def test_verify_passes_on_a_run_made_with_symbols(tmp_path, capsys):
    out = tmp_path / "run"
    eth = str(REPO / "data" / "binance-spot-ethusdt-20240808.frames.gz")  # the config trades BTCUSDT
    assert main(["run", "--replay", eth, "--symbols", "ETHUSDT", "--no-progress", "--out", str(out)]) == 0
    assert load_records(out)[0]["symbols"] == ["ETHUSDT"]
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0, capsys.readouterr().out


def test_verify_refuses_a_run_whose_recording_changed(tmp_path, capsys):
    rec = tmp_path / Path(EXCERPT).name
    shutil.copy(EXCERPT, rec)
    out = tmp_path / "run"
    assert main(["run", "--replay", str(rec), "--no-progress", "--out", str(out)]) == 0
    with open(rec, "a") as f:
        f.write(rec.read_text().splitlines()[-1] + "\n")
    capsys.readouterr()
    assert main(["verify", str(out)]) == 2
    assert "changed since the run" in capsys.readouterr().err


@pytest.fixture
def editable_session(tmp_path):
    machines = tmp_path / "machines"
    shutil.copytree(REPO / "machines", machines)
    scenario = tmp_path / "calm.yaml"
    scenario.write_text((REPO / "configs" / "scenarios" / "calm.yaml").read_text().replace("duration_s: 600", "duration_s: 90"))
    cfg = tmp_path / "session.yaml"
    cfg.write_text(f"""\
session: reload
doc: a session whose machines are edited while it runs
symbols: [BTCUSDT]
source: {{kind: scenario, path: {scenario}, seed: 3}}
machines:
  metrics: machines/metrics.yaml
  regime: machines/regime.yaml
  permission: machines/permission.yaml
  health: machines/health.yaml
  decision: machines/decision.yaml
""")
    return cfg, machines


def test_verify_re_applies_hot_reloads_at_the_event_they_came_before(editable_session, tmp_path, monkeypatch, capsys):
    cfg, machines = editable_session
    monkeypatch.setattr(reload_module, "CHECK_EVERY_S", 0.0)  # look at the files before every event
    regime = machines / "regime.yaml"
    original = regime.read_text()
    edits = {20: original.replace("value: 5.0\n", "value: 0.0001\n", 1),  # accepted
             40: original[: len(original) // 2],  # cut in the middle: refused
             60: original}  # accepted again
    seen = [0]

    def observer(record):
        seen[0] += 1
        if seen[0] in edits:
            regime.write_text(edits[seen[0]])

    out = tmp_path / "run"
    run_session(load_session(cfg), out, watch=True, observer=observer)
    reloads = [r for r in load_records(out) if r["kind"] == "config_reload"]
    assert True in [r["accepted"] for r in reloads]  # (a stability check may merge two edits into one reload)
    res = verify_run(out)
    assert res.identical, res.as_dict()
    assert main(["verify", str(out)]) == 0
    # The re-run does not read the edited files: the run directory holds what each reload applied.
    regime.write_text("not: [a machine")
    assert verify_run(out).identical


def test_a_run_killed_after_its_first_line_verifies_that_line(run_copy):
    os.remove(run_copy / "summary.json")  # a killed run has none either
    cut_log(run_copy, 1)
    res = verify_run(run_copy)
    assert res.identical and res.interrupted_at == 1 and not res.notes


def test_verify_of_a_run_still_being_written_says_so(run_copy):
    from framework.runtime.rundir import RunDirLock

    cut_log(run_copy, 400)
    lock = RunDirLock(run_copy)  # as the session writing it holds it
    try:
        res = verify_run(run_copy)
    finally:
        lock.release()
    assert res.identical and res.interrupted_at == 400
    assert any(f"still going (session process {os.getpid()}" in n for n in res.notes)


def test_validate_log_names_the_torn_last_line_and_the_missing_end(run_copy):
    from framework.audit.logschema import validate_log

    cut_log(run_copy, 300, b'{"kind":"met')
    problems = validate_log(run_copy)
    assert len(problems) == 2, problems
    assert "log.jsonl:300: the last record is not session_end" in problems[0]
    assert problems[1].startswith("log.jsonl:301: torn last line (12 bytes without a newline)")


def test_a_live_run_without_its_journal_cannot_be_verified_and_says_so(run_copy, capsys):
    meta = json.loads((run_copy / "session.json").read_text())
    meta["source"] = {"kind": "live", "files": []}
    (run_copy / "session.json").write_text(json.dumps(meta))
    assert main(["verify", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert "live.jsonl" in err and "cannot be re-created" in err and "DIVERGED" not in err


def test_report_and_diagrams_to_a_full_or_special_path_are_clear_errors(shock_run, capsys):
    assert main(["report", str(shock_run), "--out", "/dev/full"]) == 2
    assert "/dev/full:0:0: cannot write (No space left on device)" in capsys.readouterr().err
    assert main(["diagrams", "--run", str(shock_run), "--out", "/dev/null"]) == 2
    assert "/dev/null:0:0: cannot write (not a directory)" in capsys.readouterr().err


def test_a_damaged_session_json_or_reload_journal_is_an_error_at_its_line(run_copy, capsys):
    (run_copy / "reloads.jsonl").write_text('{"event": 1, "accepted": false}\nnot json\n')
    assert main(["verify", str(run_copy)]) == 2
    assert f"{run_copy / 'reloads.jsonl'}:2:" in capsys.readouterr().err
    (run_copy / "session.json").write_text('{"source":\n')
    assert main(["verify", str(run_copy)]) == 2
    assert f"{run_copy / 'session.json'}:2:" in capsys.readouterr().err
