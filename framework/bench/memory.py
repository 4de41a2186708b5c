"""``python -m framework.bench.memory N [CONFIG]``: run the whole pipeline over N streamed
frames in this fresh process and print its peak RSS in MB (VmHWM) (the frames are generated lazily,
so what grows with N is the pipeline's own state)."""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path

from ..market.decode import FrameDecoder
from ..runtime.auditlog import AuditLog
from ..runtime.pipeline import Runtime
from ..spec.session import load_session
from .stream import iter_frames


def main(argv: list[str]) -> int:
    n = int(argv[0])
    session = load_session(argv[1] if len(argv) > 1 else None)
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "log.jsonl")
        runtime = Runtime(session, log.emit)
        decode = FrameDecoder().decode
        feed = runtime.feed
        for ns, raw in iter_frames(n):
            ev = decode(raw, ns)
            if ev is not None:
                feed(ev)
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
