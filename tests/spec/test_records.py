"""The audit log's record declarations (framework/spec/records.py) against the code and docs
that write and read records.

The writers must build every record through a declared constructor (no record dict spelled out
anywhere else), each constructor writes declared fields of its kind only, in the declared order,
called only from its layer; the schema readers validate with is generated from the declarations
and shipped current; the readers compare ``kind`` with declared kinds only; docs/audit-log.md
names every field a constructor writes.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import jsonschema
import pytest

from framework.audit.logschema import validate_records
from framework.spec import records
from tests.support import REPO

PACKAGE = REPO / "framework"
COMMON = ["ts_ns", "symbol", "kind"]


def _sources() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "defaults" not in p.relative_to(PACKAGE).parts]


def _returned_dict(fn) -> ast.Dict:
    tree = ast.parse(inspect.getsource(fn))
    (ret,) = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
    assert isinstance(ret.value, ast.Dict), f"{fn.__name__} returns a dict literal"
    return ret.value


def _written(fn) -> tuple[list[str], dict[str, object]]:
    """The keys a constructor writes, in order, and those with a constant value."""
    d = _returned_dict(fn)
    keys, constants = [], {}
    for k, v in zip(d.keys, d.values, strict=True):
        assert isinstance(k, ast.Constant), f"{fn.__name__}: every key spelled out"
        keys.append(k.value)
        if isinstance(v, ast.Constant):
            constants[k.value] = v.value
    return keys, constants


@pytest.mark.parametrize("name", sorted(records.WRITERS))
def test_a_constructor_writes_declared_fields_of_its_kind_in_order(name):
    w = records.WRITERS[name]
    keys, constants = _written(w.build)
    assert keys[:3] == COMMON
    assert constants["kind"] == w.kind
    declared = records.BY_KIND[w.kind]
    names = declared.field_names()
    assert [k for k in keys[3:] if k not in names] == [], f"{name}: fields not declared for {w.kind}"
    assert keys[3:] == [n for n in names if n in keys[3:]], f"{name}: fields not in the declared order"
    assert [f.name for f in declared.fields if f.required and f.name not in keys] == []
    assert [f.name for f in declared.fields if not f.written and f.name in keys] == []


def test_every_declared_field_is_written_by_some_constructor():
    written = {(w.kind, k) for w in records.WRITERS.values() for k in _written(w.build)[0]}
    unwritten = [f"{t.kind}.{f.name}" for t in records.TYPES for f in t.fields
                 if f.written and (t.kind, f.name) not in written]
    assert unwritten == []
    assert {w.kind for w in records.WRITERS.values()} == set(records.BY_KIND)


def test_a_constructor_builds_a_record_the_schema_accepts():
    rec = records.transition(5, "BTCUSDT", machine="regime", from_="NORMAL", to="FAST", rule=1, guard="when x",
                             inputs={"metrics.x": 1.0}, params={"p": 2})
    assert rec["from"] == "NORMAL" and rec["kind"] == "transition"
    v = jsonschema.Draft202012Validator(records.log_schema())
    assert list(v.iter_errors({**rec, "seq": 0})) == []
    assert list(v.iter_errors({**rec, "seq": 0, "rule": 0}))  # the declared minimum holds


def _calls_to_constructors(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {a.asname or a.name: a.name for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and (n.module or "").endswith("records") for a in n.names}
    calls = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        f = n.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "records" \
                and f.attr in records.WRITERS:
            calls.append((f.attr, n.lineno))
        elif isinstance(f, ast.Name) and imported.get(f.id) in records.WRITERS:
            calls.append((imported[f.id], n.lineno))
    return calls


def test_each_constructor_is_called_from_its_own_layer_only():
    called, wrong = set(), []
    for path in _sources():
        if path.name == "records.py":
            continue
        layer = path.relative_to(PACKAGE).parts[0]
        for name, line in _calls_to_constructors(path):
            called.add(name)
            if records.WRITERS[name].layer != layer:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {name} belongs to {records.WRITERS[name].layer}")
    assert wrong == []
    assert set(records.WRITERS) - called == set(), "a constructor no writer uses"


def test_no_record_is_spelled_out_as_a_dict_outside_the_declarations():
    kinds = set(records.BY_KIND)
    found = []
    for path in _sources():
        if path.name == "records.py":
            continue
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(n, ast.Dict):
                continue
            d = {k.value: v for k, v in zip(n.keys, n.values, strict=True) if isinstance(k, ast.Constant)}
            kind = d.get("kind")
            if "ts_ns" in d and isinstance(kind, ast.Constant) and kind.value in kinds:
                found.append(f"{path.relative_to(REPO)}:{n.lineno}: a {kind.value} record")
    assert found == [], "build records with framework.spec.records"


def test_log_version_is_defined_once():
    defined = []
    for path in _sources():
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LOG_VERSION" for t in n.targets) \
                    and isinstance(n.value, ast.Constant):
                defined.append(str(path.relative_to(REPO)))
    assert defined == ["framework/spec/records.py"]


def test_the_shipped_schema_file_is_the_generated_one():
    shipped = records.SCHEMA_FILE.read_text(encoding="utf-8")
    assert shipped == records.log_schema_text(), "stale: run python -m framework.spec.records"
    jsonschema.Draft202012Validator.check_schema(json.loads(shipped))


def _kind_reads(tree: ast.AST) -> list[tuple[str, int]]:
    """String constants compared with a record's kind: ``r["kind"] == "x"``, ``r.get("kind") in (...)``."""
    def is_kind(e: ast.AST) -> bool:
        if isinstance(e, ast.Subscript):
            return isinstance(e.slice, ast.Constant) and e.slice.value == "kind"
        return (isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "get"
                and bool(e.args) and isinstance(e.args[0], ast.Constant) and e.args[0].value == "kind")

    def constants(e: ast.AST) -> list[str]:
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return [e.value]
        if isinstance(e, (ast.Tuple, ast.List, ast.Set)):
            return [x.value for x in e.elts if isinstance(x, ast.Constant) and isinstance(x.value, str)]
        return []

    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            if any(is_kind(s) for s in sides):
                out += [(c, n.lineno) for s in sides for c in constants(s)]
    return out


READERS = ["audit", "dashboard", "sweep", "runtime"]
# "kind" values of things other than records, compared the same way: a session's source
# (session.json, session_start.source) and the parts of a why-not answer.
NOT_RECORDS = {"replay", "live", "relive", "scenario", "after", "when", "for"}


def test_readers_compare_kind_with_declared_kinds_only():
    unknown, seen = [], set()
    for path in _sources():
        if path.relative_to(PACKAGE).parts[0] not in READERS:
            continue
        for kind, line in _kind_reads(ast.parse(path.read_text(encoding="utf-8"))):
            seen.add(kind)
            if kind not in records.BY_KIND and kind not in NOT_RECORDS:
                unknown.append(f"{path.relative_to(REPO)}:{line}: {kind!r}")
    assert unknown == []
    assert {"transition", "decision", "session_end"} <= seen  # the scan finds the readers


def _doc_region(text: str, kind: str) -> str:
    """The section headed by the kind, or its row in the paper engine's table."""
    m = re.search(rf"^### `{kind}`.*?(?=^### |^## )", text, re.M | re.S)
    if m:
        return m.group(0)
    row = re.search(rf"^\| `{kind}` \|.*$", text, re.M)
    assert row, f"docs/audit-log.md: no section or row for {kind}"
    return row.group(0)


def test_the_audit_log_doc_names_every_field_written():
    text = (REPO / "docs" / "audit-log.md").read_text(encoding="utf-8")
    assert f"# The audit log (log_version {records.LOG_VERSION})" in text
    missing = []
    for t in records.TYPES:
        region = _doc_region(text, t.kind)
        missing += [f"{t.kind}.{f.name}" for f in t.fields if f.written and f"`{f.name}`" not in region]
    assert missing == []


def test_a_hand_made_log_line_of_an_undeclared_shape_is_named():
    start = records.session_start(1, session="s", config_hash="0" * 64, symbols=["X"], source={}, initial={},
                                  decision={})
    bad = {**records.feed(2, "X", event="gap", detail=None, gap_ms=None), "event": "teleport"}
    lines = [json.dumps({**r, "seq": i}, sort_keys=True).encode() + b"\n" for i, r in enumerate([start, bad])]
    problems = validate_records(lines)
    assert any("log.jsonl:2: feed: event" in p for p in problems)
