"""Where trials run: in this process, on a local process pool (the default), or on a Dask
cluster by address. Every backend runs the same function (``trials.run_trial``) on the same
inputs, so the results do not depend on where they ran.

Dask (``distributed``) rather than Ray: its scheduler and workers are small pure-Python
processes started with one command each (``dask scheduler``, ``dask worker ADDRESS``), that
start in a second or two on a laptop, need no shared object store or GPU-oriented runtime, and
ship bytes and results over plain TCP; a sweep's tasks are coarse (seconds each), which is what
its scheduler is good at.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .trials import Job, Outcome, Trial, run_trial


class Backend:
    name = "?"
    # Whether trials write straight into the sweep directory (same machine) or send back
    # their run directory's files.
    local_files = True

    def start(self, job: Job, inputs: dict[str, Path]) -> None:
        """``inputs``: sha256 -> path of every recording and labels file the trials read."""

    def submit(self, trial: Trial, out_dir: Path | None) -> None:
        raise NotImplementedError

    def results(self) -> Iterator[tuple[Trial, Outcome]]:
        """Outcomes of the submitted trials as they finish."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop now: drop queued trials and stop running ones (Ctrl-C)."""

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


class Serial(Backend):
    name = "serial"

    def __init__(self) -> None:
        self.queue: list[tuple[Trial, Path | None]] = []

    def start(self, job: Job, inputs: dict[str, Path]) -> None:
        self.job = job

    def submit(self, trial: Trial, out_dir: Path | None) -> None:
        self.queue.append((trial, out_dir))

    def results(self) -> Iterator[tuple[Trial, Outcome]]:
        while self.queue:
            trial, out_dir = self.queue.pop(0)
            yield trial, run_trial(self.job, trial, str(out_dir) if out_dir else None)

    def abort(self) -> None:
        self.queue.clear()


def _ignore_sigint() -> None:
    # Ctrl-C is the planner's to handle: it stops the pool as a whole.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_task(job: Job, trial: Trial, out_dir: str | None) -> Outcome:
    try:
        return run_trial(job, trial, out_dir)
    except KeyboardInterrupt:  # this worker alone was stopped (SIGTERM): the trial did not finish
        return Outcome(trial.key, "error", error="stopped before the end")


class LocalPool(Backend):
    """One process per core. A worker that dies (killed, out of memory, a crash in native code)
    breaks the pool: it is started again and the unfinished trials are given one more try; a
    trial that breaks it twice is recorded as failed."""

    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.executor: ProcessPoolExecutor | None = None
        self.futures: dict[Future, tuple[Trial, str | None]] = {}
        self.broke: set[str] = set()  # trials that were running when the pool broke

    def describe(self) -> str:
        return f"local pool of {self.workers} process{'es' if self.workers > 1 else ''}"

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn: a clean interpreter per worker (no inherited threads, locks or signal state).
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)

    def start(self, job: Job, inputs: dict[str, Path]) -> None:
        self.job = job
        self.executor = self._new_executor()

    def submit(self, trial: Trial, out_dir: Path | None) -> None:
        out = str(out_dir) if out_dir else None
        self.futures[self.executor.submit(_pool_task, self.job, trial, out)] = (trial, out)

    def results(self) -> Iterator[tuple[Trial, Outcome]]:
        while self.futures:
            for future in as_completed(list(self.futures)):
                trial, out = self.futures.pop(future)
                try:
                    yield trial, future.result()
                except BrokenProcessPool:
                    if trial.key in self.broke:
                        yield trial, Outcome(trial.key, "error", error="a worker process died running this trial")
                        continue
                    self.broke.add(trial.key)
                    if self.executor is not None:
                        self.executor.shutdown(wait=False, cancel_futures=True)
                        self.executor = self._new_executor()
                    self.futures[self.executor.submit(_pool_task, self.job, trial, out)] = (trial, out)
                except Exception as exc:  # the task could not even be sent (pickling)
                    yield trial, Outcome(trial.key, "error", error=f"{type(exc).__name__}: {exc}")

    def abort(self) -> None:
        if self.executor is not None:
            processes = list((getattr(self.executor, "_processes", None) or {}).values())
            self.executor.shutdown(wait=False, cancel_futures=True)
            for proc in processes:  # running trials are dropped, not waited for
                proc.kill()
            self.executor = None
        self.futures.clear()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None


class DaskCluster(Backend):
    """A Dask scheduler by address (``tcp://host:8786``). Recordings are shipped with the tasks
    (scattered once, cached on each worker by sha256) unless ``shared`` says every worker reads
    them at the planner's paths. Run directories come back as files."""

    name = "dask"
    local_files = False

    def __init__(self, address: str, shared: bool = False) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise RuntimeError("--cluster needs Dask's distributed package: pip install 'crypto-execution-lab[sweep]'") from None
        self.address = address
        self.shared = shared
        self.client = Client(address, timeout="20s", set_as_default=False)
        self.futures: dict = {}
        self.shipped: dict = {}

    def describe(self) -> str:
        try:
            info = self.client.scheduler_info(n_workers=-1)  # newer Dask lists only a few by default
        except TypeError:
            info = self.client.scheduler_info()
        n = len(info.get("workers", {}))
        how = "recordings on a shared path" if self.shared else "recordings shipped with the tasks"
        return f"Dask cluster {self.address} ({n} worker{'s' if n != 1 else ''}, {how})"

    def start(self, job: Job, inputs: dict[str, Path]) -> None:
        self.job = self.client.scatter(job, broadcast=True, hash=False)
        if not self.shared:
            # Each input's bytes go to the cluster once; a worker fetches them with its first task.
            self.shipped = {sha: self.client.scatter(Path(p).read_bytes(), hash=False) for sha, p in inputs.items()}

    def submit(self, trial: Trial, out_dir: Path | None) -> None:
        shipped = {sha: self.shipped[sha] for sha in (trial.recording_sha256, trial.labels_sha256)
                   if sha and sha in self.shipped}
        future = self.client.submit(run_trial, self.job, trial, None, shipped, key=f"trial-{trial.key}", pure=False)
        self.futures[future] = trial

    def results(self) -> Iterator[tuple[Trial, Outcome]]:
        from distributed import as_completed

        with self.client.as_current():
            finished = as_completed(list(self.futures))
        for future in finished:
            trial = self.futures.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died or the task could not run
                outcome = Outcome(trial.key, "error", error=f"{type(exc).__name__}: {exc}")
            future.release()
            yield trial, outcome

    def abort(self) -> None:
        if self.futures:
            self.client.cancel(list(self.futures))
            self.futures.clear()

    def close(self) -> None:
        self.client.close()
