"""``execlab diagrams --diff OLD NEW``: what a change to the machines does to their shape and numbers.

OLD and NEW are two machine (or decision table) files, two folders of specs, or two git
revisions of ``machines/`` (``HEAD~1 HEAD``, ``origin/main HEAD``). Both versions are loaded and
checked like any spec, then compared machine by machine:

- states added or removed, the initial state, a state's doc;
- params added, removed, or with a new value (``regime: unstable_spread_bps 5 → 6 bps``);
- edges (one per rule and source state) added, removed, renumbered, or changed: a changed
  guard or a changed threshold shows as the label lines that differ.

Edges are matched by (source, target) and, among several rules between the same two states,
by identical guard text first, then in file order. The decision table's rules, params and
invariants are compared as text (it is not drawn).

Exit status: 0 when the versions are the same, 1 when anything differs, 2 when a version
cannot be loaded. So ``execlab diagrams --diff origin/main HEAD --out diff/`` in CI fails a
pull request that changes the machines until a reviewer has looked at ``diff/``.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..spec import workspace
from ..spec.errors import SpecError, SpecErrors
from ..spec.loader import load_yaml
from ..spec.machines import DecisionSpec, MachineSet, load_machine_set
from ..spec.pretty import fmt_value, param_unit
from ..spec.risk import RISK_MACHINE, load_risk_machine
from .mermaid import markdown
from .render import draw
from .view import EdgeView, MachineView, StateView, machine_view

# --- loading a version ----------------------------------------------------------------------


def _kind(path: Path) -> str:
    data = load_yaml(path).data
    if isinstance(data, dict):
        for key, kind in (("machine", "machine"), ("table", "decision"), ("metrics", "metrics")):
            if key in data:
                return kind
    return "other"


def _load_folder(folder: Path) -> MachineSet:
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    machines, decision, metrics = [], None, None
    for f in files:
        kind = _kind(f)
        if kind == "machine":
            machines.append(f)
        elif kind == "decision":
            decision = f
        elif kind == "metrics":
            metrics = f
    if not machines and decision is None:
        raise SpecErrors([SpecError(str(folder), 0, 0, "no machine or decision table here; expected a folder like machines/")])
    return _load(machines or [], decision, metrics)


def _load(machines: list[Path], decision: Path | None, metrics: Path | None) -> MachineSet:
    from framework.spec.metrics import load_metric_set  # the state engine owns the metric schema

    metric_set = load_metric_set(metrics or workspace.machines_dir() / "metrics.yaml")
    risk = [p for p in machines if _machine_name(p) == RISK_MACHINE]  # not a pipeline machine: loaded apart
    machine_set = load_machine_set([p for p in machines if p not in risk],
                                   decision or workspace.machines_dir() / "decision.yaml", metric_set.names)
    machine_set.machines += [load_risk_machine(p, metric_set.names).spec for p in risk]  # compared like the others
    return machine_set


def _load_file(path: Path) -> MachineSet:
    """One machine or decision file, checked within the default set (in place of its namesake)."""
    kind = _kind(path)
    defaults = {_machine_name(p): p for p in sorted(workspace.machines_dir().glob("*.yaml")) if _kind(p) == "machine"}
    if kind == "machine":
        defaults[_machine_name(path)] = path
        return _load(list(defaults.values()), None, None)
    if kind == "decision":
        return _load(list(defaults.values()), path, None)
    raise SpecErrors([SpecError(str(path), 1, 1, "not a machine or a decision table; expected a top-level machine: or table:")])


def _machine_name(path: Path) -> str:
    return str(load_yaml(path).data.get("machine"))


def _repo() -> Path:
    """The git repository of the current folder (a checkout or a workspace under git)."""
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0 or not top.stdout.strip():
        raise SpecErrors([SpecError(str(Path.cwd()), 0, 0, "not inside a git repository; expected git revisions "
                                    "of a repository holding machines/, or two files or folders")])
    return Path(top.stdout.strip())


def _machines_folder(repo: Path) -> str:
    """Where machines/ sits in the repository: the current workspace's, else the top level's."""
    ws = workspace.current()
    try:
        return ((ws or repo) / "machines").resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return "machines"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True)


def _checkout_machines(repo: Path, rev: str, into: Path) -> Path:
    """Copy ``machines/`` as it is at git revision ``rev`` into ``into``; return the folder."""
    rel = _machines_folder(repo)
    listing = _git(repo, "ls-tree", "--name-only", f"{rev}:{rel}")
    if listing.returncode != 0:
        raise SpecErrors([SpecError(rev, 0, 0, f"revision {rev} has no {rel}/ folder; expected a revision of this repository")])
    folder = into / "machines"
    folder.mkdir(parents=True, exist_ok=True)
    for name in listing.stdout.decode().split():
        if name.endswith((".yaml", ".yml")):
            (folder / name).write_bytes(_git(repo, "show", f"{rev}:{rel}/{name}").stdout)
    return folder


def load_version(spec: str, workdir: Path) -> tuple[str, MachineSet]:
    """(label, machine set) for a file, a folder or a git revision."""
    p = Path(spec)
    if p.is_dir():
        return str(p), _load_folder(p)
    if p.is_file():
        return str(p), _load_file(p)
    repo = _repo()
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}").returncode == 0:
        return spec, _load_folder(_checkout_machines(repo, spec, workdir))
    raise SpecErrors([SpecError(spec, 0, 0, "no such file, folder or git revision; expected a machine file, a folder of specs, or a revision like HEAD~1")])


# --- comparing ------------------------------------------------------------------------------


@dataclass
class MachineDiff:
    name: str
    summary: list[str] = field(default_factory=list)
    view: MachineView | None = None  # the merged drawing, when the machine exists in NEW or OLD

    @property
    def changed(self) -> bool:
        return bool(self.summary)


def _line_diff(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[list[str], list[str]]:
    lines, status = [], []
    sm = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            lines += new[j1:j2]
            status += [""] * (j2 - j1)
        else:
            lines += old[i1:i2]
            status += ["removed"] * (i2 - i1)
            lines += new[j1:j2]
            status += ["added"] * (j2 - j1)
    return lines, status


def _match_edges(old: list[EdgeView], new: list[EdgeView]) -> tuple[list[tuple[EdgeView, EdgeView]], list[EdgeView], list[EdgeView]]:
    """Pairs (old, new) between the same two states: same guard first, then in order."""
    pairs: list[tuple[EdgeView, EdgeView]] = []
    left = list(old)
    unmatched_new = []
    for e in new:
        same = next((o for o in left if (o.source, o.dest, o.guard) == (e.source, e.dest, e.guard)), None)
        if same is not None:
            left.remove(same)
            pairs.append((same, e))
        else:
            unmatched_new.append(e)
    added = []
    for e in unmatched_new:
        other = next((o for o in left if (o.source, o.dest) == (e.source, e.dest)), None)
        if other is not None:
            left.remove(other)
            pairs.append((other, e))
        else:
            added.append(e)
    return pairs, left, added


def _edge_name(e: EdgeView) -> str:
    return f"{e.source} → {e.dest} #{e.rule}"


def diff_machine(old: MachineView | None, new: MachineView | None) -> MachineDiff:
    name = (new or old).name  # type: ignore[union-attr]
    d = MachineDiff(name)
    if old is None:
        d.summary.append(f"{name}: new machine ({len(new.states)} states, {len(new.edges)} edges)")  # type: ignore[union-attr]
        d.view = replace(new, states={k: replace(s, status="added") for k, s in new.states.items()},  # type: ignore[union-attr]
                         edges=[replace(e, status="added") for e in new.edges])  # type: ignore[union-attr]
        return d
    if new is None:
        d.summary.append(f"{name}: machine removed")
        d.view = replace(old, states={k: replace(s, status="removed") for k, s in old.states.items()},
                         edges=[replace(e, status="removed") for e in old.edges])
        return d
    s = d.summary
    states: dict[str, StateView] = {}
    for k, st in new.states.items():
        if k not in old.states:
            s.append(f"{name}: new state {k}")
            states[k] = replace(st, status="added")
        else:
            if old.states[k].doc != st.doc:
                s.append(f"{name}: state {k} doc changed")
            states[k] = st
    for k, st in old.states.items():
        if k not in new.states:
            s.append(f"{name}: state {k} removed")
            states[k] = replace(st, status="removed")
    if old.initial != new.initial:
        s.append(f"{name}: initial state {old.initial} → {new.initial}")
    for p, (value, _doc) in new.params.items():
        unit = param_unit(p)
        if p not in old.params:
            s.append(f"{name}: new param {p} = {fmt_value(value, unit)}")
        elif old.params[p][0] != value:
            s.append(f"{name}: {p} {fmt_value(old.params[p][0], None)} → {fmt_value(value, unit)}")
    for p, (value, _doc) in old.params.items():
        if p not in new.params:
            s.append(f"{name}: param {p} removed (was {fmt_value(value, param_unit(p))})")
    pairs, removed, added = _match_edges(old.edges, new.edges)
    edges: list[EdgeView] = []
    for o, n in pairs:
        lines, status = _line_diff(o.lines, n.lines)
        moved = o.rule != n.rule
        if o.guard != n.guard or o.lines != n.lines:
            what = "guard changed" if o.guard != n.guard else "threshold changed"
            s.append(f"{name}: {what} on edge {_edge_name(n)}{f' (was #{o.rule})' if moved else ''}: " + "; ".join(
                f"{'−' if st == 'removed' else '+'} {x}" for x, st in zip(lines, status, strict=True) if st))
            edges.append(replace(n, lines=tuple(lines), line_status=tuple(status), status="changed",
                                 old_rule=o.rule if moved else None))
        elif moved:
            s.append(f"{name}: edge {n.source} → {n.dest} renumbered #{o.rule} → #{n.rule} (its priority changed)")
            edges.append(replace(n, status="changed", old_rule=o.rule))
        else:
            edges.append(n)
    for e in added:
        s.append(f"{name}: new edge {_edge_name(e)}: " + "; ".join(e.lines))
        edges.append(replace(e, status="added", line_status=("added",) * len(e.lines)))
    for e in removed:
        s.append(f"{name}: edge removed {_edge_name(e)}: " + "; ".join(e.lines))
        edges.append(replace(e, status="removed", line_status=("removed",) * len(e.lines)))
    d.view = replace(new, states=states, edges=edges)
    return d


def diff_decision(old: DecisionSpec, new: DecisionSpec) -> list[str]:
    """The decision table's changes, as text (rules by name, params, invariants)."""
    name = new.name
    out = []
    old_rules = {r.name: r for r in old.rules}
    new_rules = {r.name: r for r in new.rules}
    for i, r in enumerate(new.rules):
        o = old_rules.get(r.name)
        then = f"eligible {r.eligible}, {r.aggressiveness}, budget {r.risk_budget.text}"
        if o is None:
            out.append(f"{name}: new rule {r.name} #{i + 1}: when {r.when.text} then {then}")
            continue
        o_then = f"eligible {o.eligible}, {o.aggressiveness}, budget {o.risk_budget.text}"
        if o.when.text != r.when.text:
            out.append(f"{name}: rule {r.name} when: {o.when.text} → {r.when.text}")
        if o_then != then:
            out.append(f"{name}: rule {r.name} then: {o_then} → {then}")
        oi = old.rules.index(o)
        if oi != i:
            out.append(f"{name}: rule {r.name} moved #{oi + 1} → #{i + 1}")
    for r in old.rules:
        if r.name not in new_rules:
            out.append(f"{name}: rule {r.name} removed")
    for p, v in new.params.items():
        if p not in old.params:
            out.append(f"{name}: new param {p} = {fmt_value(v.value, param_unit(p))}")
        elif old.params[p].value != v.value:
            out.append(f"{name}: {p} {fmt_value(old.params[p].value, None)} → {fmt_value(v.value, param_unit(p))}")
    for p in old.params:
        if p not in new.params:
            out.append(f"{name}: param {p} removed")
    old_inv = {i.name: i.text for i in getattr(old, "invariants", [])}
    new_inv = {i.name: i.text for i in getattr(new, "invariants", [])}
    for k, text in new_inv.items():
        if k not in old_inv:
            out.append(f"{name}: new invariant {k}: {text}")
        elif old_inv[k] != text:
            out.append(f"{name}: invariant {k}: {old_inv[k]} → {text}")
    for k in old_inv:
        if k not in new_inv:
            out.append(f"{name}: invariant {k} removed")
    return out


def diff_sets(old: MachineSet, new: MachineSet) -> tuple[list[MachineDiff], list[str]]:
    """Per-machine diffs (in NEW's pipeline order, then removed machines) and the table's changes."""
    old_views = {m.name: machine_view(m) for m in old.machines}
    new_views = {m.name: machine_view(m) for m in new.machines}
    names = [*new_views, *(n for n in old_views if n not in new_views)]
    machines = [diff_machine(old_views.get(n), new_views.get(n)) for n in names]
    return machines, diff_decision(old.decision, new.decision)


# --- the command ------------------------------------------------------------------------------


def run_diff(args: argparse.Namespace) -> int:
    old_spec, new_spec = args.diff
    with tempfile.TemporaryDirectory(prefix="execlab-diff-") as tmp:
        errors: list[SpecError] = []
        versions = []
        for spec, sub in ((old_spec, "old"), (new_spec, "new")):
            try:
                versions.append(load_version(spec, Path(tmp) / sub))
            except SpecErrors as exc:
                errors.extend(exc.errors)
        if errors:
            raise SpecErrors(errors)
        (old_label, old), (new_label, new) = versions
        machines, table = diff_sets(old, new)
    changed = [m for m in machines if m.changed]
    lines = [x for m in changed for x in m.summary] + table
    if not lines:
        print(f"no difference between {old_label} and {new_label}")
        return 0
    print(f"{old_label} → {new_label}: {len(lines)} change(s)")
    for x in lines:
        print(f"  {x}")
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for m in changed:
            assert m.view is not None
            m.view.subtitle = f"changes {old_label} → {new_label}: green added, red removed, blue changed"
            if args.format == "mermaid":
                path = out / f"{m.name}.md"
                path.write_text(markdown(m.view), encoding="utf-8")
            else:
                g = draw(m.view)
                (out / f"{m.name}.dot").write_text(g.source, encoding="utf-8")
                path = out / f"{m.name}.svg"
                path.write_text(g.pipe(format="svg", encoding="utf-8"), encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
        (out / "summary.txt").write_text(f"{old_label} → {new_label}\n" + "".join(f"{x}\n" for x in lines), encoding="utf-8")
    return 1
