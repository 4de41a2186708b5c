"""The run directory: everything needed to explain, verify and re-run a session.

RUN/log.jsonl[.gz]   the audit log (docs/audit-log.md)
RUN/summary.json     the summary (with wall-clock figures, which the log never holds)
RUN/config.yaml      the config as written
RUN/specs/*.yaml     the spec files the run used
RUN/session.json     config hash, --set overrides, --symbols, --symbol, config path, the input's identity
RUN/reloads.jsonl    hot reloads, one line per attempt, with the event count they came before
RUN/reloads/NNN/     the config and specs an accepted reload switched to
RUN/live.jsonl       live runs: the inputs a frames file cannot hold (clock ticks, connection events)
RUN/.lock            held while a session writes the directory

A run directory is claimed before anything is written: a directory another living session
holds is refused, and one that already holds a run is refused unless ``force`` (which clears
the previous run's files first). ``unique`` (a default name) takes the next free name instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..spec.errors import SpecError, SpecErrors
from ..spec.session import Session, load_session
from .auditlog import iter_records

LOCK_NAME = ".lock"
# What a run writes; --force removes these (and nothing else) before a new run.
RUN_FILES = ("log.jsonl", "log.jsonl.gz", "summary.json", "config.yaml", "specs", "session.json",
             "reloads.jsonl", "reloads", "live.jsonl", "report.html", "diagrams")
RUN_GLOBS = ("input.frames*.gz",)


def _error(path: Path | str, message: str) -> SpecErrors:
    return SpecErrors([SpecError(str(path), 0, 0, message)])


class RunDirLock:
    """An exclusive ``flock`` on RUN/.lock for as long as a session writes the directory.

    The kernel drops the lock when its process ends however it ends, so a lock file left by a
    killed session is recognised as stale simply by being lockable; its pid is then kept in
    ``stale_pid`` for the record."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_NAME
        self.stale_pid: int | None = None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                raise _error(run_dir, f"in use: session process {owner or '?'} is writing this run directory; "
                                      "expected a directory no running session holds (--force does not override this)") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its owner unlinked while we waited
                break
            os.close(fd)
        self.stale_pid = _read_pid(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


def holder_of(run_dir: Path) -> int | None:
    """The pid of the living session writing ``run_dir`` (None when no session holds it)."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def check_output_dir(path: Path) -> None:
    """Refuse what cannot be a run directory before touching anything."""
    p = Path(os.path.realpath(path))  # a link to / is the root too
    if p.parent == p:
        raise _error(path, "the filesystem root; expected a folder of its own for the run (e.g. runs/)")
    if p.exists() and not p.is_dir():
        what = "a regular file" if p.is_file() else "a special file"
        raise _error(path, f"{what}, not a directory; expected a folder for the run directory")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _error(path, f"{parent} is a file, not a directory; expected a folder to create the run in")
            break


def claim_run_dir(out_dir: Path, *, force: bool = False, unique: bool = False) -> tuple[Path, RunDirLock]:
    """Create (or take) ``out_dir`` for a new run and lock it; returns the directory and its lock.

    ``unique``: the name is a default; if it is taken, ``-2``, ``-3``... are appended (two
    sessions started in the same second get two directories)."""
    out_dir = Path(out_dir)
    check_output_dir(out_dir)
    if unique:
        out_dir = _fresh_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = RunDirLock(out_dir)
    except OSError as exc:
        raise _error(out_dir, f"cannot create the run directory ({exc.strerror}); expected a writable folder") from None
    try:
        previous = [p for p in out_dir.iterdir() if p.name != LOCK_NAME]
        if previous and not force:
            what = "a run" if (out_dir / "session.json").exists() or (out_dir / "log.jsonl").exists() else "files"
            raise _error(out_dir, f"already holds {what} ({len(previous)} entries); expected a new or empty directory "
                                  "(--force replaces the run in it)")
        if previous:
            _clear_run(out_dir)
    except BaseException:
        lock.release()
        raise
    return out_dir, lock


def _fresh_dir(base: Path) -> Path:
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise _error(base, "no free run directory name; expected fewer than 10,000 runs of one second")


def _clear_run(out_dir: Path) -> None:
    doomed = [out_dir / n for n in RUN_FILES] + [p for g in RUN_GLOBS for p in out_dir.glob(g)]
    for p in doomed:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def write_session_files(session: Session, folder: Path) -> None:
    """FOLDER/config.yaml and FOLDER/specs/KEY.yaml: the texts the session was loaded from."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(session.snapshot["config"], encoding="utf-8")
    specs = folder / "specs"
    specs.mkdir(exist_ok=True)
    for key, text in session.snapshot["specs"].items():
        (specs / f"{key}.yaml").write_text(text, encoding="utf-8")


def write_snapshot(session: Session, out_dir: Path, identity: dict[str, Any]) -> None:
    write_session_files(session, out_dir)
    meta = {"config_hash": session.config_hash, "config_path": session.path, "session": session.name,
            "sets": session.snapshot["sets"], "source": identity,
            # --symbols replaces the config's list without changing its text: a re-run needs it
            "symbols": session.symbols,
            # --symbol names a CSV dump's symbol when its file name does not: the re-run needs it too
            "csv_symbol": session.source.get("symbol"),
            # the specs' order decides which machine comes first among equals in the pipeline
            "specs": list(session.snapshot["specs"])}
    (out_dir / "session.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "session.json"
    if not path.is_file():
        raise SpecErrors([SpecError(str(run_dir), 0, 0, "not a run directory (no session.json); expected the folder `execlab run` wrote")])
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SpecErrors([SpecError(str(path), getattr(exc, "lineno", 0), getattr(exc, "colno", 0),
                                    f"not valid JSON ({getattr(exc, 'msg', exc)}); expected the file `execlab run` wrote")]) from None
    if not isinstance(meta, dict) or not {"source", "specs", "sets", "config_path"} <= set(meta):
        raise SpecErrors([SpecError(str(path), 1, 1, "not a run's session.json; expected source, specs, sets and config_path")])
    return meta


def session_from_run(run_dir: Path, sets: Iterable[str] = (), config_path: str | Path | None = None) -> Session:
    """The run's session re-created from its snapshot (plus overrides), or an edited config;
    either way on the run's symbols."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if config_path is not None:
        session = load_session(config_path, [*meta["sets"], *sets])
    else:
        session = snapshot_session(run_dir, meta["config_path"], meta["specs"], [*meta["sets"], *sets])
    if meta.get("symbols"):
        session.data["symbols"] = list(meta["symbols"])
    if meta.get("csv_symbol"):
        session.data["source"]["symbol"] = meta["csv_symbol"]
    return session


def snapshot_session(snapshot_dir: Path, config_path: str, spec_keys: Iterable[str], sets: Iterable[str]) -> Session:
    """A session loaded from a snapshot folder (config.yaml and specs/KEY.yaml)."""
    spec_files = {key: str(snapshot_dir / "specs" / f"{key}.yaml") for key in spec_keys}
    return load_session(config_path, list(sets), text=(snapshot_dir / "config.yaml").read_text(encoding="utf-8"),
                        spec_files=spec_files)


def recorded_input(run_dir: Path) -> list[str] | None:
    """The recordings a run replayed (None for a scenario, which its config regenerates)."""
    source = read_meta(Path(run_dir))["source"]
    if source.get("kind") in ("replay", "live"):
        return [f["path"] for f in source["files"]]
    return None


def log_path(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    for name in ("log.jsonl", "log.jsonl.gz"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise SpecErrors([SpecError(str(run_dir), 0, 0, "no audit log (log.jsonl) here; expected a run directory")])


def read_log(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The audit records of a run, in order; stops quietly at a torn last line (a killed run)."""
    return iter_records(log_path(run_dir))


def input_changes(run_dir: Path) -> list[str]:
    """How the run's recorded input differs from what is on disk now (empty: unchanged).

    A re-run of changed input cannot be compared with the run; this says so up front rather
    than as a divergence."""
    source = read_meta(Path(run_dir))["source"]
    if source.get("kind") == "scenario":
        files = [{"path": source["path"], "sha256": source.get("sha256")}]
    else:
        files = source.get("files") or []
    problems = []
    for f in files:
        path = Path(f["path"])
        if not path.is_file():
            problems.append(f"the recorded input {path} is missing; expected the file the run read")
        elif f.get("sha256") and _sha256(path) != f["sha256"]:
            problems.append(f"the recorded input {path} changed since the run (sha256 {f['sha256'][:12]}... then); "
                            "expected the same bytes")
    return problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
