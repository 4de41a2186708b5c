"""Validation of a run's audit log: every record against the log's JSON Schema (generated from
the record declarations, ``framework/spec/records.py``), plus the checks a schema cannot
express (line numbers, first and last record, the digest)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import jsonschema

from ..spec import records
from .runlog import log_lines

LOG_VERSION = records.LOG_VERSION  # kept importable from here


@cache
def _validator() -> jsonschema.Draft202012Validator:
    s = records.log_schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def _where(err: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in err.absolute_path) or "top level"


def validate_records(lines: list[bytes], source: str = "log.jsonl", limit: int = 50) -> list[str]:
    """Problems found in the raw lines of a log, as ``log.jsonl:LINE: what; expected``."""
    problems: list[str] = []
    v = _validator()
    digest = hashlib.sha256()
    n = len(lines)
    for i, raw in enumerate(lines):
        line = i + 1
        if len(problems) >= limit:
            problems.append(f"{source}: stopped after {limit} problems")
            break
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            problems.append(f"{source}:{line}: not JSON ({exc}); expected one JSON object per line")
            digest.update(raw)
            continue
        if not isinstance(rec, dict):
            problems.append(f"{source}:{line}: a {type(rec).__name__}; expected a JSON object")
            digest.update(raw)
            continue
        for err in sorted(v.iter_errors(rec), key=lambda e: list(e.absolute_path)):
            kind = rec.get("kind", "?")
            problems.append(f"{source}:{line}: {kind}: {_where(err)}: {err.message.splitlines()[0]}")
        if rec.get("seq") != i and isinstance(rec.get("seq"), int):
            problems.append(f"{source}:{line}: seq is {rec.get('seq')}; expected {i} (the 0-based line number)")
        kind = rec.get("kind")
        if i == 0 and kind != "session_start":
            problems.append(f"{source}:{line}: first record is {kind!r}; expected session_start")
        if kind == "session_start" and i != 0:
            problems.append(f"{source}:{line}: session_start on line {line}; expected it only on line 1")
        if kind == "session_end":
            if i != n - 1:
                problems.append(f"{source}:{line}: session_end before the last line; expected it last")
            if rec.get("digest") != digest.hexdigest():
                problems.append(f"{source}:{line}: digest {rec.get('digest')} does not match the preceding lines' "
                                f"sha256 {digest.hexdigest()}; expected the log to be unaltered")
        digest.update(raw)
    if n == 0:
        problems.append(f"{source}: empty; expected at least session_start")
    elif b'"kind":"session_end"' not in lines[-1]:
        problems.append(f"{source}:{n}: the last record is not session_end; expected the log to end with it (interrupted run?)")
    elif n and not lines[-1].endswith(b"\n"):
        problems.append(f"{source}:{n}: no newline at the end; expected every line to end with \\n (truncated log?)")
    return problems


def validate_log(run_dir: str | Path) -> list[str]:
    """Every problem of a run's audit log; an empty list when it is valid. A torn last line
    (a write cut short) is named as one problem, after those of the complete lines."""
    lines = log_lines(run_dir)
    complete = list(lines)
    problems = validate_records(complete, lines.path.name)
    if lines.torn:
        problems.append(f"{lines.path.name}:{len(complete) + 1}: torn last line ({len(lines.torn)} bytes without a "
                        "newline); expected every line to end with \\n (a write cut short: the run was killed or the disk was full)")
    return problems
