"""The audit tools answer questions about real runs: schema, explain, verify, report, diff."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import jsonschema
import pytest

from framework.audit.analysis import facts
from framework.audit.annotate import render_run_diagrams
from framework.audit.diff import diff_run
from framework.audit.explain import explain, format_text
from framework.audit.logschema import validate_log
from framework.audit.report import write_report
from framework.audit.runlog import NS, load_records, parse_time, run_machine_set
from framework.audit.verify import verify_run
from framework.cli import main
from framework.spec import schema as spec_schema

from .handmade import PERM_GUARD_1, T0
from .handmade import make_run as make_handmade

SWEEP_S = 240  # the sequence scenario's calm_before phase lasts 240 s


# --- the log and its schema ---------------------------------------------------------------------

def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(spec_schema.schema("log"))


def test_real_scenario_and_replay_logs_validate(shock_run, replay_run):
    assert validate_log(shock_run) == []
    assert validate_log(replay_run) == []
    kinds = {r["kind"] for r in load_records(replay_run)}
    assert {"session_start", "transition", "decision", "intent", "reject", "order", "fill", "session_end"} <= kinds


def test_validation_reports_a_tampered_line_and_a_bad_record(tmp_path):
    run = make_handmade(tmp_path / "run")
    lines = (run / "log.jsonl").read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[5])
    rec["ts_ns"] = "soon"
    lines[5] = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
    (run / "log.jsonl").write_bytes(b"".join(lines))
    problems = validate_log(run)
    assert any("log.jsonl:6:" in p and "ts_ns" in p for p in problems)
    assert any("digest" in p for p in problems)


# --- explain ------------------------------------------------------------------------------------

def test_explain_gives_the_guard_that_blocked_trading_in_the_shock_with_its_values(shock_run):
    records = load_records(shock_run)
    start_ns = records[0]["ts_ns"]
    spike = next(r for r in records if r["kind"] == "transition" and r["machine"] == "regime"
                 and r["to"] == "UNSTABLE" and r["ts_ns"] > start_ns + (SWEEP_S - 5) * NS)
    at = spike["ts_ns"] + 2 * NS
    a = explain(records, at)
    layers = {x["machine"]: x for x in a["layers"]}

    spec = run_machine_set(shock_run)
    perm_rule = spec.machine("permission").rules[0]
    assert layers["regime"]["state"] == "UNSTABLE"
    assert layers["permission"]["state"] == "BLOCKED"
    last = layers["permission"]["chain"][-1]
    assert (last["to"], last["rule"]) == ("BLOCKED", perm_rule.index)
    assert last["guard"] == " ".join(perm_rule.describe().split())
    assert last["inputs"]["regime.state"] == "UNSTABLE"
    # the cause: the regime transition and the numbers it read against its params
    cause = last["caused_by"][0]
    assert (cause["machine"], cause["to"], cause["ts_ns"]) == ("regime", "UNSTABLE", spike["ts_ns"])
    assert cause["inputs"] == spike["inputs"] and cause["params"] == spike["params"]
    fired = cause["inputs"]["metrics.spread_bps"] >= cause["params"]["unstable_spread_bps"] or \
        cause["inputs"]["metrics.mid_move_bps_1s"] >= cause["params"]["unstable_move_bps"] or \
        not cause["inputs"]["metrics.quote_age_ms"] < cause["params"]["stale_quote_ms"]
    assert fired
    assert a["decision"]["eligible"] is False
    # intents refused near that time carry the decision rule in force when they were refused
    assert a["refused"]
    for r in a["refused"]:
        rec = next(x for x in records if x.get("seq") == r["seq"])
        assert r["rule"] == rec["rule"] == rec["decision"]["rule"]
    text = format_text(a)
    assert "PROBATION" not in text.split("permission:")[1].split("\n")[0]
    assert "BLOCKED" in text and perm_rule.describe().split()[0] in text


def test_explain_on_a_scripted_log_names_rule_guard_inputs_and_the_refusal(tmp_path):
    run = make_handmade(tmp_path / "run")
    a = explain(load_records(run), T0 + 41 * NS)
    perm = next(x for x in a["layers"] if x["machine"] == "permission")
    assert perm["state"] == "BLOCKED" and perm["for_s"] == pytest.approx(1.0)
    assert perm["chain"][-1]["guard"] == PERM_GUARD_1
    assert perm["chain"][-1]["caused_by"][0]["inputs"] == {"metrics.spread_bps": 7.5}
    assert a["decision"]["rule"] == "not_permitted"
    assert [(r["intent_id"], r["rule"]) for r in a["refused"]] == [("i-2", "not_permitted")]
    assert "stale_data" in a["risk_tripped"]


def test_times_are_iso_utc_epoch_ms_or_seconds_after_start():
    assert parse_time("2024-08-08T12:00:41Z") == T0 + 41 * NS
    assert parse_time("2024-08-08T12:00:41.250Z") == T0 + 41 * NS + 250_000_000
    assert parse_time(str((T0 + 41 * NS) // 1_000_000)) == T0 + 41 * NS
    assert parse_time("+41", T0) == T0 + 41 * NS


def test_explain_command_prints_text_and_json_and_refuses_bad_input(shock_run, tmp_path, capsys):
    assert main(["explain", str(shock_run), "--at", f"+{SWEEP_S + 2}", "--machine", "permission"]) == 0
    out = capsys.readouterr().out
    assert "permission: BLOCKED" in out and "guard :" in out
    assert main(["explain", str(shock_run), "--at", f"+{SWEEP_S + 2}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["symbol"] == "BTCUSDT"
    assert main(["explain", str(tmp_path / "missing"), "--at", "+1"]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["explain", str(shock_run), "--at", "yesterday"]) == 2
    assert main(["explain", str(shock_run), "--at", "+1", "--machine", "weather"]) == 2


# --- verify -------------------------------------------------------------------------------------

def test_verify_passes_on_an_untouched_run(shock_run, capsys):
    res = verify_run(shock_run)
    assert res.identical, res.as_dict()
    assert main(["verify", str(shock_run)]) == 0
    assert "byte-identical" in capsys.readouterr().out


def test_verify_reports_the_first_divergence_when_a_snapshot_param_is_altered(run_copy, capsys):
    perm = run_copy / "specs" / "permission.yaml"
    text = perm.read_text()
    assert "  probation_s:\n    value: 60\n" in text
    perm.write_text(text.replace("  probation_s:\n    value: 60\n", "  probation_s:\n    value: 20\n"))
    res = verify_run(run_copy)
    assert not res.identical
    d = res.divergence
    records = load_records(run_copy)
    first_allowed = next(r for r in records if r["kind"] == "transition" and r["to"] == "ALLOWED")
    assert d.line <= first_allowed["seq"] + 1
    assert d.recorded != d.rerun
    assert any("config_hash" in n for n in res.notes)
    assert main(["verify", str(run_copy)]) == 1
    out = capsys.readouterr().out
    assert f"first divergence at line {d.line}" in out and "recorded:" in out and "re-run  :" in out


# --- report and diagrams -------------------------------------------------------------------------

class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_one_offline_html_file_with_the_timeline_and_annotated_diagrams(replay_run, tmp_path):
    out = write_report(replay_run, tmp_path / "report.html")
    p = _Collect()
    p.feed(out.read_text(encoding="utf-8"))
    imgs = [a for t, a in p.tags if t == "img"]
    assert imgs and imgs[0]["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(imgs[0]["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [t for t, a in p.tags if t in ("script", "link")]
    assert not [a for t, a in p.tags if any(str(v).startswith(("http:", "https:")) for k, v in a.items() if k in ("src", "href"))]
    svgs = [a.get("id") for t, a in p.tags if t == "div" and a.get("id", "").startswith("diagram-")]
    assert svgs == [f"diagram-{m.name}" for m in run_machine_set(replay_run).machines]
    assert sum(1 for t, _ in p.tags if t == "svg") >= len(svgs)
    text = " ".join(p.text)
    f = facts(load_records(replay_run))
    n = f.transition_counts()["permission"]
    assert any(v > 0 for v in n.values()) and re.search(r"fired \d+×", text)
    for title in ("Execution quality", "By regime at decision", "By health at decision", "Refused intents",
                  "Alerts and feed incidents"):
        assert title in text
    assert "not_permitted" in text  # refused intents show the rule that forbade them
    from framework.audit.score import score_run

    card = score_run(replay_run)["symbols"]["BTCUSDT"]  # the scorecard, as execlab score has it
    assert "The gate's scorecard" in text and f"{100 * card['tradable_share']:.0f}%" in text


def test_annotated_diagrams_carry_the_runs_counts(shock_run, tmp_path):
    out = render_run_diagrams(shock_run, tmp_path / "d")
    counts = facts(load_records(shock_run)).transition_counts()
    for m in ("regime", "permission", "health"):
        dot = (out / f"{m}.dot").read_text()
        assert (out / f"{m}.svg").read_text().lstrip().startswith("<?xml")
        shown = sum(int(x) for x in re.findall(r"fired (\d+)×", dot))
        assert shown == sum(counts[m].values())


# --- diff ---------------------------------------------------------------------------------------

def test_diff_shows_what_changes_when_a_param_changes(shock_run, capsys):
    d = diff_run(shock_run, ["permission.probation_s=20"])
    assert d["changed"]
    perm = next(m for m in d["machines"] if m["machine"] == "permission")
    tis = {s["state"]: s for s in perm["time_in_state_s"]}
    assert tis["PROBATION"]["edited"] < tis["PROBATION"]["base"]
    assert tis["ALLOWED"]["edited"] > tis["ALLOWED"]["base"]
    fd = d["first_divergence"]
    assert fd["base"]["to"] == fd["edited"]["to"] == "ALLOWED"
    assert fd["edited"]["params"] == {"probation_s": 20}
    assert main(["diff", str(shock_run), "--set", "permission.probation_s=20"]) == 0
    out = capsys.readouterr().out
    assert "time in PROBATION" in out and "first divergence" in out


def test_diff_of_an_unchanged_param_shows_no_change(shock_run):
    d = diff_run(shock_run, ["permission.probation_s=60"])
    assert not d["changed"] and d["first_divergence"] is None


def test_diff_needs_an_edit(shock_run, capsys):
    assert main(["diff", str(shock_run)]) == 2
    assert "expected --config" in capsys.readouterr().err


def test_report_can_carry_a_diff_section(shock_run, tmp_path):
    assert main(["report", str(shock_run), "--out", str(tmp_path / "r.html"), "--diff-set", "permission.probation_s=20"]) == 0
    assert "What if" in (tmp_path / "r.html").read_text()
