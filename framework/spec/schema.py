"""JSON Schema (Draft 2020-12) validation of loaded documents, with positions in the errors.

``"type": "number"`` means a finite number here: JSON has no NaN or infinity, but YAML does
(``.nan``, ``.inf``) and plain JSON Schema would let them through every bound (``nan < 0`` is
false). A field that really allows infinity says so with ``"allowInfinity": true`` next to its
type; no field allows NaN.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema

from .errors import SpecError, SpecErrors
from .loader import Document, load_yaml

SCHEMA_DIR = resources.files("framework.spec") / "schemas"


@cache
def schema(name: str) -> dict:
    """The packaged schema ``framework/spec/schemas/<name>.schema.json``."""
    text = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _finite_type(validator, types, instance, schema):  # noqa: ANN001 (jsonschema's keyword signature)
    """The ``type`` keyword, with non-finite floats refused unless the schema allows infinity."""
    yield from _DRAFT_TYPE(validator, types, instance, schema)
    if isinstance(instance, float) and not math.isfinite(instance):
        if math.isnan(instance):
            yield jsonschema.ValidationError(f"{instance!r} is not a number; expected a finite number")
        elif not schema.get("allowInfinity", False):
            yield jsonschema.ValidationError(f"{instance!r} is not finite; expected a finite number")


_DRAFT_TYPE = jsonschema.Draft202012Validator.VALIDATORS["type"]
FiniteValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"type": _finite_type})


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for the packaged schema ``name`` where numbers are finite (see above). The
    packaged schemas are checked against the metaschema by the tests, not on every start-up
    (that check cost more than the rest of a session's loading)."""
    return FiniteValidator(schema(name))




def _describe(err: jsonschema.ValidationError) -> str:
    """A short 'what is wrong; what was expected' sentence from a jsonschema error."""
    where = "/".join(str(p) for p in err.absolute_path) or "top level"
    v = err.validator
    if v == "required":
        return f"{err.message} at {where}; expected the property to be present"
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else "; expected no other properties"
        return f"{err.message} at {where}{hint}"
    if v == "type" and isinstance(err.instance, float) and not math.isfinite(err.instance):
        return f"{where}: {err.message}"
    if v == "type":
        return f"{where}: {err.instance!r} has the wrong type; expected {err.validator_value}"
    if v == "enum":
        return f"{where}: {err.instance!r} is not allowed; expected one of {err.validator_value}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"{where}: {err.message}; expected a value within range"
    if v == "pattern":
        return f"{where}: {err.instance!r} does not match the expected form; expected pattern {err.validator_value}"
    if v in ("oneOf", "anyOf"):
        return f"{where}: {err.message.splitlines()[0]}; expected one of the allowed forms"
    return f"{where}: {err.message}"


def check(doc: Document, schema_name: str, at: tuple = ()) -> list[SpecError]:
    """All schema errors of ``doc`` (or of its sub-tree at ``at``) against a packaged schema."""
    errors: list[SpecError] = []
    data = doc.data
    for k in at:
        data = data[k]
    for err in validator(schema_name).iter_errors(data):
        keys = tuple(at) + tuple(err.absolute_path)
        # For a property that should not be there, point at its key rather than the mapping.
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
            if extra:
                keys = keys + (extra[0],)
                errors.append(doc.error(keys, _describe(err), key=True))
                continue
        errors.append(doc.error(keys, _describe(err)))
    return errors


def load_validated(path: str | Path, schema_name: str) -> Document:
    """Load a YAML file and validate it against a packaged schema; raise SpecErrors if invalid."""
    doc = load_yaml(path)
    errors = check(doc, schema_name)
    if errors:
        raise SpecErrors(errors)
    return doc


def schema_path(name: str) -> Path:
    return Path(str(SCHEMA_DIR / f"{name}.schema.json"))
