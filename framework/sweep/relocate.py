"""Bringing home a run made on another machine.

A worker that received a recording as bytes replayed it from its own cache, so the run names
the cached path (in ``session.json``, ``summary.json`` and the first audit record). The bytes
are the same (the sha256 is recorded), so the run is the one the planner would have made with
the recording at its own path: the path is put back, and the log's digest, which covers the
first record, is recomputed. ``execlab verify`` on the relocated run re-runs it from the
planner's path and compares byte for byte, which checks the relocation too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import msgspec

_encode = msgspec.json.Encoder(order="sorted").encode


def _swap_paths(obj: object, old: str, new: str) -> object:
    if isinstance(obj, dict):
        return {k: (new if k == "path" and v == old else _swap_paths(v, old, new)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_swap_paths(v, old, new) for v in obj]
    return obj


def _relocate_log(lines: list[bytes], old: str, new: str) -> tuple[list[bytes], str, str]:
    """Lines with the path swapped in session_start, and the old and new digests."""
    old_digest = hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    first = _swap_paths(json.loads(lines[0]), old, new)
    lines = [_encode(first) + b"\n", *lines[1:]]
    new_digest = hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    last = json.loads(lines[-1])
    if last.get("kind") == "session_end" and last.get("digest") == old_digest:
        last["digest"] = new_digest
        lines[-1] = _encode(last) + b"\n"
    return lines, old_digest, new_digest


def relocate_files(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    """The run directory's files with the recording's path ``old`` replaced by ``new``."""
    if old == new:
        return files
    out = dict(files)
    digests = None
    for name in ("log.jsonl", "log.jsonl.gz"):
        if name not in files:
            continue
        raw = gzip.decompress(files[name]) if name.endswith(".gz") else files[name]
        lines = raw.splitlines(keepends=True)
        lines, *digests = _relocate_log(lines, old, new)
        data = b"".join(lines)
        if name.endswith(".gz"):
            buf = io.BytesIO()
            with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
                gz.write(data)
            data = buf.getvalue()
        out[name] = data
    if "session.json" in files:
        meta = _swap_paths(json.loads(files["session.json"]), old, new)
        out["session.json"] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if "summary.json" in files:
        summary = _swap_paths(json.loads(files["summary.json"]), old, new)
        if digests and summary.get("log_digest") == digests[0]:
            summary["log_digest"] = digests[1]
        out["summary.json"] = (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    return out


def write_files(run_dir: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = run_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
