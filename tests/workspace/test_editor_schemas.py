"""Editors: every shipped YAML file names a complete schema on its first line, and is valid
against it; `execlab schema` writes those schemas and `--check` says when they are stale."""

import json
import re
from pathlib import Path

import jsonschema
import yaml

from framework.cli import main
from framework.spec import editor_schemas
from tests.support import REPO

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def _shipped_yaml() -> list[Path]:
    return sorted([*REPO.glob("machines/*.yaml"), *REPO.glob("configs/**/*.yaml"), *REPO.glob("examples/*.yaml")])


def test_every_shipped_yaml_names_its_schema_and_satisfies_it():
    files = _shipped_yaml()
    assert len(files) >= 10
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        m = MODELINE.match(first)
        assert m, f"{path}: no yaml-language-server line"
        schema_path = (path.parent / m.group(1)).resolve()
        assert schema_path.is_file(), f"{path}: {schema_path} does not exist"
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"


def test_the_session_schema_is_complete_for_editors():
    session = editor_schemas.bundled("session")
    for section in ("execution", "risk", "intents"):
        part = session["properties"][section]
        assert part.get("properties"), section  # no bare "type: object" left
        assert part.get("additionalProperties") is False, section
    bad = {"session": "s", "doc": "d", "source": {"kind": "replay", "path": "x"}, "risk": {"max_orderz": 3}}
    assert list(jsonschema.Draft202012Validator(session).iter_errors(bad))


def test_schema_command_writes_and_checks(tmp_path, capsys):
    assert main(["schema", "--out", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(f"{k}.schema.json" for k in editor_schemas.FILE_KINDS)
    assert main(["schema", "--out", str(tmp_path / "s"), "--check"]) == 0
    (tmp_path / "s" / "risk.schema.json").write_text("{}")  # not one of ours: ignored
    (tmp_path / "s" / "session.schema.json").write_text("{}")
    assert main(["schema", "--out", str(tmp_path / "s"), "--check"]) == 1
    assert "stale schemas" in capsys.readouterr().err


def test_the_checkout_schemas_are_current():
    assert editor_schemas.stale(REPO / "schemas") == []
