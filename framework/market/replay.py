"""Replay recorded market data as the same events the live source yields.

Formats, detected from the content (not trusted from the name alone):

- **frame files** (``*.frames.gz`` or plain text): one message per line,
  ``<local receive time> <space> <raw websocket text frame>``. The receive time is normalised
  to nanoseconds by magnitude (older recorders wrote microseconds or milliseconds). Frames go
  through :class:`~framework.market.decode.FrameDecoder`, the live source's decoder.
- **Binance public historical CSV dumps** (plain or ``.zip``): ``trades``, ``aggTrades`` and
  ``bookTicker``, with or without a header row, time in milliseconds or microseconds. The
  symbol comes from the file name (``BTCUSDT-trades-2021-05-19.csv``) or the ``symbol``
  argument. For CSV rows ``ts_ns`` is the exchange time (there is no receive time).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import time
import zipfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from itertools import chain, islice
from pathlib import Path

from .columns import EventBlock
from .decode import FrameDecoder
from .events import FeedEvent, MarketEvent, Quote, Trade

try:  # ISA-L's gzip: the same format, decompressed about three times faster
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - an installation without it reads with zlib
    _igzip = None

_NS_MIN = 10**17  # 1973 in ns; anything this large is already nanoseconds
_US_MIN = 10**14  # 1973 in µs
_MS_MIN = 10**11  # 1973 in ms

FORMAT_PROBE_LINES = 20  # a frames file is recognised by any of its first lines
STOP_POLL_S = 0.1  # a paced wait checks its stop condition this often

_CSV_NAME = re.compile(r"^([A-Za-z0-9]+)-(trades|aggTrades|bookTicker)-", re.IGNORECASE)
_KIND_NAMES = {"trades": "trades", "aggtrades": "aggTrades", "bookticker": "bookTicker"}


def to_ns(stamp: int) -> int:
    """Normalise an epoch stamp in ns, µs, ms or s to ns by its magnitude. Python integers do
    not overflow: a stamp beyond int64 or negative stays what it is, and the event time guard
    (``eventtime.py``) quarantines it."""
    if stamp >= _NS_MIN:
        return stamp
    if stamp >= _US_MIN:
        return stamp * 1_000
    if stamp >= _MS_MIN:
        return stamp * 1_000_000
    return stamp * 1_000_000_000


def _open_bytes(path: Path, fast: bool = False) -> io.BufferedIOBase:
    """The bytes of a file, gzip and zip decompressed. ``fast``: gzip by ISA-L when installed
    (about three times faster than zlib, and decompressing is a fifth of reading a recording);
    the text reader keeps the standard library's, so the tests compare the two."""
    f = open(path, "rb")  # noqa: SIM115 - handed to the caller
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        if fast and _igzip is not None:
            return _igzip.IGzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if magic == b"PK\x03\x04":
        zf = zipfile.ZipFile(f)
        names = [n for n in zf.namelist() if not n.endswith("/")]
        return zf.open(names[0])  # type: ignore[return-value]
    return f  # type: ignore[return-value]


def _head(f: io.BufferedIOBase, size: int) -> bytes:
    """Up to ``size`` bytes from the start; a gzip cut short (a killed recorder) gives what was
    complete, as ``read_frames`` does."""
    out = bytearray()
    try:
        while len(out) < size:
            chunk = f.read1(size - len(out))
            if not chunk:
                break
            out += chunk
    except EOFError:
        pass
    return bytes(out)


def detect_format(path: str | Path) -> str:
    """'frames', 'csv:trades', 'csv:aggTrades' or 'csv:bookTicker'. Raises ValueError."""
    path = Path(path)
    with _open_bytes(path) as f:
        head = _head(f, 64 * 1024).decode("utf-8", "replace")
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty file; expected frames or a Binance CSV dump")
    first = lines[0]
    if any(_is_frame_line(ln) for ln in lines[:FORMAT_PROBE_LINES]):  # a bad first line is no reason to refuse
        return "frames"
    kind = _csv_kind(path.name, lines[:3])
    if kind:
        return "csv:" + kind
    raise ValueError(f"{path}: unrecognised content {first[:60]!r}; expected "
                     "'<recv ns> <frame>' lines or a Binance trades/aggTrades/bookTicker CSV")


def _is_frame_line(line: str) -> bool:
    stamp, _, rest = line.partition(" ")
    return stamp.isdigit() and rest.lstrip().startswith(("{", "["))


def _csv_kind(name: str, lines: list[str]) -> str | None:
    cells = [c.strip() for c in lines[0].split(",")]
    if len(cells) < 6:
        return None
    lower = [c.lower() for c in cells]
    if "best_bid_price" in lower:
        return "bookTicker"
    if "first_trade_id" in lower:
        return "aggTrades"
    if "is_buyer_maker" in lower:
        return "trades"
    m = _CSV_NAME.match(name)
    if m:
        return _KIND_NAMES[m.group(2).lower()]
    # No header, no telling name: by the columns' shapes.
    row = lower
    if not all(_is_num(c) for c in row[:5]):
        return None
    if len(row) == 7 and _is_num(row[5]) and _is_num(row[6]):
        return "bookTicker"
    if len(row) == 8 and row[6] in ("true", "false"):
        return "aggTrades"
    if len(row) == 7 and row[5] in ("true", "false"):
        return "trades"
    if len(row) == 6 and row[5] in ("true", "false"):
        return "trades"  # futures trades dump: no is_best_match
    if len(row) == 7 and row[6] in ("true", "false"):
        return "aggTrades"  # futures aggTrades dump: no is_best_match
    return None


def _is_num(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def symbol_from_name(name: str) -> str | None:
    m = _CSV_NAME.match(Path(name).name)
    return m.group(1).upper() if m else None


# ---------------------------------------------------------------------------------------------


def read_frames(path: str | Path, bad_lines: bool = False) -> Iterator[tuple[int | None, str]]:
    """(recv_ns, raw frame text) for every line of a frame file.

    Lines without an integer stamp are skipped, or with ``bad_lines`` given as (None, line)
    so the caller can count them; a file cut short (gzip without its trailer, or a last line
    without its newline, as a killed recorder leaves it) ends at the last complete line."""
    with _open_bytes(Path(path)) as fb:
        f = io.TextIOWrapper(fb, encoding="utf-8", errors="replace", newline="\n")
        lines = iter(f)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except EOFError:  # a gzip cut short (recorder killed): keep what is complete
                return
            if not line.endswith("\n"):
                return  # a last line cut mid-write
            stamp, sep, raw = line.partition(" ")
            try:
                if not sep or not stamp.lstrip("-").isdigit():  # int() would also take "1_0", " 10"
                    raise ValueError(stamp)
                ns = to_ns(int(stamp))
            except ValueError:
                if bad_lines and line.strip():
                    yield None, line.rstrip("\r\n")
                continue
            yield ns, raw.rstrip("\r\n")


READ_CHUNK = 1 << 20  # bytes of a recording read (and split into lines) at a time


def _chunks(path: Path, size: int | None = None) -> Iterator[bytes]:
    """The decompressed bytes of a file, a step at a time, up to where a gzip cut short breaks
    (a recorder killed mid-write). ``read1`` returns what one decompression step gave, so nothing
    before the break is lost (``read`` would drop the chunk in progress). ISA-L decompresses in
    larger steps: at a break its reader is replaced by the standard library's from where it was."""
    size = size or READ_CHUNK
    done = 0
    with _open_bytes(path, fast=True) as fb:
        read = getattr(fb, "read1", fb.read)
        while True:
            try:
                chunk = read(size)
            except EOFError:
                break
            if not chunk:
                return
            done += len(chunk)
            yield chunk
    if _igzip is None or not isinstance(fb, _igzip.IGzipFile):
        return
    with _open_bytes(path) as fb:  # the stdlib reader, to the last byte before the break
        skip = done
        try:
            while skip:
                skip -= len(fb.read(min(skip, size)))
            while chunk := fb.read1(size):
                yield chunk
        except EOFError:
            return


def _byte_blocks(path: Path) -> Iterator[bytes]:
    """The complete lines of a file, a chunk of them at a time, each ending with its newline. As
    :func:`read_frames`: a gzip cut short or a last line without its newline ends the input at
    the last complete line."""
    tail = b""
    for chunk in _chunks(path):
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            tail += chunk
            continue
        yield tail + chunk[:cut] if tail else chunk[:cut]
        tail = chunk[cut:]
    # a last line without its newline (tail) was cut mid-write


def _line_blocks(path: Path) -> Iterator[list[bytes]]:
    """The complete lines of a file, without their newline, a list per chunk read."""
    for block in _byte_blocks(path):
        lines = block.split(b"\n")
        lines.pop()  # after the last newline
        yield lines


def _text_line(line: bytes) -> tuple[int | None, str] | None:
    """One line, as :func:`read_frames` reads it from text: (recv_ns, frame), (None, line) for
    a line without a stamp, None for a blank one. For lines the byte fast path does not take."""
    text = line.decode("utf-8", "replace") + "\n"
    stamp, sep, raw = text.partition(" ")
    try:
        if not sep or not stamp.lstrip("-").isdigit():
            raise ValueError(stamp)
        return to_ns(int(stamp)), raw.rstrip("\r\n")
    except ValueError:
        return (None, text.rstrip("\r\n")) if text.strip() else None


# A line of the usual shape, ``<digits> {"stream":NAME,"data":{...}}``, NAME a plain stream name:
# (stamp, frame, name, data). Any other line matches the second branch, so there is one match per line
# (and an empty one after the last newline).
_PLAIN_LINE = re.compile(rb'^(?:(\d+) (\{"stream":"([A-Za-z0-9@_.\-]{1,100})","data":(\{.*\})\})$)?.*$', re.M)


class _LineState:
    """What reading a frame file carries from line to line: the last receive stamp, and the lines
    without a stamp seen before the first one."""

    __slots__ = ("last_ns", "waiting")

    def __init__(self) -> None:
        self.last_ns: int | None = None  # a line without a stamp is counted at the time of the one before
        self.waiting: list[str] = []  # ... or, before any stamp, of the first one


PLAIN_RUN = 64  # lines of the usual shape in a row decoded at once; fewer, line by line
FIRST_LINES = 256  # when a run is refused, these of its lines go line by line before one retry


def _frame_event_blocks(path: Path, symbols: set[str] | None,
                        decoder: FrameDecoder) -> Iterator[list[MarketEvent] | EventBlock]:
    """The events of a frame file, read as bytes, in lists or ``EventBlock``s: the same events,
    in the same order and with the same counters, as :func:`_frame_events_text`.

    A run of lines of the usual shape (a whole chunk read, or the lines between odd ones) is
    decoded at once: into columns (``FrameDecoder.decode_columns``), else frame by frame into
    events (``decode_plain_block``). Odd lines, short runs, and runs both refuse go line by line
    (``decode_bytes``), which gives each odd line its exact treatment. A refused run is tried
    once more after its first ``FIRST_LINES`` lines went line by line: a counter's first key
    (the start of a recording) or an odd frame near its start then costs only those lines."""
    state = _LineState()
    for block in _byte_blocks(path):
        found = _PLAIN_LINE.findall(block)
        found.pop()  # the empty match after the last newline
        stamps, raws, names, payloads = zip(*found, strict=True) if found else ((), (), (), ())
        columns = stamps, names, raws, payloads
        odd = [i for i, s in enumerate(stamps) if not s] if b"" in stamps else []
        lines: list[bytes] = []
        a = 0
        for b in (*odd, len(found)):
            retried = False
            while a < b:  # the plain lines a .. b-1
                got = _plain_run(columns, a, b, symbols, decoder) if b - a >= PLAIN_RUN and not state.waiting else None
                if got is not None:
                    yield got[0]
                    state.last_ns = got[1]
                    a = b
                    break
                lines = lines or block.split(b"\n")
                c = b if retried or b - a < PLAIN_RUN else min(b, a + FIRST_LINES)
                yield list(_line_events(lines[a:c], symbols, decoder, state))
                a, retried = c, True
            if b < len(found):  # the odd line
                lines = lines or block.split(b"\n")
                yield list(_line_events(lines[b:b + 1], symbols, decoder, state))
                a = b + 1


def _plain_run(columns: tuple, a: int, b: int, symbols: set[str] | None,
               decoder: FrameDecoder) -> tuple[list[MarketEvent] | EventBlock, int] | None:
    """Lines a .. b-1 of a chunk, all of the usual shape, decoded at once, and the last one's
    stamp; None when both block decoders refuse (nothing counted)."""
    stamps, names, raws, payloads = (c[a:b] for c in columns)
    ns = list(map(int, stamps))
    if min(ns) < _NS_MIN:
        ns = [to_ns(t) for t in ns]
    events = decoder.decode_columns(ns, names, raws, payloads, symbols)
    if events is None:
        events = decoder.decode_plain_block(ns, names, raws, symbols)
    return None if events is None else (events, ns[-1])


def _frame_events(path: Path, symbols: set[str] | None,
                  decoder: FrameDecoder) -> Iterator[MarketEvent]:
    """The events of a frame file, read as bytes (:func:`_frame_event_blocks`), one by one."""
    return chain.from_iterable(_frame_event_blocks(path, symbols, decoder))


def _line_events(lines: list[bytes], symbols: set[str] | None, decoder: FrameDecoder,
                 state: _LineState) -> Iterator[MarketEvent]:
    """The events of some lines, one at a time (the decoder's ``decode_bytes``)."""
    dec, dec_text = decoder.decode_bytes, decoder.decode
    waiting = state.waiting
    for line in lines:
        stamp, sep, raw = line.partition(b" ")
        if sep and stamp.isdigit():  # ASCII digits only; anything else as text below
            ns = int(stamp)
            if ns < _NS_MIN:
                ns = to_ns(ns)
            if raw[-1:] == b"\r":
                raw = raw.rstrip(b"\r")
            text = None
        else:
            got = _text_line(line)
            if got is None:
                continue
            ns, text = got
            if ns is None:
                if state.last_ns is None:
                    if len(waiting) < 1000:
                        waiting.append(text)
                    else:  # counted, not reported line by line
                        decoder.bad_line(text, 0)
                    continue
                yield decoder.bad_line(text, state.last_ns)
                continue
        state.last_ns = ns
        while waiting:
            yield decoder.bad_line(waiting.pop(0), ns)
        ev = dec(raw, ns) if text is None else dec_text(text, ns)
        if ev is None:
            continue
        if symbols is not None and ev.symbol and ev.symbol not in symbols and type(ev) is not FeedEvent:
            continue  # feed incidents (a malformed frame) are the input's, whatever symbol they name
        yield ev


def _frame_events_text(path: Path, symbols: set[str] | None,
                       decoder: FrameDecoder) -> Iterator[MarketEvent]:
    """The reference reader: every line as text through ``FrameDecoder.decode``."""
    dec = decoder.decode
    last_ns: int | None = None
    waiting: list[str] = []
    for ns, raw in read_frames(path, bad_lines=True):
        if ns is None:
            if last_ns is None:
                if len(waiting) < 1000:
                    waiting.append(raw)
                else:  # counted, not reported line by line
                    decoder.bad_line(raw, 0)
                continue
            yield decoder.bad_line(raw, last_ns)
            continue
        last_ns = ns
        while waiting:
            yield decoder.bad_line(waiting.pop(0), ns)
        ev = dec(raw, ns)
        if ev is None:
            continue
        if symbols is not None and ev.symbol and ev.symbol not in symbols and type(ev) is not FeedEvent:
            continue  # feed incidents (a malformed frame) are the input's, whatever symbol they name
        yield ev


def _csv_rows(path: Path) -> Iterator[list[str]]:
    with _open_bytes(path) as fb:
        f = io.TextIOWrapper(fb, encoding="utf-8", errors="replace", newline="")
        for row in csv.reader(f):
            if row and row[0][:1].isdigit():  # skips the header row, if any
                yield row


def _csv_events(path: Path, kind: str, symbol: str) -> Iterator[MarketEvent]:
    """Events of a CSV dump; a row that does not parse is a ``malformed`` feed event at the time
    of the row before (or of the first good row), never an exception."""
    parse = {"trades": _csv_trade, "aggTrades": _csv_agg_trade}.get(kind, _csv_book)
    last_ns: int | None = None
    waiting: list[str] = []
    for row in _csv_rows(path):
        try:
            ev = parse(row, symbol)
        except (ValueError, IndexError, OverflowError):
            text = ",".join(row)[:120]
            if last_ns is None:
                if len(waiting) < 1000:
                    waiting.append(text)
                continue
            yield FeedEvent(ts_ns=last_ns, kind="malformed", symbol=symbol, detail=f"bad row: {text}")
            continue
        last_ns = ev.ts_ns
        while waiting:
            yield FeedEvent(ts_ns=last_ns, kind="malformed", symbol=symbol, detail=f"bad row: {waiting.pop(0)}")
        yield ev


def _csv_trade(r: list[str], symbol: str) -> MarketEvent:
    t_ms, t_ns = _ms_ns(int(r[4]))
    return Trade(t_ns, symbol, float(r[1]), float(r[2]), r[5].lower() == "true", int(r[0]), t_ms, t_ms)


def _csv_agg_trade(r: list[str], symbol: str) -> MarketEvent:
    t_ms, t_ns = _ms_ns(int(r[5]))
    return Trade(t_ns, symbol, float(r[1]), float(r[2]), r[6].lower() == "true", int(r[0]), t_ms, t_ms, True)


def _csv_book(r: list[str], symbol: str) -> MarketEvent:
    tx = int(r[5]) if r[5] else 0
    ev = int(r[6]) if len(r) > 6 and r[6] else tx
    ev_ms, ev_ns = _ms_ns(ev or tx)
    tx_ms = _ms_ns(tx)[0] if tx else 0
    return Quote(ev_ns, symbol, float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[0]), ev_ms, tx_ms)


def _ms_ns(stamp: int) -> tuple[int, int]:
    ns = to_ns(stamp)
    return ns // 1_000_000, ns


def open_replay(path: str | Path, symbols: Iterable[str] | None = None, *,
                symbol: str | None = None,
                decoder: FrameDecoder | None = None) -> Iterator[MarketEvent]:
    """Events of a recording, in file order.

    ``symbols`` keeps only those symbols' quotes and trades (feed events are all kept: a
    malformed frame is counted whichever symbol it names).
    ``symbol`` names the instrument of a CSV dump whose file name does not.
    ``decoder`` lets the caller read the decoder's counters afterwards.
    Raises ValueError (before the first event) for an unreadable or unknown file.
    """
    return chain.from_iterable(open_replay_blocks(path, symbols, symbol=symbol, decoder=decoder))


CSV_BLOCK = 4096  # rows of a CSV dump per list of events


def open_replay_blocks(path: str | Path, symbols: Iterable[str] | None = None, *,
                       symbol: str | None = None,
                       decoder: FrameDecoder | None = None) -> Iterator[list[MarketEvent]]:
    """The events of :func:`open_replay`, a list at a time (a chunk of a frame file, or
    ``CSV_BLOCK`` rows of a CSV dump): for readers that work a block at a time."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; expected a recording")
    fmt = detect_format(path)
    wanted = {s.upper() for s in symbols} if symbols is not None else None
    if fmt == "frames":
        return _frame_event_blocks(path, wanted, decoder or FrameDecoder())
    kind = fmt.split(":", 1)[1]
    sym = (symbol or symbol_from_name(path.name) or "").upper()
    if not sym:
        raise ValueError(f"{path}: cannot tell the symbol from the file name; pass symbol=")
    if wanted is not None and sym not in wanted:
        return iter(())
    rows = _csv_events(path, kind, sym)
    return iter(lambda: list(islice(rows, CSV_BLOCK)), [])


_ENVELOPE = b'"stream":"'
_STREAM_NAME = re.compile(rb'"stream":"([^"]+)"')
_SURVEYED_KINDS = ("trade", "aggTrade", "bookTicker")


def stream_counts(path: str | Path, limit_bytes: int = 256 << 20) -> tuple[dict[tuple[str, str], int], bool]:
    """Frames per (SYMBOL, stream kind) of a frame file, read from the combined-stream envelopes
    of its first ``limit_bytes`` (uncompressed) without decoding a frame; and whether that was
    the whole file. Empty for frames recorded without envelopes (the caller decodes those).

    Stream names are counted with ``bytes.count`` once known; a block is searched for names
    only when its envelopes are not all accounted for (a stream seen for the first time)."""
    known: set[bytes] = set()
    totals: dict[bytes, int] = {}
    seen = 0
    tail = b""
    complete = False
    chunks = _chunks(Path(path), 1 << 22)  # a gzip cut short: what came before counts
    while seen < limit_bytes:
        chunk = next(chunks, b"")
        if not chunk:
            block, complete = tail, True
        else:
            seen += len(chunk)
            cut = chunk.rfind(b"\n") + 1  # whole lines only; the rest joins the next block
            if not cut:
                tail += chunk
                continue
            block, tail = tail + chunk[:cut], chunk[cut:]
        envelopes = block.count(_ENVELOPE)
        here = {name: block.count(b'"stream":"' + name + b'"') for name in known}
        if sum(here.values()) < envelopes:
            new = set(_STREAM_NAME.findall(block)) - known
            known |= new
            here.update({name: block.count(b'"stream":"' + name + b'"') for name in new})
        for name, n in here.items():
            totals[name] = totals.get(name, 0) + n
        if complete:
            break
    chunks.close()
    counts: dict[tuple[str, str], int] = {}
    for name, n in totals.items():
        symbol, _, kind = name.decode("utf-8", "replace").partition("@")
        if kind in _SURVEYED_KINDS and n:
            counts[(symbol.upper(), kind)] = counts.get((symbol.upper(), kind), 0) + n
    return counts, complete


def source_identity(path: str | Path) -> dict:
    """What a run replayed: path, sha256 of the bytes, detected format and size."""
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"path": str(path), "sha256": h.hexdigest(), "format": detect_format(path),
            "size": os.path.getsize(path)}


async def paced(events: Iterable[MarketEvent] | AsyncIterable[MarketEvent],
                speed: float | None = None, stop: Callable[[], bool] | None = None,
                waiting: Callable[[], None] | None = None) -> AsyncIterator[MarketEvent]:
    """Yield ``events`` spaced by their event-time gaps divided by ``speed``.

    ``speed=None`` (or 0) yields as fast as possible, giving the loop a turn now and then.
    Pacing uses the monotonic clock against the first event's time, so it does not drift.
    A wait (a gap in the data can be hours) looks at ``stop`` every ``STOP_POLL_S`` and ends
    the iteration when it says so, and calls ``waiting`` (the log writes what it holds).
    """
    import asyncio  # only a paced replay needs the event loop: the others start faster

    if speed is not None and speed < 0:
        raise ValueError("speed must be positive")

    async def agen():
        if isinstance(events, AsyncIterable):
            async for ev in events:
                yield ev
        else:
            for ev in events:
                yield ev

    t0_ev: int | None = None
    t0_wall = 0
    n = 0
    async for ev in agen():
        if speed:
            if t0_ev is None:
                t0_ev, t0_wall = ev.ts_ns, time.monotonic_ns()
            due = t0_wall + (ev.ts_ns - t0_ev) / speed
            while (wait_ns := due - time.monotonic_ns()) > 0:
                if stop is not None and stop():
                    return
                if waiting is not None:
                    waiting()
                await asyncio.sleep(min(wait_ns / 1e9, STOP_POLL_S))
        else:
            n += 1
            if n % 1024 == 0:
                await asyncio.sleep(0)
        yield ev


def end_event(ts_ns: int, detail: str = "") -> FeedEvent:
    return FeedEvent(ts_ns=ts_ns, kind="end", detail=detail)
