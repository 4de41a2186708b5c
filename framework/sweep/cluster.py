"""A Dask cluster on this machine's loopback address: a scheduler and N single-threaded workers,
each its own process, as ``dask scheduler`` / ``dask worker`` start them on real machines.
Used by the sweep benchmark and the tests; a real deployment starts the same commands itself
(docs/sweeps.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class LoopbackCluster:
    def __init__(self, workers: int = 2, folder: str | Path | None = None, env: dict[str, str] | None = None):
        self.workers = workers
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="execlab-cluster-")
        self.folder = Path(folder or self._tmp.name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        with open(self.folder / "cluster.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", *args], cwd=self.folder, env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 120.0) -> str:
        from distributed import Client

        scheduler_file = self.folder / "scheduler.json"
        scheduler = self._spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(scheduler_file)])
        deadline = time.monotonic() + timeout
        while not (scheduler_file.is_file() and scheduler_file.read_text().strip()):
            if scheduler.poll() is not None:
                raise RuntimeError(f"the Dask scheduler exited with {scheduler.returncode}; see {self.folder / 'cluster.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start in time")
            time.sleep(0.05)  # polling for the file the scheduler writes once it listens
        self.address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(self.workers):
            self._spawn(["distributed.cli.dask_worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                         "--nworkers", "1", "--no-dashboard", "--memory-limit", "0",
                         "--local-directory", str(self.folder / "work")])
        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(self.workers, timeout=timeout)
        return self.address

    def stop(self) -> None:
        # Workers first (they hold nothing a sweep keeps), then the scheduler.
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
