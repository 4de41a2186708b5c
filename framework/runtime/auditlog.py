"""The audit log: one JSON object per line, every fact of a run, in order.

Lines are written with sorted keys and no wall-clock values, so the same recording and config
give a byte-identical file. Lines are buffered in memory and handed to the file whole, at least
once a second of wall time (and whenever a megabyte is pending), so a killed process leaves a
log that is valid up to its last complete line. A failed write (a full disk, a file size limit)
raises ``OSError`` once and writes nothing more: the log stays readable up to its last complete
line. The ``session_end`` record carries the sha256 of every line before it.

Every reader goes through :class:`LogLines` (or :func:`iter_records`): it yields the complete
lines and stops quietly at a torn last line or a cut-off gzip stream, keeping the torn tail
so a reader can say what it left out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from ..spec.errors import SpecError, SpecErrors

_encode = msgspec.json.Encoder(order="sorted").encode
FLUSH_EVERY_S = 1.0
FLUSH_BYTES = 1 << 20
_READ_CHUNK = 1 << 20


class AuditLog:
    def __init__(self, path: Path, compress: bool = False):
        self.path = path
        # Unbuffered: the bytes this class hands over are all that reach the file, whole lines only.
        self._raw = open(path, "xb", buffering=0)  # noqa: SIM115 - closed in close()
        self._gz = gzip.GzipFile(fileobj=_WholeWrites(self._raw), mode="wb", mtime=0) if compress else None
        self._pending = bytearray()
        self._digest = hashlib.sha256()
        self.seq = 0
        self.counts: dict[str, int] = {}
        self._last_flush = time.monotonic()
        self.closed = False
        self.failed: OSError | None = None
        # Called before the log's bytes reach the disk: files the log's lines depend on (the
        # live input) are written first, so a killed run never logs what its input lacks.
        self.before_flush: list[Callable[[], None]] = []

    def emit(self, record: dict[str, Any]) -> None:
        record["seq"] = self.seq
        self.seq += 1
        line = _encode(record) + b"\n"
        self._digest.update(line)
        self._pending += line
        kind = record["kind"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self._pending) >= FLUSH_BYTES:
            self.flush()
        else:
            self.flush_due()

    def flush_due(self) -> None:
        """Hand the pending lines to the file if a second has passed since the last time (also
        called while a session waits for its next event, so nothing decided stays in memory)."""
        if self._pending and time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.failed is not None:
            raise self.failed
        self._last_flush = time.monotonic()
        try:
            for hook in self.before_flush:
                hook()
            data, self._pending = bytes(self._pending), bytearray()
            if self._gz is not None:
                self._gz.write(data)
                self._gz.flush(zlib.Z_SYNC_FLUSH)  # readable up to here
            else:
                _write_all(self._raw, data)
        except OSError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: OSError) -> None:
        """After a failed write nothing more is written: what is on disk stays a valid prefix."""
        if exc.filename is None:
            exc.filename = str(self.path)
        self.failed = exc
        gz, self._gz = self._gz, None
        try:
            self._raw.close()
        except OSError:
            pass
        if gz is not None:
            try:  # the file is closed first, so nothing more of the stream reaches it
                gz.close()
            except (OSError, ValueError):
                pass
        self.closed = True

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        try:
            if self._gz is not None:
                self._gz.close()
            self._raw.close()
        except OSError as exc:
            self._fail(exc)
            raise
        self.closed = True

    def abandon(self) -> None:
        """Close without raising (the run is failing for another reason); keeps what was written."""
        if not self.closed:
            try:
                self.close()
            except OSError:
                pass


class _WholeWrites:
    """A file for GzipFile that never drops the rest of a short write (it ignores the count)."""

    def __init__(self, raw: Any):
        self.raw = raw

    def write(self, data: bytes) -> int:
        _write_all(self.raw, data)
        return len(data)

    def flush(self) -> None:
        pass


def _write_all(f: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError(28, "no space left on device (nothing written)")
        view = view[n:]


class LogLines:
    """The complete lines of an audit log (plain or gzip), each with its newline, in order.

    A last line without its newline, or the end of a gzip stream cut off mid-block (a killed
    run, a full disk), is not a line: iteration stops there, and ``torn`` holds the bytes left
    out. Reading streams, so a long log never has to fit in memory.
    """

    def __init__(self, path: str | Path, chunk_bytes: int = _READ_CHUNK):
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.torn = b""
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        self.torn, self.count = b"", 0
        pending = b""
        for chunk in self._chunks():
            if b"\n" not in chunk:
                pending += chunk
                continue
            parts = (pending + chunk).split(b"\n")
            pending = parts.pop()
            for part in parts:
                self.count += 1
                yield part + b"\n"
        self.torn = pending

    def _chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            if self.path.suffix != ".gz":
                yield from iter(lambda: f.read(self.chunk_bytes), b"")
                return
            d = zlib.decompressobj(wbits=31)
            for block in iter(lambda: f.read(self.chunk_bytes), b""):
                while block:
                    try:
                        yield d.decompress(block)
                    except zlib.error:
                        return  # damaged past here: what came before stands
                    if not d.eof:
                        break
                    block = d.unused_data  # another gzip member follows
                    d = zlib.decompressobj(wbits=31)

    def list(self) -> list[bytes]:
        return list(self)


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of an audit log, in order, up to its last complete line.

    A complete line that is not a JSON object is damage, not a torn write: a ``path:line``
    error."""
    for n, line in enumerate(LogLines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise SpecErrors([SpecError(str(path), n, getattr(exc, "colno", 0),
                                        f"not a JSON object ({getattr(exc, 'msg', exc)}); expected one record per line")]) from None
        if not isinstance(record, dict):
            raise SpecErrors([SpecError(str(path), n, 1, f"a JSON {type(record).__name__}; expected one record (an object) per line")])
        yield record
