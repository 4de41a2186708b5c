"""Diagrams render from the specs with Graphviz, and the drift check catches a stale one."""

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from framework.diagrams.render import render_all, stale_diagrams
from framework.spec.machines import load_machine_set
from framework.state.spec import load_metric_set

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
    assert "after params.probation_s" in text
    assert re.search(r"#\d", text), "priorities shown where several rules leave a state"
    titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in svg.iter() if a.get("{http://www.w3.org/1999/xlink}title")]
    assert any("Waiting it out" in (t or "") or "waiting it out" in (t or "") for t in titles), "state docs as tooltips"


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
