"""`execlab explain RUN --at T --why-not MACHINE[:STATE]` names the false clause, the values read
and the thresholds in force, checked against the run's own log."""

import json
import re
import subprocess
import sys

import pytest

from framework.audit.runlog import load_records, run_machine_set
from framework.audit.whynot import format_why_not, why_not
from tests.diagrams.gate_machine import GATE

from .conftest import REPO

NS = 1_000_000_000


def _stints(records, machine, state):
    """(start, end) of every stay of ``machine`` in ``state``."""
    out, start = [], None
    first = next(r for r in records if r["kind"] == "session_start")
    if first["initial"]["BTCUSDT"][machine] == state:
        start = first["ts_ns"]
    for r in records:
        if r["kind"] == "transition" and r["machine"] == machine:
            if r["to"] == state:
                start = r["ts_ns"]
            elif r["from"] == state and start is not None:
                out.append((start, r["ts_ns"]))
                start = None
    return out


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory):
    """The shock scenario with a test machine of known guards running beside the shipped ones."""
    from framework.runtime.run import run_session
    from framework.spec.session import load_session

    tmp = tmp_path_factory.mktemp("gate")
    (tmp / "gate.yaml").write_text(GATE)
    config = tmp / "shock-gate.yaml"
    text = (REPO / "configs" / "scenario-shock.yaml").read_text().replace("path: scenarios/", f"path: {REPO}/configs/scenarios/")
    config.write_text(text + f"machines:\n  extra: [{tmp / 'gate.yaml'}]\n")
    run_session(load_session(config), tmp / "run")
    return tmp / "run"


def test_the_false_clauses_are_named_with_the_values_read_and_the_thresholds(gate_run):
    records = load_records(gate_run)
    machine_set = run_machine_set(gate_run)
    p = {k: v.value for k, v in machine_set.machine("gate").params.items()}
    # a metrics sample well inside the longest stay in CLOSED
    start, end = max(_stints(records, "gate", "CLOSED"), key=lambda s: s[1] - s[0])
    sample = next(r for r in records if r["kind"] == "metrics" and start + 2 * NS < r["ts_ns"] < end - NS)
    at = sample["ts_ns"] + NS // 2
    a = why_not(records, machine_set, at, "gate:WAITING")
    assert a["state"] == "CLOSED"
    (rule,) = a["rules"]
    assert rule["to"] == "WAITING" and re.fullmatch(r".+\.yaml:\d+", rule["where"])  # the run's copy of the file
    when = next(x for x in rule["parts"] if x["kind"] == "when")
    v = sample["values"]
    reference = [  # brute force: the rule's two clauses evaluated by hand from the sample
        v["spread_bps"] < p["wide_spread_bps"] * p["exit_ratio"],
        v["quote_age_ms"] < p["stale_quote_ms"] * p["exit_ratio"],
    ]
    assert [c["holds"] for c in when["clauses"]] == reference
    assert not all(reference), "the sample is inside CLOSED, so some condition to leave is false"
    first = when["clauses"][0]
    assert first["text"] == "spread < 3.5 bps (5 bps × 0.7)"
    (read,) = first["read"]
    assert read["name"] == "metrics.spread_bps" and read["value"] == v["spread_bps"]
    assert read["age_s"] == 0.5 and read["source"] == "recorded"
    text = format_why_not(a)
    for clause, ok in zip(when["clauses"], reference, strict=True):
        assert f"{'✓' if ok else '✗'} {clause['connector'] + ' ' if clause['connector'] else ''}{clause['text']}" in text
    assert "0.500 s before T" in text


def test_timers_say_how_long_against_how_long_needed(gate_run):
    records = load_records(gate_run)
    machine_set = run_machine_set(gate_run)
    start, _ = _stints(records, "gate", "WAITING")[0]
    a = why_not(records, machine_set, start + 5 * NS, "gate:OPEN")
    (rule,) = a["rules"]
    after = next(x for x in rule["parts"] if x["kind"] == "after")
    # no entry into CLOSED yet (the initial state is not an entry): min(30 s × 2^max(0 − 1, 0), 600 s)
    assert not after["holds"] and after["in_state_s"] == 5.0 and after["needed_s"] == 30
    assert "✗ after min(30 s × 2^max(n − 1, 0), 600 s): in WAITING for 5.000 s of 30 s needed" in format_why_not(a)

    rise = next(r for r in records if r["kind"] == "transition" and r["machine"] == "health" and "held_s" in r["inputs"])
    needed = machine_set.machine("health").params["recover_s"].value
    a = why_not(records, machine_set, rise["ts_ns"] - NS, f"health:{rise['to']}")
    hold = next(x for x in a["rules"][0]["parts"] if x["kind"] == "for")
    assert not hold["holds"] and hold["needed_s"] == needed
    assert 0 < hold["held_s"] < needed
    assert f"of {needed:g} s needed" in format_why_not(a)


def test_values_not_recorded_at_t_say_so(gate_run):
    records = load_records(gate_run)
    start = next(r for r in records if r["kind"] == "session_start")["ts_ns"]
    first_metrics = next(r for r in records if r["kind"] == "metrics")["ts_ns"]
    a = why_not(records, run_machine_set(gate_run), start + 1, "gate")
    reads = [r for rule in a["rules"] for part in rule["parts"] for c in part.get("clauses", []) for r in c["read"]
             if r["name"].startswith("metrics.")]
    assert reads and all(r["source"] == "recorded after T only" and r["age_s"] == (start + 1 - first_metrics) / NS
                         for r in reads)
    assert "recorded after T only at" in format_why_not(a)


def test_cli_why_not(gate_run):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "framework.cli", "explain", str(gate_run), *args],
                              capture_output=True, text=True, cwd=REPO)

    proc = cli("--at", "+45", "--why-not", "gate:WAITING")  # open after the first 30 s wait
    assert proc.returncode == 0, proc.stderr
    assert "no rule leads from OPEN to WAITING; rules into WAITING leave CLOSED" in proc.stdout
    proc = cli("--at", "+45", "--why-not", "gate", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["state"] == "OPEN"
    proc = cli("--at", "+100000", "--why-not", "gate")
    assert proc.returncode == 0 and "note: T is outside the run" in proc.stdout
    proc = cli("--at", "+1", "--why-not", "nope")
    assert proc.returncode == 2 and "no machine 'nope'" in proc.stderr and "Traceback" not in proc.stderr


