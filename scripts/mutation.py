#!/usr/bin/env python3
"""A bounded mutation run over the comparisons the machines, the risk guard and the replay
fast path's screens make: does some test fail when one of them changes by one character?

Mutations (one at a time): a comparison operator made strict or not strict (``<`` <-> ``<=``,
``>`` <-> ``>=``) or negated (``==`` <-> ``!=``), and a numeric constant moved by one (``n`` ->
``n + 1``; ``0.5`` -> ``1.5``) or a boolean constant flipped. Only the functions listed in
TARGETS are mutated. Each mutant runs the targeted tests (STAGES) in a copy of the checkout,
so the checkout is never touched; a mutant is killed when a test fails (or the run exceeds its
time limit), and survives when they all pass. Hypothesis draws a fixed sequence (CI=1), so a
run is reproducible.

    .venv/bin/python scripts/mutation.py                # every mutant, prints figures
    .venv/bin/python scripts/mutation.py --list         # the mutants only, no test runs
    .venv/bin/python scripts/mutation.py --sample 40 --seed 1 --json out.json
    .venv/bin/python scripts/mutation.py --only risk.py:151
    .venv/bin/python scripts/mutation.py --file gate.py --mutations compare
    .venv/bin/python scripts/mutation.py --mutations compare    # comparison operators only

Not part of the test suite: a full run takes a few minutes per dozen mutants on one core.
Results and the surviving mutants are discussed in docs/development.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# file -> the functions (or methods) mutated; None: every function of the file. Each layer's
# screen is beside its step: StateMachine.screen, _hold_flags, screen_conditions, catch_up_holds
# (machine.py), RiskGuard.screen, see_mids (risk.py), DecisionTable.varies_with; blocks.py
# keeps the scheduling around them.
TARGETS: dict[str, set[str] | None] = {
    "framework/machines/machine.py": None,
    "framework/machines/gate.py": None,
    "framework/execution/risk.py": None,
    "framework/machines/decision.py": {"varies_with"},
    "framework/runtime/blocks.py": {"_make_screen", "_risk_flags", "_machine_flags", "_extremes", "_sync_holds",
                                    "_screen_at", "_next_flagged", "_next_tick_row"},
}
# Stages: a mutant runs the first; one that survives it runs the next (the path comparisons
# are slow, and most mutants die in the first stage).
STAGES = [
    ["tests/runtime/test_boundaries.py", "tests/execution/test_risk.py",
     "tests/machines/test_event_time_machines.py", "tests/machines/test_gate.py"],
    # the boundaries no outcome shows (where the gate may skip, how long a cached timer is known,
    # the order window's edges), written for what survived the stage above; a stage of its own,
    # so a run shows which mutants only they kill
    ["tests/machines/test_boundaries_gate.py", "tests/machines/test_boundaries_machine.py",
     "tests/execution/test_boundaries_risk.py"],
    # the path comparisons that exercise the screens on short streams (the shipped sessions on
    # whole recordings and the random scenarios take minutes each)
    ["tests/runtime/test_blocks.py", "-k", "tiny_blocks or busy_risk or screen_made_ahead or long_synthetic"],
]
FLIP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}


@dataclass
class Mutant:
    file: str
    line: int
    col: int
    end_col: int
    old: str
    new: str
    function: str
    status: str = "not run"
    seconds: float = 0.0
    killed_by: str = ""

    @property
    def operator(self) -> str:
        return "compare" if self.old in ("<", "<=", ">", ">=", "==", "!=") else "constant"

    @property
    def name(self) -> str:
        return f"{Path(self.file).name}:{self.line}:{self.col} {self.old} -> {self.new} (in {self.function})"


def _functions(tree: ast.AST):
    """(qualified name, node) of every function, methods as Class.method."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield prefix + child.name, child
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
    yield from walk(tree, "")


def _docstrings(fn: ast.AST) -> set[int]:
    body = getattr(fn, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return {id(body[0].value)}
    return set()


def mutants_of(rel: str, wanted: set[str] | None) -> list[Mutant]:
    text = (REPO / rel).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    found: dict[tuple[int, int], Mutant] = {}
    for qual, fn in _functions(tree):
        if wanted is not None and qual.split(".")[-1] not in wanted:
            continue
        skip = _docstrings(fn)
        for node in ast.walk(fn):
            if isinstance(node, ast.Compare):
                left = node.left
                for op, right in zip(node.ops, node.comparators, strict=True):
                    if type(op) in FLIP and left.end_lineno == right.lineno:
                        line = lines[left.end_lineno - 1]
                        span = line[left.end_col_offset:right.col_offset]
                        old, new = FLIP[type(op)]
                        at = span.find(old)
                        if at >= 0 and span.strip().strip("()") == old:
                            col = left.end_col_offset + at
                            found[(left.end_lineno, col)] = Mutant(rel, left.end_lineno, col, col + len(old), old, new, qual)
                    left = right
            elif isinstance(node, ast.Constant) and id(node) not in skip and node.lineno == node.end_lineno:
                v = node.value
                if isinstance(v, bool):
                    new = repr(not v)
                elif isinstance(v, (int, float)):
                    new = repr(v + 1)
                else:
                    continue
                old = lines[node.lineno - 1][node.col_offset:node.end_col_offset]
                found[(node.lineno, node.col_offset)] = Mutant(rel, node.lineno, node.col_offset, node.end_col_offset,
                                                               old, new, qual)
    return [found[k] for k in sorted(found)]


def apply(text: str, m: Mutant) -> str:
    lines = text.splitlines(keepends=True)
    line = lines[m.line - 1]
    assert line[m.col:m.end_col] == m.old, (m.name, line[m.col:m.end_col])
    lines[m.line - 1] = line[:m.col] + m.new + line[m.end_col:]
    return "".join(lines)


def _copy_checkout(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", "runs", "mutants", ".pytest_cache")
    for name in ("framework", "tests", "machines", "configs", "data", "diagrams", "schemas", "examples",
                 "pyproject.toml", "README.md", "docs"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """The outcome, the seconds taken and the first test that failed (its pytest node id)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
           "HOME": str(Path.home()), "CI": "1"}  # CI: hypothesis draws a fixed sequence
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.perf_counter() - started, ""
    took = time.perf_counter() - started
    failed = next((line[len("FAILED "):].split(" - ")[0] for line in done.stdout.decode(errors="replace").splitlines()
                   if line.startswith("FAILED ")), "")
    if done.returncode == 0:
        return "survived", took, ""
    if done.returncode == 1:
        return "killed", took, failed
    return f"error (pytest exit {done.returncode})", took, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="list the mutants and stop")
    ap.add_argument("--mutations", choices=["compare", "constant", "all"], default="all",
                    help="comparison operators, numeric/boolean constants, or both (default)")
    ap.add_argument("--sample", type=int, help="run a random sample of this many mutants")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample")
    ap.add_argument("--only", action="append", default=[], help="FILE:LINE of the mutants to run (repeatable)")
    ap.add_argument("--file", action="append", default=[], help="only the mutants of this file name, e.g. gate.py (repeatable)")
    ap.add_argument("--tests", nargs="+", help="the tests each mutant runs (default: the stages above)")
    ap.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    args = ap.parse_args(argv)

    mutants = [m for rel, wanted in TARGETS.items() for m in mutants_of(rel, wanted)]
    if args.mutations != "all":
        mutants = [m for m in mutants if m.operator == args.mutations]
    stages = [args.tests] if args.tests else STAGES
    if args.file:
        mutants = [m for m in mutants if Path(m.file).name in args.file]
    if args.only:
        mutants = [m for m in mutants if f"{Path(m.file).name}:{m.line}" in args.only]
    if args.sample is not None and args.sample < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.sample), key=lambda m: (m.file, m.line, m.col))
    if args.list:
        for m in mutants:
            print(m.name)
        print(f"{len(mutants)} mutants")
        return 0
    if not mutants:
        print("no mutants selected", file=sys.stderr)
        return 2

    # A stop (SIGTERM) ends the test run in progress and removes the copy, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="execlab-mutation-") as tmp:
        root = Path(tmp)
        _copy_checkout(root)
        limits = []
        for tests in stages:
            status, base, _ = run_tests(root, tests, timeout=3600)
            if status != "survived":
                print(f"{' '.join(tests)} fail without any mutation ({status}); fix that first", file=sys.stderr)
                return 2
            limits.append(max(120.0, 5 * base))
            print(f"unmutated: {' '.join(tests)} pass in {base:.1f} s", flush=True)
        print(f"{len(mutants)} mutants", flush=True)
        for i, m in enumerate(mutants, 1):
            path = root / m.file
            original = path.read_text(encoding="utf-8")
            path.write_text(apply(original, m), encoding="utf-8")
            try:
                for tests, limit in zip(stages, limits, strict=True):
                    m.status, took, failed = run_tests(root, tests, limit)
                    m.seconds += took
                    if m.status != "survived":
                        m.killed_by = failed or " ".join(tests)
                        break
            finally:
                path.write_text(original, encoding="utf-8")
            print(f"[{i}/{len(mutants)}] {m.status:9} {m.name}" + (f"  by {m.killed_by}" if m.killed_by else ""),
                  flush=True)
            if args.json:  # after every mutant, so a stopped run keeps what it found
                _write_json(args.json, stages, mutants)

    killed, survived, errors, rate = _tally(mutants)
    print(f"\n{killed} killed, {len(survived)} survived, {len(errors)} errors, of {len(mutants)}: "
          f"kill rate {rate:.1%}")
    for m in survived:
        print(f"  survived: {m.name}")
    if args.json:
        _write_json(args.json, stages, mutants)
    return 0


def _tally(mutants: list[Mutant]) -> tuple[int, list[Mutant], list[Mutant], float]:
    killed = sum(m.status.startswith("killed") for m in mutants)
    survived = [m for m in mutants if m.status == "survived"]
    errors = [m for m in mutants if m.status.startswith("error")]
    return killed, survived, errors, killed / max(killed + len(survived), 1)


def _write_json(path: Path, stages: list[list[str]], mutants: list[Mutant]) -> None:
    """Every mutant and its outcome so far ("not run" for those still to come)."""
    killed, survived, errors, rate = _tally(mutants)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"stages": stages, "killed": killed, "survived": len(survived),
                               "errors": len(errors), "kill_rate": round(rate, 4),
                               "mutants": [asdict(m) for m in mutants]}, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
