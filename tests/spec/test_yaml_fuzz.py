"""Fuzzing every shipped YAML file: mutated specs are either valid or refused with SpecErrors.

Each example takes one shipped file (machines/, configs/, configs/scenarios/), mutates its
text, and loads it the way ``execlab validate``/``run`` would (a machine within the default
set, a config with every spec it names and its execution sections). The outcome must be a
loaded spec or ``SpecErrors`` with positions: never another exception (a traceback for the
user), never a hang (a watchdog per example, generous: it detects hangs, it does not time).
Mutations that make a file invalid for sure (a number made non-finite, an alias or nesting
bomb) must be refused.

The default run is a few seconds. A nightly run sets ``EXECLAB_FUZZ_EXAMPLES`` (examples per
file, e.g. 2000) and optionally ``EXECLAB_FUZZ_SEED``; the figures are printed with ``-s``.
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from framework.execution.config import ExecutionConfig, IntentConfig, RiskConfig
from framework.spec.errors import SpecErrors
from framework.spec.loader import parse_yaml
from framework.spec.machines import load_machine_set
from framework.spec.metrics import parse_metric_set
from framework.spec.session import MACHINE_FILES, load_session
from framework.validate import validate_file
from tests.support import REPO

MACHINES_DIR = REPO / "machines"
CONFIGS_DIR = REPO / "configs"

EXAMPLES = int(os.environ.get("EXECLAB_FUZZ_EXAMPLES", "8"))
SEED = os.environ.get("EXECLAB_FUZZ_SEED")
WATCHDOG_S = 30.0  # per example; a hang detector, far above the few milliseconds one takes

SHIPPED = sorted([*MACHINES_DIR.glob("*.yaml"), *CONFIGS_DIR.glob("*.yaml"), *(CONFIGS_DIR / "scenarios").glob("*.yaml")])
STATS: Counter = Counter()

NON_FINITE = [".nan", ".NaN", ".inf", "-.inf", "+.inf", ".Inf", "1.0e+400", "-1.0e+400"]
OTHER_NUMBERS = ["-1", "0", "-0.0", "1.0e+300", "1e-320", "99999999999999999999", "-5"]
OTHER_VALUES = ["'x'", "true", "null", "[]", "{}", "[1, 2]", "{a: 1}", "~", "''", "!!binary aGk=", "2024-01-01"]
ALPHABET = list(":-[]{}&*!|>'\"#%@`,? \t\n") + ["a", "Z", "0", "9", ".", "\x00", "\x1b", "\xe9", "ｍ", "\u2028", "\ufeff"]
BOUND_MESSAGES = ("nesting deeper than", "aliases", "expands to more than", "refers to a node that contains it",
                  "larger than a spec can be")


class Hang(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise Hang(f"an example ran longer than {WATCHDOG_S} s")


@pytest.fixture(autouse=True, scope="module")
def report_figures():
    yield
    print(f"\nYAML fuzz: {len(SHIPPED)} shipped files, {STATS['examples']} mutated texts "
          f"({STATS['accepted']} valid, {STATS['refused']} refused), crashes 0, hangs 0")


def kind_of(path: Path) -> str:
    if path.parent == MACHINES_DIR:
        return {"metrics": "metrics", "decision": "decision"}.get(path.stem, "machine")
    return "scenario" if path.parent.name == "scenarios" else "config"


def load(path: Path, text: str, tmp: Path) -> None:
    """Load ``text`` as the file at ``path`` the way the CLI would; raises SpecErrors."""
    kind = kind_of(path)
    if kind == "config":
        load_session(path, text=text)  # relative paths resolve against the shipped file's folder
        doc = parse_yaml(text, str(path))
        ExecutionConfig.from_document(doc)
        RiskConfig.from_document(doc)
        IntentConfig.from_document(doc)
    else:  # as `execlab validate FILE` does: by what the file declares, a machine within the default set
        f = tmp / path.name
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
        validate_file(f)
        if kind == "metrics":  # and the machines must still find every metric they read
            metrics = parse_metric_set(text, str(path))
            load_machine_set([MACHINES_DIR / f"{m}.yaml" for m in MACHINE_FILES], MACHINES_DIR / "decision.yaml",
                             metrics.names)


def outcome(path: Path, text: str, tmp: Path) -> SpecErrors | None:
    """None if valid, the SpecErrors if refused; anything else fails the test."""
    STATS["examples"] += 1
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, WATCHDOG_S)
    try:
        load(path, text, tmp)
    except SpecErrors as exc:
        STATS["refused"] += 1
        for e in exc.errors:
            assert e.line >= 1 and e.col >= 1, f"error without a position: {e}"
            assert "Traceback" not in e.message
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    STATS["accepted"] += 1
    return None


# --- mutations ------------------------------------------------------------------------------

_NUMBER_TOKEN = re.compile(r"[-+]?[0-9][0-9_.eE+-]*")


def numeric_spans(text: str, path: Path) -> list[tuple[int, int]]:
    """(start, end) offsets of every value in ``text`` that YAML reads as a number."""
    doc = parse_yaml(text, str(path))
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    spans = []
    for keys, (line, col) in doc.positions.items():
        value = doc.data
        for k in keys:
            value = value[k]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            start = line_starts[line - 1] + col - 1
            m = _NUMBER_TOKEN.match(text, start)
            if m:
                spans.append((start, m.end()))
    return sorted(spans)


def scalar_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of simple block values `key: value` on one line (for type swaps)."""
    return [(m.start(1), m.end(1)) for m in re.finditer(r"^\s*[\w.]+:[ ]+([^\s#>|][^#\n]*?)\s*$", text, re.M)]


@st.composite
def mutated(draw, text: str, numbers: list[tuple[int, int]]):
    """(kind, mutated text, must_be_refused)."""
    kind = draw(st.sampled_from(["non_finite", "number", "type", "truncate", "chars", "lines", "bomb"]))
    if kind in ("non_finite", "number") and numbers:
        start, end = draw(st.sampled_from(numbers))
        new = draw(st.sampled_from(NON_FINITE if kind == "non_finite" else OTHER_NUMBERS))
        return kind, text[:start] + new + text[end:], kind == "non_finite"
    if kind == "type":
        spans = scalar_spans(text)
        start, end = draw(st.sampled_from(spans))
        return kind, text[:start] + draw(st.sampled_from(OTHER_VALUES + NON_FINITE[:1])) + text[end:], False
    if kind == "truncate":
        return kind, text[: draw(st.integers(0, len(text)))], False
    if kind == "chars":
        out = text
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(out)))
            op = draw(st.sampled_from(["insert", "delete", "replace"]))
            c = draw(st.sampled_from(ALPHABET))
            out = out[:i] + c + out[i:] if op == "insert" else out[:i] + out[i + 1:] if op == "delete" \
                else out[:i] + c + out[i + 1:]
        return kind, out, False
    if kind == "lines":
        lines = text.splitlines(keepends=True)
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = "  " + lines[i]
        else:
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
        return kind, "".join(lines), False
    return "bomb", text.rstrip("\n") + "\n" + draw(bombs()), True


@st.composite
def bombs(draw):
    """A top-level key whose value is an alias or nesting bomb beyond the loader's bounds."""
    which = draw(st.sampled_from(["laughs", "self", "brackets", "braces", "block", "aliases"]))
    if which == "laughs":
        fan, levels = draw(st.integers(6, 12)), draw(st.integers(6, 9))
        out = "zz_a0: &a0 [" + ", ".join(["lol"] * fan) + "]\n"
        for i in range(1, levels + 1):
            out += f"zz_a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]\n"
        return out
    if which == "self":
        return draw(st.sampled_from(["zz: &s [1, *s]\n", "zz: &s {k: *s}\n", "zz: &s\n  k: [*s]\n"]))
    if which == "brackets":
        n = draw(st.integers(65, 5000))
        return "zz: " + "[" * n + "]" * n + "\n"
    if which == "braces":
        n = draw(st.integers(65, 800))
        return "zz: " + "{k: " * n + "1" + "}" * n + "\n"
    if which == "block":
        n = draw(st.integers(65, 300))
        return "".join(" " * i + f"zz{i}:\n" for i in range(n)) + " " * n + "v\n"
    n = draw(st.integers(257, 2000))
    return "zz_x: &x 1\nzz: [" + ", ".join(["*x"] * n) + "]\n"


def fuzz_settings(f):
    f = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED is None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])(f)
    return seed(int(SEED))(f) if SEED is not None else f


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_mutated_shipped_yaml_is_loaded_or_refused_without_a_crash(path, tmp_path):
    text = path.read_text()
    assert outcome(path, text, tmp_path) is None  # the shipped file itself is valid
    numbers = numeric_spans(text, path)
    assert numbers, "every shipped file has numbers to mutate"

    @fuzz_settings
    @given(mutated(text, numbers))
    def run(case):
        kind, new_text, must_be_refused = case
        STATS[f"kind:{kind}"] += 1
        refused = outcome(path, new_text, tmp_path)
        if must_be_refused:
            assert refused is not None, f"{kind} mutation accepted:\n{new_text}"
        if kind == "bomb":
            assert any(m in e.message for e in refused.errors for m in BOUND_MESSAGES), refused
        if kind == "non_finite":
            assert any("finite" in e.message or "not a number" in e.message for e in refused.errors), refused

    run()


def test_every_shipped_directory_is_fuzzed():
    folders = {p.parent for p in SHIPPED}
    assert folders == {MACHINES_DIR, CONFIGS_DIR, CONFIGS_DIR / "scenarios"}
    assert len(SHIPPED) >= 12
