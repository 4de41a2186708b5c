"""``python -m framework.bench.memory N [CONFIG] [--scalar] [--set M.P=V ...]``: run the whole
pipeline over N streamed frames in this fresh process and print its peak RSS in MB (VmHWM). The
frames are generated lazily, so what grows with N is the pipeline's own state. The replay fast
path by default; ``--scalar`` feeds the events one at a time."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

from ..market.decode import FrameDecoder
from ..runtime.auditlog import AuditLog
from ..runtime.pipeline import Runtime, run_events
from ..spec.session import load_session
from .stream import iter_frames


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m framework.bench.memory")
    ap.add_argument("events", type=int)
    ap.add_argument("config", nargs="?")
    ap.add_argument("--scalar", action="store_true")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args(argv)
    session = load_session(args.config, args.sets)
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "log.jsonl")
        runtime = Runtime(session, log.emit)
        decode = FrameDecoder().decode
        events = (ev for ev in (decode(raw, ns) for ns, raw in iter_frames(args.events)) if ev is not None)
        if args.scalar:
            run_events(runtime, events)
        else:
            # imported here: numba and LLVM are part of this path's memory, not the other's
            from ..runtime.blocks import BlockRunner

            BlockRunner(runtime).run(events)
        runtime.finish()
        log.close()
    print(peak_rss_mb())
    return 0


def peak_rss_mb() -> float:
    """This process's RSS high-water mark. VmHWM belongs to the process image, so it does not
    carry over the parent's peak the way ``ru_maxrss`` can across fork and exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
