"""The session's market data: a replay, a synthetic scenario or the live Binance feed."""

from __future__ import annotations

import hashlib
import heapq
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from ..market.archive import file_stamp, in_range
from ..market.book_feed import DepthFrameDecoder, carries_depth
from ..market.columns import BlockStream
from ..market.events import Quote, Trade
from ..market.eventtime import EventTimePolicy, guarded, guarded_blocks
from ..market.replay import (
    detect_format,
    open_replay,
    open_replay_blocks,
    source_identity,
    stream_counts,
    symbol_from_name,
)
from ..market.synthetic import scenario_events
from ..spec.errors import SpecError, SpecErrors
from ..spec.session import Session

RECORDING_NAMES = (".frames.gz", ".frames", ".csv", ".zip", ".csv.gz", ".jsonl.gz")


def replay_paths(session: Session, replay: list[str] | None) -> list[Path]:
    """The recordings to replay: files as given, folders as the recordings they hold (limited
    to the dates source.from..source.to by the date in each file's name, when given)."""
    src = session.source
    if replay:
        given = [Path(p).resolve() for p in replay]
    else:
        given = [session.resolve(p) for p in (src.get("paths") or [src["path"]])]
    start, end = (str(src[k]) if src.get(k) is not None else None for k in ("from", "to"))
    out: list[Path] = []
    for p in given:
        if not p.is_dir():
            out.append(p)
            continue
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(RECORDING_NAMES))
        if start or end:
            found = [f for f in found if (st := file_stamp(f)) is not None and in_range(st, start, end)]
        if not found:
            between = f" dated {start or '...'} to {end or '...'}" if start or end else ""
            raise SpecErrors([SpecError(str(p), 0, 0, f"no recordings{between} in this folder; expected frame files "
                                                      "or Binance CSV/zip dumps (execlab data fetch)")])
        out.extend(found)
    return out


def _check_exists(paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SpecErrors([SpecError(str(p), 0, 0, "recording not found; expected a frames file or a Binance CSV dump") for p in missing])


SURVEY_EVENTS = 200_000  # events of a frame file read ahead to learn its symbols and streams


@dataclass
class FileSurvey:
    """What a recording holds, per symbol: trades and quotes seen (in its first events)."""

    path: Path
    complete: bool  # False: only the first SURVEY_EVENTS events were read
    trades: dict[str, int] = field(default_factory=dict)
    quotes: dict[str, int] = field(default_factory=dict)

    @property
    def symbols(self) -> set[str]:
        return set(self.trades) | set(self.quotes)


def survey(path: Path, symbol: str | None = None) -> FileSurvey:
    """The symbols of one recording and whether each has trades and quotes. A CSV dump is
    told by its name or ``symbol`` and its kind; a frame file by its stream names, or (frames
    without the combined-stream envelope) by decoding its first events."""
    fmt = detect_format(path)
    if fmt != "frames":
        sym = (symbol or symbol_from_name(path.name) or "").upper()
        if not sym:
            raise SpecErrors([SpecError(str(path), 0, 0, "a Binance CSV dump whose name does not say its symbol; "
                                                         "expected --symbol SYMBOL (or source.symbol in the config)")])
        quotes = fmt == "csv:bookTicker"
        return FileSurvey(path, True, {} if quotes else {sym: 1}, {sym: 1} if quotes else {})
    counts, complete = stream_counts(path)
    if counts:  # combined-stream envelopes name symbol and stream: no decoding needed
        out = FileSurvey(path, complete)
        for (sym, kind), n in counts.items():
            side = out.quotes if kind == "bookTicker" else out.trades
            side[sym] = side.get(sym, 0) + n
        return out
    out = FileSurvey(path, True)
    n = 0
    for ev in islice(open_replay(path), SURVEY_EVENTS):
        n += 1
        kind = type(ev)
        if kind is Trade:
            out.trades[ev.symbol] = out.trades.get(ev.symbol, 0) + 1
        elif kind is Quote:
            out.quotes[ev.symbol] = out.quotes.get(ev.symbol, 0) + 1
    out.complete = n < SURVEY_EVENTS
    return out


def check_input(symbols: list[str], surveys: list[FileSurvey], warn: Callable[[str], None]) -> None:
    """No silent no-op: a session symbol the input does not hold, or a file holding none of
    the session's symbols, is an error; a symbol without quotes or a symbol the session
    ignores is a warning that says what will happen."""
    errors: list[SpecError] = []
    wanted = set(symbols)
    held = set().union(*(s.symbols for s in surveys))
    complete = all(s.complete for s in surveys)
    where = ", ".join(str(s.path) for s in surveys)
    if held and not held & wanted and complete:
        raise SpecErrors([SpecError(where, 0, 0, f"the input holds {', '.join(sorted(held))}, none of the session's symbols "
                                    f"({', '.join(symbols)}); expected --symbols {','.join(sorted(held))}")])
    for s in surveys:
        ignored = sorted(s.symbols - wanted)
        if s.symbols and not s.symbols & wanted:
            errors.append(SpecError(str(s.path), 0, 0, f"holds {', '.join(ignored)}, which the session does not trade "
                                    f"({', '.join(symbols)}), so the whole file would be skipped; expected "
                                    f"--symbols {','.join([*symbols, *ignored])}, or leave the file out"))
        elif ignored:
            warn(f"{s.path} also holds {', '.join(ignored)}, which the session does not trade: those events are skipped "
                 f"(add them with --symbols {','.join([*symbols, *ignored])})")
    for sym in symbols:
        if sym in held:
            continue
        if complete:
            errors.append(SpecError(where, 0, 0, f"symbol {sym} is not in the input (it holds {', '.join(sorted(held)) or 'no market data'}); "
                                    f"expected --symbols with the input's symbols, or a recording of {sym}"))
        else:
            warn(f"symbol {sym} is not in the first {SURVEY_EVENTS:,} events of the input: its machines wait for data")
    if errors:
        raise SpecErrors(errors)
    for sym in symbols:
        trades = sum(s.trades.get(sym, 0) for s in surveys)
        quotes = sum(s.quotes.get(sym, 0) for s in surveys)
        if trades and not quotes:
            first = "" if complete else f" in the first {SURVEY_EVENTS:,} events"
            warn(f"{sym}: the input has trades but no quotes (bookTicker){first}; the metrics that need a quote stay "
                 "invalid, so the machines read the market as unstable and no order is judged. Add a bookTicker "
                 "recording of the same period (spot archives carry none; record the frames or use USD-M)")


def check_depth(paths: list[Path]) -> None:
    """``market.depth`` asks for a book: a recording without depth frames cannot give one."""
    bare = [p for p in paths if not carries_depth(p)]
    if bare:
        raise SpecErrors([SpecError(str(p), 0, 0, "market.depth is on but this recording carries no depth frames "
                                    "(<symbol>@depth streams or a depth snapshot); expected a frames recording made "
                                    "with depth, or market.depth: false") for p in bare])


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def replay_events(session: Session, replay: list[str] | None = None,
                  warn: Callable[[str], None] = _warn) -> tuple[Iterator, dict]:
    """Events of one or more recordings merged in time order, and the input's identity.

    The input is checked against the session's symbols first (``check_input``)."""
    paths = replay_paths(session, replay)
    _check_exists(paths)
    symbols = session.symbols
    csv_symbol = session.source.get("symbol")
    policy = event_time_policy(session)
    try:  # each recording has its own receive clock: each is guarded before the merge
        check_input(symbols, [survey(p, csv_symbol) for p in paths], warn)
        if session.depth:
            check_depth(paths)
        # each recording read and guarded a chunk at a time, then one event at a time for the run
        streams = [BlockStream(guarded_blocks(open_replay_blocks(
                       p, symbols, symbol=csv_symbol, decoder=DepthFrameDecoder(symbols) if session.depth else None),
                       policy)) for p in paths]
    except ValueError as exc:
        raise SpecErrors([SpecError(str(paths[0]), 0, 0, f"{exc}")]) from None
    identity = {"kind": "replay", "files": [source_identity(p) for p in paths]}
    if len(streams) == 1:
        return streams[0], identity
    return heapq.merge(*streams, key=lambda ev: ev.ts_ns), identity


def live_source(session: Session) -> Any:
    """The live Binance feed of a session; with ``market.depth``, its diff-depth streams too and
    the REST snapshots a local book needs (``book_live.DepthResync``)."""
    from ..market.binance import DEFAULT_STREAMS, BinanceSource

    src = session.source
    market = src.get("market", "spot")
    if not session.depth:
        return BinanceSource(session.symbols, streams=src.get("streams"), market=market,
                             base_url=src.get("url"), seed=src.get("seed", 0))
    from ..market.book_live import DepthResync, rest_url_for

    cfg = session.section("market")
    streams = [*(src.get("streams") or DEFAULT_STREAMS.get(market, ())), cfg.get("depth_stream", "depth@100ms")]
    source = BinanceSource(session.symbols, streams=streams, market=market, base_url=src.get("url"),
                           seed=src.get("seed", 0), decoder=DepthFrameDecoder(session.symbols))
    return DepthResync(source, market=market, rest_url=cfg.get("rest_url") or rest_url_for(src.get("url"), market),
                       levels=int(cfg.get("snapshot_levels", 1000)))


def scenario_source(session: Session) -> tuple[Iterator, dict]:
    src = session.source
    path = session.resolve(src["path"])
    _check_exists([path])
    if session.depth:
        raise SpecErrors([SpecError(str(path), 0, 0, "market.depth is on but a scenario carries no depth frames; "
                                    "expected a recording made with depth, a live source, or market.depth: false")])
    seed = src.get("seed")
    identity = {"kind": "scenario", "path": str(path), "seed": seed,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return guarded(scenario_events(path, seed), event_time_policy(session)), identity


def event_time_policy(session: Session) -> EventTimePolicy:
    """The session's thresholds for implausible stamps (``clock:``; docs/sessions.md)."""
    return EventTimePolicy.from_clock(session.data.get("clock"))
