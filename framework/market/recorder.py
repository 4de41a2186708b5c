"""Record raw websocket frames with their receive time, the layout replay reads.

One line per frame: ``<recv ns> <space> <raw frame>\\n``, gzip-compressed. The stream is
flushed with ``Z_SYNC_FLUSH`` at least every ``flush_s`` seconds (checked on every frame and by
:meth:`Recorder.tick`), so a killed recorder loses at most about a second and the file
decompresses up to its last complete line. Files rotate by size (compressed bytes) or age:
the first file is the given path, the next ones insert ``.0001``, ``.0002``... before the
``.frames.gz`` (or ``.gz``) suffix.

A frame containing a line break (never the case for Binance JSON) has it replaced by a space,
which keeps valid JSON equivalent and the file line-oriented.
"""

from __future__ import annotations

import gzip
import time
import zlib
from pathlib import Path


def part_path(path: Path, index: int) -> Path:
    """The path of rotation part ``index`` (0 is the path itself)."""
    if index == 0:
        return path
    name = path.name
    for suffix in (".frames.gz", ".gz"):
        if name.endswith(suffix):
            return path.with_name(f"{name[: -len(suffix)]}.{index:04d}{suffix}")
    return path.with_name(f"{name}.{index:04d}")


class Recorder:
    """``rec.write(recv_ns, raw)`` for every frame; ``rec.close()`` at the end."""

    def __init__(self, path: str | Path, *, rotate_bytes: int | None = None,
                 rotate_s: float | None = None, flush_s: float = 1.0,
                 clock=time.monotonic):
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.rotate_s = rotate_s
        self.flush_s = flush_s
        self.clock = clock
        self.lines = 0
        self.files: list[Path] = []
        self._raw = None
        self._gz: gzip.GzipFile | None = None
        self._opened_at = 0.0
        self._flushed_at = 0.0
        self._dirty = False
        self._open(0)

    def _open(self, index: int) -> None:
        p = part_path(self.path, index)
        p.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(p, "wb")  # noqa: SIM115 - closed in _close_file
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6)
        self.files.append(p)
        self._opened_at = self._flushed_at = self.clock()

    def _close_file(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._raw.close()
            self._gz = None

    def write(self, recv_ns: int, raw: str) -> None:
        if self._gz is None:
            raise ValueError("recorder is closed")
        if "\n" in raw or "\r" in raw:
            raw = raw.replace("\r", " ").replace("\n", " ")
        self._gz.write(f"{recv_ns} {raw}\n".encode("utf-8", "replace"))
        self.lines += 1
        self._dirty = True
        self.tick()

    __call__ = write  # usable directly as BinanceSource(on_frame=recorder)

    def tick(self) -> None:
        """Flush if due and rotate if due; call at least once a second when idle."""
        if self._gz is None:
            return
        now = self.clock()
        if self._dirty and now - self._flushed_at >= self.flush_s:
            self.flush()
        if (self.rotate_s is not None and now - self._opened_at >= self.rotate_s) or (
                self.rotate_bytes is not None and self._raw.tell() >= self.rotate_bytes):
            self.flush()
            self._close_file()
            self._open(len(self.files))

    def flush(self) -> None:
        if self._gz is not None:
            self._gz.flush(zlib.Z_SYNC_FLUSH)
            self._raw.flush()
            self._flushed_at = self.clock()
            self._dirty = False

    def close(self) -> None:
        self.flush()
        self._close_file()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
