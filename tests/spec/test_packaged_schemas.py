"""The packaged schemas are valid Draft 2020-12 schemas (checked here once, not at every start-up)."""

import jsonschema
import pytest

from framework.spec import schema as spec_schema

NAMES = sorted(p.name.removesuffix(".schema.json") for p in spec_schema.SCHEMA_DIR.iterdir()
               if p.name.endswith(".schema.json"))


def test_every_packaged_schema_is_found():
    assert {"session", "machine", "metrics", "decision", "log"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_packaged_schema_is_a_valid_schema(name):
    jsonschema.Draft202012Validator.check_schema(spec_schema.schema(name))
    assert spec_schema.validator(name).schema is spec_schema.schema(name)


def test_a_broken_schema_is_caught_by_the_metaschema_check():
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft202012Validator.check_schema({"type": "no such type"})
