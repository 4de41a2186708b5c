"""Reading a run directory: its audit log, its snapshot, the machines it ran with.

The run directory contract is described in docs/audit-log.md. Everything here reads only what
the run left on disk, so a run can be explained and reported long after it ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..runtime.auditlog import LogLines, iter_records
from ..spec.errors import SpecError, SpecErrors
from ..spec.machines import MachineSet, load_machine_set

LOG_NAMES = ("log.jsonl", "log.jsonl.gz")
NS = 1_000_000_000


def run_error(run_dir: str | Path, message: str) -> SpecErrors:
    return SpecErrors([SpecError(str(run_dir), 0, 0, message)])


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failed write of a command's output (a full disk, a special file, a read-only
    folder) into a clear error instead of a traceback."""
    try:
        yield
    except OSError as exc:
        why = "not a directory" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror or exc
        raise run_error(exc.filename or path, f"cannot write ({why}); expected a writable path with free space") from None


def log_path(run_dir: str | Path) -> Path:
    """The audit log of a run; a clear user error when ``run_dir`` is not a run directory."""
    run = Path(run_dir)
    if not run.exists():
        raise run_error(run, "no such run directory; expected a folder written by `execlab run` (with log.jsonl)")
    if not run.is_dir():
        raise run_error(run, "not a directory; expected a run directory (with log.jsonl)")
    for name in LOG_NAMES:
        if (run / name).is_file():
            return run / name
    raise run_error(run, "no audit log in this folder; expected log.jsonl or log.jsonl.gz")


def log_lines(run_dir: str | Path) -> LogLines:
    """The log's complete lines (iterate it); ``.torn`` then holds a torn last line left out."""
    return LogLines(log_path(run_dir))


def read_lines(run_dir: str | Path) -> list[bytes]:
    """The log's complete lines, each with its trailing newline, exactly as written."""
    return list(log_lines(run_dir))


def read_log(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every record of a run's audit log, in order, up to its last complete line."""
    return iter_records(log_path(run_dir))


def load_records(run_dir: str | Path) -> list[dict[str, Any]]:
    return list(read_log(run_dir))


# --- times ---------------------------------------------------------------------------------

def fmt_ts(ts_ns: int | None) -> str:
    """ISO-8601 UTC with milliseconds, as people read it."""
    if ts_ns is None:
        return "-"
    dt = datetime.fromtimestamp(ts_ns // NS, UTC)
    ms = (ts_ns % NS) // 1_000_000
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str, start_ns: int | None = None) -> int:
    """``--at`` values: ISO-8601 (UTC unless an offset is given), epoch milliseconds, or
    ``+SECONDS`` after the session start. Returns ns since the epoch."""
    t = text.strip()
    if t.startswith("+") and start_ns is not None:
        try:
            return start_ns + int(round(float(t[1:]) * NS))
        except ValueError:
            pass
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return int(round(float(t) * 1_000_000))
    if _ISO.match(t):
        iso = t.replace(" ", "T")
        if iso.endswith("Z"):
            iso = iso[:-1] + "+00:00"
        frac = ""
        m = re.search(r"\.(\d+)", iso)
        if m:
            frac = m.group(1)
            iso = iso[:m.start()] + iso[m.end():]
        dt = datetime.fromisoformat(iso)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        sub_ns = int((frac + "000000000")[:9]) if frac else 0
        return int(dt.timestamp()) * NS + sub_ns
    raise SpecErrors([SpecError("--at", 0, 0, f"'{text}' is not a time; expected ISO-8601 UTC (2024-08-08T12:00:05Z), epoch milliseconds, or +SECONDS after the start")])


# --- the machines a run used ---------------------------------------------------------------

def run_machine_set(run_dir: str | Path) -> MachineSet:
    """The machine specs the run used, from its snapshot (RUN/specs/)."""
    run = Path(run_dir)
    try:
        from framework.runtime.rundir import session_from_run
    except ImportError:
        session_from_run = None
    if session_from_run is not None:
        return session_from_run(run).machine_set
    return machine_set_from_specs(run)


def machine_set_from_specs(run_dir: str | Path) -> MachineSet:
    from framework.spec.metrics import load_metric_set

    specs = Path(run_dir) / "specs"
    if not (specs / "decision.yaml").is_file() or not (specs / "metrics.yaml").is_file():
        raise run_error(run_dir, "no spec snapshot; expected specs/metrics.yaml, specs/decision.yaml and the machine files")
    machines = sorted(p for p in specs.glob("*.yaml") if p.stem not in ("metrics", "decision"))
    metrics = load_metric_set(specs / "metrics.yaml")
    return load_machine_set(machines, specs / "decision.yaml", metrics.names)
