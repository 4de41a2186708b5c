"""Paper sessions end to end: what the design promises, checked on real runs."""

import subprocess
import sys

from framework.machines.decision import AGGRESSIVENESS_RANK
from framework.runtime.run import run_session
from framework.spec.session import load_session
from tests.support import REPO, read_records


def states_over_time(records):
    """(record, {machine: state}, decision) replayed from the log alone.

    The layers of one event write their records one after another (transitions, then the
    decision), so states are consistent once every record of that event time has been read."""
    start = next(r for r in records if r["kind"] == "session_start")
    states = dict(start["initial"]["BTCUSDT"])
    decision = dict(start["decision"]["BTCUSDT"])
    pending = []
    for i, r in enumerate(records):
        if r["kind"] == "transition":
            states[r["machine"]] = r["to"]
        elif r["kind"] == "decision":
            decision = {k: r[k] for k in ("eligible", "aggressiveness", "risk_budget", "rule")}
        pending.append(r)
        if i + 1 == len(records) or records[i + 1]["ts_ns"] != r["ts_ns"]:
            for p in pending:
                yield p, dict(states), dict(decision)
            pending = []


def test_default_session_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--no-progress", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "session default" in proc.stdout and "time in state" in proc.stdout
    import json

    summary = json.loads((out / "summary.json").read_text())
    sym = summary["symbols"]["BTCUSDT"]
    assert all(n > 0 for n in sym["transitions"].values()), sym["transitions"]
    assert sym["execution"]["all"]["orders"] > 0
    assert sym["execution"]["all"]["orders_with_fill"] > 0
    assert (out / "config.yaml").is_file() and (out / "specs" / "regime.yaml").is_file()
    assert len(summary["source"]["files"][0]["sha256"]) == 64


def test_liquidity_shock_blocks_everything_then_calm_earns_permission_back(scenario_run):
    _, summary, records = scenario_run
    seen_shock = False
    after_shock = []
    for r, states, decision in states_over_time(records):
        if (states["regime"], states["permission"], states["health"]) == ("UNSTABLE", "BLOCKED", "RED"):
            assert decision["eligible"] is False and decision["aggressiveness"] == "none"
            if r["kind"] == "transition" and r["ts_ns"] > records[0]["ts_ns"] + 60 * 10**9:
                seen_shock = True
        if seen_shock and (not after_shock or after_shock[-1] != states["permission"]):
            after_shock.append(states["permission"])
    assert seen_shock, "the sweep drove regime UNSTABLE, permission BLOCKED and health RED together"
    assert after_shock == ["BLOCKED", "COOLDOWN", "PROBATION", "ALLOWED"]


def test_no_order_reaches_the_engine_while_forbidden(scenario_run):
    _, _, records = scenario_run
    orders = rejects = 0
    for r, states, decision in states_over_time(records):
        if r["kind"] == "order":
            orders += 1
            assert decision["eligible"], r
            assert AGGRESSIVENESS_RANK[r["style"]] <= AGGRESSIVENESS_RANK[decision["aggressiveness"]], r
            assert states["permission"] in ("PROBATION", "ALLOWED")
        if r["kind"] == "reject" and r["stage"] == "decision":
            rejects += 1
            assert r["rule"] == decision["rule"]
    assert orders > 0 and rejects > 0


def test_refused_intents_name_the_rule_and_the_states(scenario_run):
    _, _, records = scenario_run
    refused = [r for r in records if r["kind"] == "reject" and r["stage"] == "decision"]
    rules = {r["rule"] for r in refused}
    assert "not_permitted" in rules
    assert all(r["states"]["permission"] in ("WARMUP", "BLOCKED", "COOLDOWN") for r in refused if r["rule"] == "not_permitted")


def test_kill_switch_trip_blocks(tmp_path):
    cfg = tmp_path / "kill.yaml"
    cfg.write_text((REPO / "configs" / "scenario-shock.yaml").read_text()
                   .replace("path: scenarios/sequence.yaml", f"path: {REPO}/configs/scenarios/sequence.yaml")
                   + "  loss_limit_usd: 5\n  kill_switch_on: [loss_limit]\n")
    out = tmp_path / "run"
    run_session(load_session(cfg), out)
    records = read_records(out)
    trip = next(r for r in records if r["kind"] == "alert" and r["guard"] == "kill_switch")
    blocked = next(r for r in records if r["kind"] == "transition" and r["machine"] == "permission"
                   and r["ts_ns"] >= trip["ts_ns"] and r["to"] == "BLOCKED")
    assert blocked["inputs"]["risk.kill_switch"] is True
    assert not [r for r in records if r["kind"] == "order" and r["ts_ns"] > trip["ts_ns"]]
    later = [r for r in records if r["kind"] == "reject" and r["ts_ns"] > trip["ts_ns"]]
    assert later and all(r["rule"] == "kill_switch" for r in later)


def test_same_recording_and_config_give_a_byte_identical_log(tmp_path):
    session = load_session(REPO / "configs" / "default.yaml")
    a = run_session(session, tmp_path / "a")
    b = run_session(load_session(REPO / "configs" / "default.yaml"), tmp_path / "b")
    assert (tmp_path / "a" / "log.jsonl").read_bytes() == (tmp_path / "b" / "log.jsonl").read_bytes()
    assert a.summary["log_digest"] == b.summary["log_digest"]


def test_replay_option_takes_a_binance_csv_dump(tmp_path):
    session = load_session(REPO / "configs" / "default.yaml")
    result = run_session(session, tmp_path / "csv", replay=[str(REPO / "data" / "BTCUSDT-trades-2021-05-19.excerpt.csv")])
    assert result.summary["events"] == 652
    assert result.summary["source"]["files"][0]["format"].startswith("csv")


def test_log_ends_with_a_digest_of_every_line(tmp_path):
    import hashlib

    run_session(load_session(REPO / "configs" / "default.yaml"), tmp_path / "r")
    lines = (tmp_path / "r" / "log.jsonl").read_bytes().splitlines(keepends=True)
    import json

    end = json.loads(lines[-1])
    assert end["kind"] == "session_end"
    assert end["digest"] == hashlib.sha256(b"".join(lines[:-1])).hexdigest()


def test_malformed_frames_are_counted_logged_and_skipped(tmp_path):
    import gzip
    import itertools

    from framework.market.replay import read_frames

    frames = list(itertools.islice(read_frames(REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"), 3000))
    t = frames[1500][0]
    bad = [(t, '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"nan"'),
           (t, '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"-5"}}')]
    path = tmp_path / "with-garbage.frames.gz"
    with gzip.open(path, "wt") as f:
        for ns, raw in frames[:1500] + bad + frames[1500:]:
            f.write(f"{ns} {raw}\n")
    result = run_session(load_session(REPO / "configs" / "default.yaml"), tmp_path / "run", replay=[str(path)])
    records = read_records(tmp_path / "run")
    malformed = [r for r in records if r["kind"] == "feed" and r["event"] == "malformed"]
    assert len(malformed) == 2 and all(r["detail"] for r in malformed)
    assert result.summary["feed"]["malformed"] == 2
    last_market = max(r["ts_ns"] for r in records if r["kind"] == "metrics")
    assert last_market > t, "the session went on after the garbage"
