"""`execlab diagrams --diff OLD NEW` reports every kind of change, draws it, and exits 0/1/2."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

HALTED_STATE = """  HALTED:
    doc: The book is crossed; nothing can be priced.
    color: "#7f7f7f"
"""
HALTED_RULES = """  - from: UNSTABLE
    to: HALTED
    when: metrics.crossed_count_60s > 0
    doc: A crossed book halts.
  - from: HALTED
    to: UNSTABLE
    after: 5
    doc: Look again after a while.
"""


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", *args], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture
def versions(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(REPO / "machines", old)
    shutil.copytree(REPO / "machines", new)
    regime = (new / "regime.yaml").read_text()
    regime = regime.replace("  unstable_spread_bps:\n    value: 5.0", "  unstable_spread_bps:\n    value: 6.0")
    regime = regime.replace("states:\n", "states:\n" + HALTED_STATE, 1)
    regime = regime.replace("      or metrics.realized_vol_bps_10s >= params.fast_vol_bps\n",
                            "      or metrics.realized_vol_bps_10s >= params.fast_vol_bps * 2\n")
    regime += HALTED_RULES
    (new / "regime.yaml").write_text(regime)
    permission = (new / "permission.yaml").read_text()
    start = permission.index("  - from: PROBATION\n    to: COOLDOWN")
    end = permission.index("  - from: COOLDOWN\n    to: PROBATION")
    (new / "permission.yaml").write_text(permission[:start] + permission[end:])  # rule #3 removed
    decision = (new / "decision.yaml").read_text().replace("    value: 0.5\n", "    value: 0.4\n")
    decision = decision.replace("  - name: full\n", "  - name: halted\n    doc: A halted book.\n"
                                "    when: regime.state == 'HALTED'\n"
                                "    then: {eligible: false, aggressiveness: none, risk_budget: 0}\n  - name: full\n")
    (new / "decision.yaml").write_text(decision.replace("when: health.state == 'RED'\n    then", "when: health.state != 'GREEN'\n    then"))
    return old, new


def test_every_kind_of_change_is_in_the_summary(versions, tmp_path):
    old, new = versions
    proc = cli("--diff", str(old), str(new), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "regime: unstable_spread_bps 5 → 6 bps" in out
    assert "regime: new state HALTED" in out
    assert "regime: new edge UNSTABLE → HALTED #6" in out and "regime: new edge HALTED → UNSTABLE #7" in out
    assert "regime: threshold changed on edge NORMAL → UNSTABLE #1: − spread ≥ 5 bps; + spread ≥ 6 bps" in out
    assert "regime: guard changed on edge NORMAL → FAST #4: − or realized vol (10 s) ≥ 4 bps; " \
           "+ or realized vol (10 s) ≥ 8 bps (4 bps × 2)" in out
    assert "permission: edge removed PROBATION → COOLDOWN #3" in out
    assert "permission: edge PROBATION → ALLOWED renumbered #5 → #4 (its priority changed)" in out
    assert "decision: caution_budget_ratio 0.5 → 0.4×" in out
    assert "decision: new rule halted #8: when regime.state == 'HALTED' then eligible False, none, budget 0" in out
    assert "decision: rule full moved #8 → #9" in out
    assert "decision: rule unhealthy when: health.state == 'RED' → health.state != 'GREEN'" in out
    assert "invariant" not in out
    assert "health:" not in out, "unchanged machines are not reported"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["permission.dot", "permission.svg", "regime.dot", "regime.svg", "summary.txt"]

    back = cli("--diff", str(new), str(old))  # the same change read backwards removes what it added
    assert back.returncode == 1
    assert "regime: state HALTED removed" in back.stdout
    assert "regime: edge removed UNSTABLE → HALTED #6" in back.stdout
    assert "permission: new edge PROBATION → COOLDOWN #3" in back.stdout


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
    regime = _edges(tmp_path / "regime.svg")
    (stroke, _, texts), = regime["UNSTABLE->HALTED"]
    assert stroke == "#2ca02c" and ("#6 added", "#2ca02c", None) in texts
    changed = [e for e in regime["NORMAL->UNSTABLE"] if e[0] == "#1f77b4"]
    assert changed, "the changed edge is blue"
    texts = changed[0][2]
    assert ("spread ≥ 5 bps", "#d62728", "line-through") in texts
    assert ("spread ≥ 6 bps", "#2ca02c", None) in texts
    (stroke, dash, texts), = [e for e in _edges(tmp_path / "permission.svg")["PROBATION->COOLDOWN"]]
    assert stroke == "#d62728" and dash and ("#3 removed", "#d62728", None) in texts


def test_mermaid_diff_for_a_pull_request_comment(versions, tmp_path):
    old, new = versions
    assert cli("--diff", str(old), str(new), "--format", "mermaid", "--out", str(tmp_path)).returncode == 1
    text = (tmp_path / "regime.md").read_text()
    assert "UNSTABLE --> HALTED : #35;6 added<br/>+ crossed count (60 s) #gt; 0" in text
    assert "− spread ≥ 5 bps<br/>+ spread ≥ 6 bps" in text


def test_two_files_and_two_git_revisions(versions, tmp_path):
    old, new = versions
    proc = cli("--diff", str(old / "permission.yaml"), str(new / "permission.yaml"))
    assert proc.returncode == 1 and "permission: edge removed PROBATION → COOLDOWN #3" in proc.stdout
    assert "regime:" not in proc.stdout
    # a new regime state alone breaks the shipped table's invariants: NEW cannot be loaded
    proc = cli("--diff", str(old / "regime.yaml"), str(new / "regime.yaml"))
    assert proc.returncode == 2 and "invariant 'take_only_when_allowed_green_normal' does not hold" in proc.stderr
    assert "regime=HALTED" in proc.stderr

    repo = tmp_path / "repo"
    shutil.copytree(old, repo / "machines")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "old"], check=True)
    shutil.copy(new / "regime.yaml", repo / "machines" / "regime.yaml")
    shutil.copy(new / "decision.yaml", repo / "machines" / "decision.yaml")
    subprocess.run([*git, "commit", "-qam", "new"], check=True)
    proc = cli("--diff", "HEAD~1", "HEAD", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert "HEAD~1 → HEAD" in proc.stdout and "regime: unstable_spread_bps 5 → 6 bps" in proc.stdout
    assert cli("--diff", "HEAD", "HEAD", cwd=repo).returncode == 0


def test_exit_codes(tmp_path):
    same = cli("--diff", str(REPO / "machines"), str(REPO / "machines"))
    assert same.returncode == 0 and "no difference" in same.stdout
    bad = tmp_path / "regime.yaml"
    bad.write_text((REPO / "machines" / "regime.yaml").read_text().replace("params.unstable_spread_bps\n", "params.nope\n", 1))
    proc = cli("--diff", str(REPO / "machines" / "regime.yaml"), str(bad))
    assert proc.returncode == 2 and "param 'nope' is not declared" in proc.stderr and "Traceback" not in proc.stderr
    assert cli("--diff", "no-such-thing", str(bad)).returncode == 2
