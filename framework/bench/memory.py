"""``python -m framework.bench.memory N [CONFIG]``: run the whole pipeline over N streamed
frames in this fresh process and print its peak RSS in MB (the frames are generated lazily,
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
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
