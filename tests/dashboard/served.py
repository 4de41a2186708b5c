"""An execlab command serving a dashboard, run as a user would run it (a subprocess)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXECLAB = [sys.executable, "-m", "framework.cli"]
URL = re.compile(r"dashboard \([^)]*\): (http://\S+)")


class Served:
    """An execlab command serving a dashboard, with its address and its output."""

    def __init__(self, args: list[str]):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*EXECLAB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO, env=env)
        self.stderr: list[str] = []
        self.url: str | None = None
        self._found = threading.Event()
        self.lingering = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "still serving" in line:
                self.lingering.set()
            m = URL.search(line)
            if m and self.url is None:
                self.url = m.group(1)
                self._found.set()
        self._found.set()

    def address(self) -> str:
        assert self._found.wait(120), "no dashboard address printed"
        assert self.url, "".join(self.stderr)
        return self.url

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=120)  # stdout (a summary) fits in the pipe; stderr has its reader
        self._reader.join(10)
        return self.proc.returncode, self.proc.stdout.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
