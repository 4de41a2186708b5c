"""Running a sweep: plan the trials, skip the finished ones, run the rest on a backend, record
every outcome as it arrives, and write the results table.

The sweep directory:

  OUT/sweep.yaml            the sweep file as it was run
  OUT/trials/<key16>/       one run directory per trial (execlab verify works on it), plus
                            trial.json: the trial, its status or error, and its figures
  OUT/results.parquet       one row per trial: every param, input and figure (results.py)

A trial is finished when its trial.json says ``ok``; a sweep run again (after Ctrl-C, a crash,
or with more points) runs only what is not. Failed trials are tried again.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import Backend
from .figures import run_figures
from .objectives import point_result
from .relocate import relocate_files, write_files
from .space import point_source
from .spec import Sweep
from .trials import (
    TRIAL_FILE,
    Job,
    Outcome,
    Trial,
    code_identity,
    format_set,
    point_key,
    read_trial,
    sha256_file,
    trial_key,
    trial_record,
    write_trial,
)

TRIALS_DIR = "trials"
INDEX_FILE = "trials.json"  # the keys of the last run's trials, in plan order


@dataclass
class SweepRun:
    out: Path
    records: list[dict[str, Any]] = field(default_factory=list)  # in plan order
    ran: int = 0
    reused: int = 0
    failed: int = 0
    interrupted: bool = False
    table: Path | None = None


def job_of(sweep: Sweep) -> Job:
    base = sweep.base
    return Job(config_text=base.snapshot["config"], config_path=base.path, spec_texts=dict(base.snapshot["specs"]),
               base_symbols=tuple(base.symbols), warmup_s=sweep.warmup_s, flap_s=sweep.flap_s,
               code=code_identity())


def plan_trials(sweep: Sweep, job: Job, point: dict[str, Any], shas: dict[Path, str]) -> list[Trial]:
    """The trials of one point: one per recording and symbol."""
    sets = tuple(sorted([format_set(k, v) for k, v in sweep.sets.items()] +
                        [format_set(k, v) for k, v in point.items()]))
    pkey = point_key(point)
    out = []
    for rec in sweep.recordings:
        rsha = shas[rec.path]
        lsha = shas[rec.labels] if rec.labels else None
        for symbol in rec.symbols:
            key = trial_key(job, sets, (symbol,), rsha, lsha)
            out.append(Trial(key=key, point_key=pkey, point=dict(point), sets=sets, symbols=(symbol,),
                             recording=str(rec.path), recording_sha256=rsha,
                             labels=str(rec.labels) if rec.labels else None, labels_sha256=lsha))
    return out


def trial_dir(out: Path, key: str) -> Path:
    return out / TRIALS_DIR / key[:16]


def _finished(out: Path, trial: Trial, job: Job) -> dict[str, Any] | None:
    """The record of a finished trial, its figures recomputed if the figure options changed."""
    d = trial_dir(out, trial.key)
    rec = read_trial(d)
    if not rec or rec.get("key") != trial.key or rec.get("status") != "ok":
        return None
    wanted = {"warmup_s": job.warmup_s, "flap_s": job.flap_s}
    if rec.get("figure_options") != wanted:
        labels = _labels(trial)
        rec["figures"] = run_figures(d, warmup_s=job.warmup_s, flap_s=job.flap_s, labels=labels)
        rec["figure_options"] = wanted
        write_trial(d, rec)
    # The same trial planned from another point (same overrides) keeps this point's view.
    rec = {**rec, "point": trial.point, "point_key": trial.point_key, "recording": trial.recording,
           "labels": trial.labels}
    return rec


def _labels(trial: Trial) -> Any:
    return json.loads(Path(trial.labels).read_text(encoding="utf-8")) if trial.labels else None


def _store(out: Path, trial: Trial, outcome: Outcome, job: Job) -> dict[str, Any]:
    """Write a finished trial into its folder (atomically: a partial folder renamed)."""
    final = trial_dir(out, trial.key)
    partial = final.with_name(".partial-" + final.name)
    if outcome.files is not None:
        shutil.rmtree(partial, ignore_errors=True)
        files = relocate_files(outcome.files, outcome.ran_on, str(Path(trial.recording).resolve()))
        write_files(partial, files)
    record = trial_record(trial, outcome, job)
    partial.mkdir(parents=True, exist_ok=True)
    write_trial(partial, record)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return record


def run_sweep(sweep: Sweep, backend: Backend, *, progress: bool = False,
              log: Callable[[str], None] | None = None) -> SweepRun:
    """Run every trial of ``sweep`` not already finished in its directory; Ctrl-C stops the
    backend and keeps what finished. Writes the results table at the end (or at the stop)."""
    from .results import write_table

    say = log or (lambda _m: None)
    out = sweep.out
    (out / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (out / TRIALS_DIR).glob(".partial-*"):  # left by a stopped sweep
        shutil.rmtree(stale, ignore_errors=True)
    if Path(sweep.path).resolve() != (out / "sweep.yaml").resolve():
        shutil.copyfile(sweep.path, out / "sweep.yaml")
    job = job_of(sweep)
    shas: dict[Path, str] = {}
    for rec in sweep.recordings:
        for p in (rec.path, rec.labels):
            if p is not None and p not in shas:
                shas[p] = sha256_file(p)
    result = SweepRun(out)
    source = point_source(sweep)
    per_point = len([s for r in sweep.recordings for s in r.symbols])
    total = (int(sweep.trials) if sweep.method != "grid" else
             math.prod(len(p.grid()) for p in sweep.params)) * per_point
    backend.start(job, {sha: p for p, sha in shas.items()})
    say(f"sweep {sweep.name}: {backend.describe()}; trials in {out / TRIALS_DIR}")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="trial", desc=f"sweep {sweep.name}", file=sys.stderr, smoothing=0.1)
        plain_say = say

        def say(message: str) -> None:  # above the bar, which stays at the bottom
            bar.clear()
            plain_say(message)
            bar.refresh()
    seen: set[str] = set()
    batch: list[Trial] = []
    records: dict[str, dict[str, Any]] = {}  # the current batch's finished trials
    try:
        for points in source.batches():
            batch = []
            for point in points:
                batch += plan_trials(sweep, job, point, shas)
            records = {}
            for trial in batch:
                if trial.key in seen or trial.key in records:
                    continue
                done = _finished(out, trial, job)
                if done is not None:
                    records[trial.key] = done
                    result.reused += 1
                    if bar is not None:
                        bar.update(1)
                    continue
                records[trial.key] = {}
                backend.submit(trial, trial_dir(out, trial.key).with_name(".partial-" + trial.key[:16])
                               if backend.local_files else None)
            for trial, outcome in backend.results():
                records[trial.key] = _store(out, trial, outcome, job)
                result.ran += 1
                if outcome.status != "ok":
                    result.failed += 1
                    say(f"trial {trial.key[:16]} ({trial.input_name} {' '.join(trial.sets)}) failed: {outcome.error}")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(failed=result.failed, reused=result.reused, refresh=False)
            by_point: dict[str, list[dict[str, Any]]] = {}
            for trial in batch:
                rec = records.get(trial.key) or {}
                if rec:
                    rec = {**rec, "point": trial.point, "point_key": trial.point_key}
                    if trial.key not in seen:
                        result.records.append(rec)
                        seen.add(trial.key)
                    by_point.setdefault(trial.point_key, []).append(rec)
            for point in points:
                recs = by_point.get(point_key(point), [])
                values, violation = point_result(sweep, recs) if recs else (None, 1.0)
                source.tell(point, values, violation)
    except KeyboardInterrupt:
        result.interrupted = True
        backend.abort()
        for trial in batch:  # what finished of the interrupted batch goes into the table too
            rec = records.get(trial.key) or read_trial(trial_dir(out, trial.key))
            if rec and rec.get("key") == trial.key and trial.key not in seen:
                result.records.append({**rec, "point": trial.point, "point_key": trial.point_key})
                seen.add(trial.key)
        say("stopped: finished trials are kept; run the same command again to go on")
    finally:
        if bar is not None:
            bar.close()
        backend.close()
    (out / INDEX_FILE).write_text(json.dumps([r["key"] for r in result.records], indent=1) + "\n", encoding="utf-8")
    result.table = write_table(sweep, result.records, out)
    return result


def collect(sweep: Sweep) -> list[dict[str, Any]]:
    """The trial records of the sweep's last run, in plan order (for a report without
    re-running); every trial folder when there is no index."""
    index = sweep.out / INDEX_FILE
    if index.is_file():
        dirs = [trial_dir(sweep.out, key) for key in json.loads(index.read_text(encoding="utf-8"))]
    else:
        dirs = sorted(d for d in (sweep.out / TRIALS_DIR).glob("*") if not d.name.startswith("."))
    records = [read_trial(d) for d in dirs if (d / TRIAL_FILE).is_file()]
    return [r for r in records if r]
