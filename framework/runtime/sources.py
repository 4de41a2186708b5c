"""The session's market data: a replay, a synthetic scenario or the live Binance feed."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from pathlib import Path

from ..market.eventtime import EventTimePolicy, guarded
from ..market.replay import open_replay, source_identity
from ..market.synthetic import scenario_events
from ..spec.errors import SpecError, SpecErrors
from ..spec.session import Session


def replay_paths(session: Session, replay: list[str] | None) -> list[Path]:
    if replay:
        return [Path(p).resolve() for p in replay]
    src = session.source
    paths = src.get("paths") or [src["path"]]
    return [session.resolve(p) for p in paths]


def _check_exists(paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SpecErrors([SpecError(str(p), 0, 0, "recording not found; expected a frames file or a Binance CSV dump") for p in missing])


def replay_events(session: Session, replay: list[str] | None = None) -> tuple[Iterator, dict]:
    """Events of one or more recordings merged in time order, and the input's identity."""
    paths = replay_paths(session, replay)
    _check_exists(paths)
    symbols = session.symbols
    policy = event_time_policy(session)
    try:  # each recording has its own receive clock: each is guarded before the merge
        streams = [guarded(open_replay(p, symbols), policy) for p in paths]
    except ValueError as exc:
        raise SpecErrors([SpecError(str(paths[0]), 0, 0, f"{exc}")]) from None
    identity = {"kind": "replay", "files": [source_identity(p) for p in paths]}
    if len(streams) == 1:
        return streams[0], identity
    return heapq.merge(*streams, key=lambda ev: ev.ts_ns), identity


def scenario_source(session: Session) -> tuple[Iterator, dict]:
    src = session.source
    path = session.resolve(src["path"])
    _check_exists([path])
    seed = src.get("seed")
    identity = {"kind": "scenario", "path": str(path), "seed": seed,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return guarded(scenario_events(path, seed), event_time_policy(session)), identity


def event_time_policy(session: Session) -> EventTimePolicy:
    """The session's thresholds for implausible stamps (``clock:``; docs/sessions.md)."""
    return EventTimePolicy.from_clock(session.data.get("clock"))
