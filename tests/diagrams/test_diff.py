"""`execlab diagrams --diff OLD NEW` reports every kind of change, draws it, and exits 0/1/2."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.diagrams.gate_machine import GATE

REPO = Path(__file__).resolve().parents[2]

HALTED_STATE = """  HALTED:
    doc: The book is crossed; nothing can be priced.
"""
HALTED_RULES = """  - from: CLOSED
    to: HALTED
    when: metrics.crossed_count_60s > 0
    doc: A crossed book halts.
  - from: HALTED
    to: CLOSED
    after: 5
    doc: Look again after a while.
"""


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", *args], capture_output=True, text=True,
                          cwd=cwd)


def edited_gate() -> str:
    gate = GATE.replace("wide_spread_bps: {value: 5.0,", "wide_spread_bps: {value: 6.0,")
    gate = gate.replace("states:\n", "states:\n" + HALTED_STATE, 1)
    gate = gate.replace("when: metrics.trade_rate_hz_10s > 100", "when: metrics.trade_rate_hz_10s > 150")
    start = gate.index("  - from: OPEN\n    to: CLOSED\n    when: metrics.spread_to_median_60s")
    end = gate.index("  - from: CLOSED\n    to: WAITING")
    return gate[:start] + gate[end:] + HALTED_RULES  # rule #2 removed, two rules added


@pytest.fixture
def versions(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(REPO / "machines", old)
    shutil.copytree(REPO / "machines", new)
    (old / "gate.yaml").write_text(GATE)
    (new / "gate.yaml").write_text(edited_gate())
    decision = (new / "decision.yaml").read_text().replace("    value: 0.5\n", "    value: 0.4\n")
    decision = decision.replace("  - name: probation\n", "  - name: yellow_probation\n    doc: Probation needs GREEN.\n"
                                "    when: permission.state == 'PROBATION' and health.state == 'YELLOW'\n"
                                "    then: {eligible: false, aggressiveness: none, risk_budget: 0}\n  - name: probation\n")
    (new / "decision.yaml").write_text(decision.replace("when: health.state in ['RED', 'QUIET']\n    then",
                                                        "when: health.state != 'GREEN'\n    then"))
    return old, new


def test_every_kind_of_change_is_in_the_summary(versions, tmp_path):
    old, new = versions
    proc = cli("--diff", str(old), str(new), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "gate: wide_spread_bps 5 → 6 bps" in out
    assert "gate: new state HALTED" in out
    assert "gate: new edge CLOSED → HALTED #5: crossed count (60 s) > 0" in out
    assert "gate: new edge HALTED → CLOSED #6: after 5 s" in out
    assert "gate: threshold changed on edge OPEN → CLOSED #1: − spread ≥ 5 bps; + spread ≥ 6 bps" in out
    assert "gate: threshold changed on edge CLOSED → WAITING #2 (was #3): − spread < 3.5 bps (5 bps × 0.7); " \
           "+ spread < 4.2 bps (6 bps × 0.7)" in out
    assert "gate: guard changed on edge WAITING → CLOSED #3 (was #4): − trade rate (10 s) > 100 Hz; " \
           "+ trade rate (10 s) > 150 Hz" in out
    assert "gate: edge removed OPEN → CLOSED #2: spread to median (60 s) ≥ 200; for 0.25 s" in out
    assert "gate: edge WAITING → OPEN renumbered #5 → #4 (its priority changed)" in out
    assert "decision: caution_budget_ratio 0.5 → 0.4×" in out
    assert "decision: new rule yellow_probation #6: when permission.state == 'PROBATION' and health.state == 'YELLOW' " \
           "then eligible False, none, budget 0" in out
    assert "decision: rule probation moved #6 → #7" in out
    assert "decision: rule unhealthy when: health.state in ['RED', 'QUIET'] → health.state != 'GREEN'" in out
    assert "invariant" not in out
    for unchanged in ("regime:", "permission:", "health:"):
        assert unchanged not in out, "unchanged machines are not reported"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["gate.dot", "gate.svg", "summary.txt"]

    back = cli("--diff", str(new), str(old))  # the same change read backwards removes what it added
    assert back.returncode == 1
    assert "gate: state HALTED removed" in back.stdout
    assert "gate: edge removed CLOSED → HALTED #5" in back.stdout
    assert "gate: new edge OPEN → CLOSED #2" in back.stdout
    assert "decision: rule yellow_probation removed" in back.stdout


def _edges(svg: Path) -> dict[str, tuple[str, list[str]]]:
    ns = "{http://www.w3.org/2000/svg}"
    out = {}
    for g in ET.parse(svg).getroot().iter(f"{ns}g"):
        if g.get("class") == "edge":
            title = g.find(f"{ns}title").text.replace("&#45;", "-")
            path = g.find(f".//{ns}path")
            out.setdefault(title, []).append((path.get("stroke"), path.get("stroke-dasharray"),
                                              [(t.text, t.get("fill"), t.get("text-decoration")) for t in g.iter(f"{ns}text")]))
    return out


def test_the_rendering_colours_added_removed_and_changed(versions, tmp_path):
    old, new = versions
    assert cli("--diff", str(old), str(new), "--out", str(tmp_path)).returncode == 1
    gate = _edges(tmp_path / "gate.svg")
    (stroke, _, texts), = gate["CLOSED->HALTED"]
    assert stroke == "#2ca02c" and ("#5 added", "#2ca02c", None) in texts
    (changed,) = [e for e in gate["OPEN->CLOSED"] if e[0] == "#1f77b4"]
    assert ("spread ≥ 5 bps", "#d62728", "line-through") in changed[2]
    assert ("spread ≥ 6 bps", "#2ca02c", None) in changed[2]
    (removed,) = [e for e in gate["OPEN->CLOSED"] if e[0] == "#d62728"]
    assert removed[1] and ("#2 removed", "#d62728", None) in removed[2]
    (moved,) = gate["WAITING->OPEN"]
    assert moved[0] == "#1f77b4" and ("#4 (was #5) changed", "#1f77b4", None) in moved[2]


def test_mermaid_diff_for_a_pull_request_comment(versions, tmp_path):
    old, new = versions
    assert cli("--diff", str(old), str(new), "--format", "mermaid", "--out", str(tmp_path)).returncode == 1
    text = (tmp_path / "gate.md").read_text()
    assert "CLOSED --> HALTED : #35;5 added<br/>+ crossed count (60 s) #gt; 0" in text
    assert "− spread ≥ 5 bps<br/>+ spread ≥ 6 bps" in text


def test_two_files_and_two_git_revisions(versions, tmp_path):
    old, new = versions
    proc = cli("--diff", str(old / "gate.yaml"), str(new / "gate.yaml"))
    assert proc.returncode == 1 and "gate: new state HALTED" in proc.stdout and "decision:" not in proc.stdout

    repo = tmp_path / "repo"
    shutil.copytree(old, repo / "machines")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "old"], check=True)
    shutil.copy(new / "gate.yaml", repo / "machines" / "gate.yaml")
    subprocess.run([*git, "commit", "-qam", "new"], check=True)
    proc = cli("--diff", "HEAD~1", "HEAD", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert "HEAD~1 → HEAD" in proc.stdout and "gate: wide_spread_bps 5 → 6 bps" in proc.stdout
    assert cli("--diff", "HEAD", "HEAD", cwd=repo).returncode == 0


def test_exit_codes(tmp_path):
    same = cli("--diff", str(REPO / "machines"), str(REPO / "machines"))
    assert same.returncode == 0 and "no difference" in same.stdout
    good, bad = tmp_path / "good.yaml", tmp_path / "gate.yaml"
    good.write_text(GATE)
    bad.write_text(GATE.replace("params.hold_s", "params.nope"))
    proc = cli("--diff", str(good), str(bad))
    assert proc.returncode == 2 and "param 'nope' is not declared" in proc.stderr and "Traceback" not in proc.stderr
    assert cli("--diff", "no-such-thing", str(bad)).returncode == 2
