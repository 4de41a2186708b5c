"""Diagrams render from the specs with Graphviz, and the drift check catches a stale one."""

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from framework.diagrams.render import render_all, stale_diagrams
from framework.spec.machines import load_machine_set
from framework.spec.metrics import load_metric_set
from tests.diagrams.gate_machine import GATE, load_with

REPO = Path(__file__).resolve().parents[2]


def load(machines_dir: Path):
    metrics = load_metric_set(machines_dir / "metrics.yaml")
    return load_machine_set([machines_dir / f"{n}.yaml" for n in ("regime", "permission", "health")],
                            machines_dir / "decision.yaml", metrics.names)


def test_render_writes_svg_with_guards_priorities_and_tooltips(tmp_path):
    written = render_all(load(REPO / "machines"), tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{n}.{ext}" for n in ("regime", "permission", "health", "pipeline") for ext in ("dot", "svg"))
    svg = ET.parse(tmp_path / "permission.svg").getroot()
    text = " ".join(t.text or "" for t in svg.iter() if t.tag.endswith("text"))
    assert "COOLDOWN" in text and "PROBATION" in text
    assert "after 60 s" in text, "timers show the param's value and unit"
    assert "after min(30 s × 2^max(n − 1, 0), 600 s)" in text
    titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in svg.iter() if a.get("{http://www.w3.org/1999/xlink}title")]
    assert any("Waiting it out" in (t or "") or "waiting it out" in (t or "") for t in titles), "state docs as tooltips"
    assert any("probation_s = 60 s: Time in probation" in (t or "") for t in titles), "param docs in tooltips"
    assert any("when regime.state == 'NORMAL'" in (t or "") for t in titles), "the full guard text in tooltips"


def test_check_catches_a_stale_diagram(tmp_path):
    machines = tmp_path / "machines"
    shutil.copytree(REPO / "machines", machines)
    out = tmp_path / "diagrams"
    render_all(load(machines), out)
    assert stale_diagrams(load(machines), out) == []
    regime = machines / "regime.yaml"
    regime.write_text(regime.read_text().replace("for: params.fast_exit_s", "for: params.fast_exit_s * 2"))
    assert stale_diagrams(load(machines), out) == ["regime"]


def test_repository_diagrams_are_current():
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--check"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_cli_check_exits_1_when_stale(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--check", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "stale diagrams" in proc.stderr


def _edge_labels(svg_path: Path) -> dict[str, list[str]]:
    """{'A->B': [label lines, ...]} from a Graphviz SVG (edges are <g class="edge"> with a <title>)."""
    out: dict[str, list[str]] = {}
    for g in ET.parse(svg_path).getroot().iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") != "edge":
            continue
        title = g.find("{http://www.w3.org/2000/svg}title").text.replace("&#45;", "-")
        lines = [t.text for t in g.iter("{http://www.w3.org/2000/svg}text") if t.text]
        out.setdefault(title, []).extend(["|", *lines])
    return out


def test_every_edge_has_its_rule_number_and_one_clause_a_line_with_values_and_units(tmp_path):
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    render_all(load_with(REPO / "machines", gate), tmp_path)
    edges = _edge_labels(tmp_path / "gate.svg")
    assert edges["OPEN->CLOSED"] == ["|", "#1", "spread ≥ 5 bps", "or quote age ≥ 2000 ms (or unknown)",
                                     "or risk.stale", "|", "#2", "spread to median (60 s) ≥ 200", "for 0.25 s"]
    assert edges["CLOSED->WAITING"] == ["|", "#3", "spread < 3.5 bps (5 bps × 0.7)",
                                        "and quote age < 1400 ms (2000 ms × 0.7)"]
    assert edges["WAITING->CLOSED"] == ["|", "#4", "trade rate (10 s) > 100 Hz"]
    assert edges["WAITING->OPEN"] == ["|", "#5", "after min(30 s × 2^max(n − 1, 0), 600 s)"]
    assert "n = entries into CLOSED in the last 1800 s" in (tmp_path / "gate.dot").read_text()
    for name in ("regime", "permission", "health"):  # the shipped machines too
        for edge, lines in _edge_labels(tmp_path / f"{name}.svg").items():
            if edge.startswith("__start"):
                continue
            heads = [lines[i + 1] for i, x in enumerate(lines) if x == "|"]
            assert all(re.fullmatch(r"#\d+", h) for h in heads), (name, edge, lines)
            assert not any("params." in x or "metrics." in x for x in lines), (name, edge, lines)


def test_labels_carry_the_sessions_overrides_from_config_and_set(tmp_path):
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    config = tmp_path / "wide.yaml"
    config.write_text((REPO / "configs" / "default.yaml").read_text().replace("../data/", str(REPO / "data") + "/")
                      + f"machines:\n  extra: [{gate}]\noverrides:\n  gate.wide_spread_bps: 7.5\n")
    out = tmp_path / "d"
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--config", str(config),
                           "--set", "gate.reopen_s=45", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    edges = _edge_labels(out / "gate.svg")
    assert "spread ≥ 7.5 bps" in edges["OPEN->CLOSED"]
    assert "spread < 5.25 bps (7.5 bps × 0.7)" in edges["CLOSED->WAITING"]
    assert "after min(45 s × 2^max(n − 1, 0), 600 s)" in edges["WAITING->OPEN"]
    dot = (out / "gate.dot").read_text()
    assert "wide_spread_bps = 7.5 bps (file 5 bps)" in dot and "reopen_s = 45 s (file 30 s)" in dot
    assert "wide_spread_bps = 7.5 bps: Spread at or above this closes the gate." in dot, "tooltips show the value in force"
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--config", str(config), "--check",
                           "--set", "gate.reopen_s=45", "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--config", str(config), "--check",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "gate" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--set", "decision.caution_budget_ratio=0.4"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "expected --out DIR" in proc.stderr, "overrides never land in diagrams/"


def test_mermaid_export_has_every_rule_with_values(tmp_path):
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "configs" / "default.yaml").read_text().replace("../data/", str(REPO / "data") + "/")
                      + f"machines:\n  extra: [{gate}]\n")
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "diagrams", "--format", "mermaid", "--config", str(config),
                           "--set", "gate.wide_spread_bps=6", "--out", str(tmp_path / "md")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "md" / "gate.md").read_text()
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block.startswith("stateDiagram-v2\n")
    arrows = [x.strip() for x in block.splitlines() if "-->" in x and "[*]" not in x]
    assert len(arrows) == 5
    assert "OPEN --> CLOSED : #35;1<br/>spread ≥ 6 bps<br/>or quote age ≥ 2000 ms (or unknown)<br/>or risk.stale" in block
    assert "WAITING --> CLOSED : #35;4<br/>trade rate (10 s) #gt; 100 Hz" in block
    assert all(a.split(" : ", 1)[1].startswith("#35;") for a in arrows)
    assert "wide_spread_bps = 6 bps (file 5 bps)" in text
    assert "- n = entries into CLOSED in the last 1800 s" in text
    assert {p.name for p in (tmp_path / "md").iterdir()} >= {"regime.md", "permission.md", "health.md", "gate.md"}
