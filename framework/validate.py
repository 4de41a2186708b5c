"""``execlab validate``: check machine files, metric sets, scenarios, session configs and sweeps.

It reads every kind of file the areas define, so it sits above them all (no area imports it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .spec import workspace
from .spec.errors import SpecError, SpecErrors, sort_key


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="validate machine files and configs (default: machines/ and configs/)")
    p.add_argument("paths", nargs="*", help="YAML files or folders")
    p.set_defaults(func=run)


def _default_specs(path: Path) -> dict[str, Path]:
    """The machine set a lone machine file is checked within: its workspace's (or the shipped)."""
    from .spec.session import MACHINE_FILES

    machines = workspace.machines_dir(path)
    specs = {name: machines / f"{name}.yaml" for name in MACHINE_FILES}
    specs["decision"] = machines / "decision.yaml"
    specs["metrics"] = machines / "metrics.yaml"
    return specs


def validate_file(path: Path) -> str:
    """Validate one file by what it declares; return what it was. Raises SpecErrors."""
    # imported here: `execlab --help` loads no command's machinery
    from .spec.loader import load_yaml
    from .spec.machines import load_machine_set
    from .spec.metrics import load_metric_set
    from .spec.session import load_session

    doc = load_yaml(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    if "session" in data:
        load_session(path)
        return "session config"
    if "sweep" in data:
        from .sweep.spec import load_sweep

        load_sweep(path)
        return "sweep"
    if "phases" in data:
        from framework.market.synthetic import load_scenario

        load_scenario(path)
        return "scenario"
    if "metrics" in data:
        load_metric_set(path)
        return "metric set"
    if data.get("machine") == "risk":
        from .spec.risk import load_risk_machine

        specs = _default_specs(path)
        load_risk_machine(path, load_metric_set(specs["metrics"]).names)
        return "risk machine"
    if "machine" in data or "table" in data:
        # A machine is checked within the default set, in place of the file of the same name.
        specs = _default_specs(path)
        name = data["machine"] if "machine" in data else "decision"
        specs[name if isinstance(name, str) and name in specs else f"extra_{name}"] = path
        metrics = load_metric_set(specs.pop("metrics"))
        decision = specs.pop("decision")
        machine_set = load_machine_set(list(specs.values()), decision, metrics.names)
        if "table" in data:
            n = len(machine_set.decision.invariants)
            return f"decision table; {n} invariant{'s' * (n != 1)} proven over every combination of states and flags"
        return "machine"
    raise SpecErrors([SpecError(str(path), 1, 1, "unknown kind of file; expected a top-level key machine:, table:, metrics:, phases: (a scenario), session: or sweep:")])


def run(args: argparse.Namespace) -> int:
    if args.paths:
        targets = [Path(p) for p in args.paths]
    else:
        ws = workspace.require()
        targets = [ws / "machines", ws / "configs"]
    files: list[Path] = []
    for t in targets:
        if t.is_dir():
            files += sorted([*t.rglob("*.yaml"), *t.rglob("*.yml")])
        else:
            files.append(t)
    if not files:
        print(f"nothing to validate: no YAML files in {', '.join(map(str, targets))}", file=sys.stderr)
        return 2
    errors: list[SpecError] = []
    for f in files:
        try:
            kind = validate_file(f)
            print(f"ok  {f}  ({kind})")
        except SpecErrors as exc:
            errors.extend(e for e in exc.errors if e not in errors)
    if errors:
        for e in sorted(set(errors), key=sort_key):
            print(e, file=sys.stderr)
        print(f"{len(set(errors))} error(s)", file=sys.stderr)
        return 2
    return 0
