"""One trial: one param point on one recording, run as a normal run directory.

A trial is identified by the sha256 of what decides its audit log: the config text, every spec
text, the overrides (sorted), the symbols, the recording's (and labels') sha256, never a path,
and the engine's code, so the same trial has the same key on every machine and a finished one
is never redone (unless the engine changed).

``run_trial`` is what every backend calls (in this process, a pool process, or a cluster
worker). It needs only the ``Job`` (texts, no files) and the trial; the recording comes from a
path the worker can read, or as bytes shipped with the task.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TRIAL_FILE = "trial.json"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the trial, as text: it may be another machine."""

    config_text: str
    config_path: str  # names the config in the run; resolves its relative paths when it exists
    spec_texts: dict[str, str]
    base_symbols: tuple[str, ...]
    warmup_s: float = 0.0
    flap_s: float = 1.0
    code: str = ""  # code_identity() of the planner


@functools.cache
def code_identity() -> str:
    """sha256 of the engine's source (every module of the package but the sweep's own), so a
    trial run by other code is neither reused nor mixed in: a changed engine runs trials anew,
    and a worker with another version of the package refuses them."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("sweep/"):
            continue
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Trial:
    key: str
    point_key: str
    point: dict[str, Any]  # the varied params of this trial
    sets: tuple[str, ...]  # every override, machine.param=value, sorted
    symbols: tuple[str, ...]
    recording: str  # the path on the machine that planned the sweep
    recording_sha256: str
    labels: str | None = None
    labels_sha256: str | None = None

    @property
    def input_name(self) -> str:
        return Path(self.recording).name


@dataclass
class Outcome:
    key: str
    status: str  # ok | error
    error: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    worker: str = ""
    files: dict[str, bytes] | None = None  # the run directory, when it ran elsewhere
    ran_on: str = ""  # the recording's path where it ran (relocated when it differs)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_set(name: str, value: Any) -> str:
    text = "true" if value is True else "false" if value is False else repr(value)
    return f"{name}={text}"


def point_key(point: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(point).encode()).hexdigest()[:16]


def trial_config_text(job: Job, symbols: tuple[str, ...]) -> str:
    """The config as the trial runs it: the base text, with the symbols written in when the
    trial's differ (so the run's own config snapshot re-creates it, and verify works)."""
    if tuple(symbols) == tuple(job.base_symbols):
        return job.config_text
    data = yaml.safe_load(job.config_text)
    data["symbols"] = list(symbols)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def trial_key(job: Job, sets: tuple[str, ...], symbols: tuple[str, ...], recording_sha256: str,
              labels_sha256: str | None) -> str:
    ident = {"config": trial_config_text(job, symbols), "specs": job.spec_texts, "sets": sorted(sets),
             "input": [recording_sha256], "labels": labels_sha256, "code": job.code}
    return hashlib.sha256(canonical(ident).encode()).hexdigest()


# --- on the worker ------------------------------------------------------------------------

def _cache_dir() -> Path:
    d = Path(os.environ.get("EXECLAB_SWEEP_CACHE") or Path(tempfile.gettempdir()) / "execlab-sweep-cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write_once(path: Path, data: bytes) -> Path:
    """Write ``data`` at ``path`` unless it is there already (atomic: a rename)."""
    if path.is_file() and path.stat().st_size == len(data):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def _spec_files(job: Job) -> dict[str, str]:
    digest = hashlib.sha256(canonical(job.spec_texts).encode()).hexdigest()[:16]
    folder = _cache_dir() / "specs" / digest
    return {key: str(_write_once(folder / f"{key}.yaml", text.encode("utf-8")))
            for key, text in job.spec_texts.items()}


def _materialize(name: str, sha: str, shipped: bytes | None, path: str) -> str:
    """The path to read an input from: the shipped bytes cached under their sha256, or the
    planner's path (shared storage)."""
    if shipped is None:
        return path
    return str(_write_once(_cache_dir() / "inputs" / sha / name, shipped))


def run_trial(job: Job, trial: Trial, out_dir: str | None, shipped: dict[str, bytes] | None = None) -> Outcome:
    """Run one trial into ``out_dir`` (a fresh folder), or into a temporary folder whose files
    come back in the outcome when ``out_dir`` is None (a worker on another machine)."""
    from framework.runtime.run import StopFlag, run_session
    from framework.spec.errors import SpecErrors
    from framework.spec.session import load_session

    from .figures import run_figures

    started = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="execlab-trial-")
        run_dir = Path(tmp) / "run"
    else:
        run_dir = Path(out_dir)
    shipped = shipped or {}
    try:
        if job.code and job.code != code_identity():
            raise RuntimeError("this worker runs other code than the planner; expected the same version of "
                               "the package on every machine")
        recording = _materialize(trial.input_name, trial.recording_sha256, shipped.get(trial.recording_sha256), trial.recording)
        labels_path = None
        if trial.labels and trial.labels_sha256:
            labels_path = _materialize(Path(trial.labels).name, trial.labels_sha256,
                                       shipped.get(trial.labels_sha256), trial.labels)
        session = load_session(job.config_path, list(trial.sets), text=trial_config_text(job, trial.symbols),
                               spec_files=_spec_files(job))
        stop = StopFlag()  # Ctrl-C/SIGTERM stop the run cleanly; a stopped run is no finished trial
        run_session(session, run_dir, replay=[recording], progress=False, stop=stop)
        if stop.set:
            raise KeyboardInterrupt
        labels = json.loads(Path(labels_path).read_text(encoding="utf-8")) if labels_path else None
        figures = run_figures(run_dir, warmup_s=job.warmup_s, flap_s=job.flap_s, labels=labels)
        if figures.get("run.events", 0) == 0:
            raise ValueError(f"no events of {', '.join(trial.symbols)} in {trial.input_name}; expected a recording of these symbols")
        outcome = Outcome(trial.key, "ok", figures=figures, worker=worker, ran_on=str(Path(recording).resolve()))
    except SpecErrors as exc:
        outcome = Outcome(trial.key, "error", error="; ".join(str(e) for e in exc.errors), worker=worker)
    except Exception as exc:  # a failing trial is recorded and the sweep goes on
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        outcome = Outcome(trial.key, "error", error=f"{type(exc).__name__}: {exc}{where}", worker=worker)
    outcome.wall_s = round(time.perf_counter() - started, 3)
    if tmp is not None:
        if outcome.status == "ok":
            outcome.files = {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
        shutil.rmtree(tmp, ignore_errors=True)
    return outcome


# --- back on the planner ------------------------------------------------------------------

def trial_record(trial: Trial, outcome: Outcome, job: Job) -> dict[str, Any]:
    """What trial.json holds: the trial, its outcome and its figures."""
    return {"key": trial.key, "point_key": trial.point_key, "point": trial.point, "sets": list(trial.sets),
            "symbols": list(trial.symbols), "recording": trial.recording, "recording_sha256": trial.recording_sha256,
            "labels": trial.labels, "labels_sha256": trial.labels_sha256, "status": outcome.status,
            "error": outcome.error, "figures": outcome.figures, "wall_s": outcome.wall_s, "worker": outcome.worker,
            "figure_options": {"warmup_s": job.warmup_s, "flap_s": job.flap_s}}


def read_trial(trial_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((trial_dir / TRIAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_trial(trial_dir: Path, record: dict[str, Any]) -> None:
    trial_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, sort_keys=True, default=str, allow_nan=True) + "\n"
    _atomic_text(trial_dir / TRIAL_FILE, text)


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
