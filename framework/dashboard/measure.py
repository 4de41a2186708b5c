"""What the dashboard costs a session: ``execlab dashboard-bench [CONFIG]``.

Runs the session without and with a dashboard (a page connected over a real websocket), best
of ``repeat`` each, checks the two logs are byte-identical, and times the two halves of the
work on the run's records: ``observe`` (on the session's thread) and the board's folding (on
the server's thread).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .board import Board
from .layout import layout
from .server import DashboardServer


def _page(url: str, stop: threading.Event, sizes: list[int], ready: threading.Event) -> None:
    async def read() -> None:
        async with connect(url, max_size=None) as ws:
            ready.set()
            while not stop.is_set():
                try:
                    sizes.append(len(await asyncio.wait_for(ws.recv(), 0.2)))
                except TimeoutError:
                    pass
                except ConnectionClosed:  # the server closed the page: the run is over
                    return

    asyncio.run(read())


def measure(config: str | None, repeat: int = 3) -> dict[str, Any]:
    from ..runtime.run import run_session
    from ..runtime.rundir import read_log
    from ..spec.session import load_session

    walls: dict[str, list[float]] = {"without": [], "with": []}
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="execlab-dashboard-bench-") as tmp:
        logs = {}
        for _ in range(repeat):
            for mode in ("without", "with"):
                session = load_session(config)
                out = Path(tmp) / mode
                server = observer = None
                if mode == "with":
                    server = DashboardServer(layout(session.machine_set, mode="replay", diagrams=False), port=0)
                    server.start()
                    stop, ready, sizes = threading.Event(), threading.Event(), []
                    reader = threading.Thread(target=_page, args=(f"ws://127.0.0.1:{server.port}/ws", stop, sizes, ready))
                    reader.start()
                    ready.wait(10)
                    observer = server.observe
                started = time.perf_counter()
                result = run_session(session, out, observer=observer)
                walls[mode].append(time.perf_counter() - started)
                if server is not None:
                    server.stop()  # flushes the last records to the page first
                    stop.set()
                    reader.join(10)
                logs[mode] = next(out.glob("log.jsonl*")).read_bytes()
        records = list(read_log(Path(tmp) / "with"))
    probe = DashboardServer({"charted": []})
    started = time.perf_counter()
    for r in records:
        probe.observe(r)
    observe_s = time.perf_counter() - started
    board = Board(layout(session.machine_set, mode="replay", diagrams=False)["charted"])
    started = time.perf_counter()
    probe.board = board
    probe.flush()
    fold_s = time.perf_counter() - started
    events = result.summary["events"]
    return {
        "events": events, "records": len(records), "repeat": repeat,
        "wall_without_s": min(walls["without"]), "wall_with_s": min(walls["with"]),
        "events_per_s_without": events / min(walls["without"]), "events_per_s_with": events / min(walls["with"]),
        "same_log": logs["without"] == logs["with"],
        "messages": len(sizes), "message_bytes": sum(sizes),
        "observe_ns_per_record": observe_s / max(len(records), 1) * 1e9,
        "fold_ns_per_record": fold_s / max(len(records), 1) * 1e9,
    }


def format_text(m: dict[str, Any]) -> str:
    return "\n".join([
        f"session: {m['events']} events, {m['records']} records; best of {m['repeat']}",
        f"  without a dashboard: {m['wall_without_s']:.3f} s ({m['events_per_s_without']:,.0f} events/s)",
        f"  with a page connected: {m['wall_with_s']:.3f} s ({m['events_per_s_with']:,.0f} events/s)",
        f"  same log byte for byte: {'yes' if m['same_log'] else 'NO'}",
        f"  sent to the page: {m['messages']} messages, {m['message_bytes']:,} bytes (last run)",
        f"  observe (session thread): {m['observe_ns_per_record']:,.0f} ns per record",
        f"  fold and delta (server thread): {m['fold_ns_per_record']:,.0f} ns per record",
    ]) + "\n"
