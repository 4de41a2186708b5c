"""The audit log: one JSON object per line, every fact of a run, in order.

Lines are written with sorted keys and no wall-clock values, so the same recording and config
give a byte-identical file. Each line is written whole and flushed at least once a second of
wall time, so a killed process leaves a log that is valid up to its last complete line. The
``session_end`` record carries the sha256 of every line before it.
"""

from __future__ import annotations

import gzip
import hashlib
import time
import zlib
from pathlib import Path
from typing import Any

import msgspec

_encode = msgspec.json.Encoder(order="sorted").encode
FLUSH_EVERY_S = 1.0


class AuditLog:
    def __init__(self, path: Path, compress: bool = False):
        self.path = path
        if compress:
            self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
            self._file = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
        else:
            self._raw = None
            self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._compress = compress
        self._digest = hashlib.sha256()
        self.seq = 0
        self.counts: dict[str, int] = {}
        self._last_flush = time.monotonic()
        self.closed = False

    def emit(self, record: dict[str, Any]) -> None:
        record["seq"] = self.seq
        self.seq += 1
        line = _encode(record) + b"\n"
        self._digest.update(line)
        self._file.write(line)
        kind = record["kind"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_EVERY_S:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        if self._compress:
            self._file.flush(zlib.Z_SYNC_FLUSH)  # readable up to here
        else:
            self._file.flush()
        if self._raw is not None:
            self._raw.flush()

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            if self._raw is not None:
                self._raw.close()
            self.closed = True
