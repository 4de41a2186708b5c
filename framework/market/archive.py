"""Binance's public market-data archives (https://data.binance.vision), fetched into a workspace.

Layout of the archive (the same under any base URL, e.g. a mirror or a local test server)::

    data/spot/daily/<kind>/<SYMBOL>/<SYMBOL>-<kind>-<YYYY-MM-DD>.zip        (+ .zip.CHECKSUM)
    data/spot/monthly/<kind>/<SYMBOL>/<SYMBOL>-<kind>-<YYYY-MM>.zip
    data/futures/um/daily/<kind>/<SYMBOL>/<SYMBOL>-<kind>-<YYYY-MM-DD>.zip  (USD-M futures)
    data/futures/um/monthly/...

Each zip holds one CSV, which replay reads as it is (``framework/market/replay.py``). The
``.CHECKSUM`` file holds the zip's SHA-256. Spot archives carry ``trades`` and ``aggTrades``
but no ``bookTicker``; USD-M carry all three. A download goes to ``<file>.part`` and resumes
from there with an HTTP range request; a file is kept only once its checksum matches.
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

BASE_URL = "https://data.binance.vision"
MARKET_PATHS = {"spot": "data/spot", "usdm": "data/futures/um"}
KINDS = {"spot": ("trades", "aggTrades"), "usdm": ("trades", "aggTrades", "bookTicker")}
CHUNK = 1 << 20
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


class ArchiveError(ValueError):
    """A request the archive cannot serve (bad market/kind/dates); the message says why."""


@dataclass(frozen=True)
class ArchiveFile:
    market: str
    kind: str
    symbol: str
    period: str  # "daily" | "monthly"
    stamp: str  # YYYY-MM-DD or YYYY-MM

    @property
    def name(self) -> str:
        return f"{self.symbol}-{self.kind}-{self.stamp}.zip"

    @property
    def url_path(self) -> str:
        return f"{MARKET_PATHS[self.market]}/{self.period}/{self.kind}/{self.symbol}/{self.name}"

    def local_path(self, root: Path) -> Path:
        """Where it goes in a workspace: data/binance/<market>/<kind>/<SYMBOL>/<name>."""
        return root / "binance" / self.market / self.kind / self.symbol / self.name


def plan(market: str, kind: str, symbols: list[str], start: str, end: str) -> list[ArchiveFile]:
    """The archive files covering ``start``..``end`` (both YYYY-MM-DD: daily files; both
    YYYY-MM: monthly files), per symbol, in date order."""
    if market not in MARKET_PATHS:
        raise ArchiveError(f"market {market!r}; expected spot or usdm")
    if kind not in KINDS[market]:
        if market == "spot" and kind == "bookTicker":
            raise ArchiveError("Binance's spot archives carry no bookTicker (quotes); only USD-M futures archives do. "
                               "For spot quotes record the live frames (execlab record) or use --market usdm")
        raise ArchiveError(f"kind {kind!r} for {market}; expected one of {', '.join(KINDS[market])}")
    if _DAY.match(start) and _DAY.match(end):
        period, stamps = "daily", list(_days(start, end))
    elif _MONTH.match(start) and _MONTH.match(end):
        period, stamps = "monthly", list(_months(start, end))
    else:
        raise ArchiveError(f"--from {start} --to {end}; expected two dates YYYY-MM-DD (daily files) "
                           "or two months YYYY-MM (monthly files)")
    if not stamps:
        raise ArchiveError(f"--from {start} is after --to {end}; expected a range forward in time")
    symbols = [s.strip().upper() for s in symbols if s.strip()]
    if not symbols:
        raise ArchiveError("no symbol; expected --symbols BTCUSDT[,ETHUSDT...]")
    return [ArchiveFile(market, kind, sym, period, st) for sym in symbols for st in stamps]


def _days(start: str, end: str) -> Iterator[str]:
    try:
        d, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise ArchiveError(f"{exc}; expected dates YYYY-MM-DD") from None
    while d <= last:
        yield d.isoformat()
        d += timedelta(days=1)


def _months(start: str, end: str) -> Iterator[str]:
    y, m = map(int, start.split("-"))
    ly, lm = map(int, end.split("-"))
    if not (1 <= m <= 12 and 1 <= lm <= 12):
        raise ArchiveError(f"month {start} or {end}; expected YYYY-MM with a month 01..12")
    while (y, m) <= (ly, lm):
        yield f"{y:04d}-{m:02d}"
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


@dataclass
class Outcome:
    file: ArchiveFile
    path: Path
    status: str  # "fetched" | "resumed" | "present" | "missing" | "bad checksum" | "failed"
    detail: str = ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _get(url: str, offset: int = 0, timeout: float = 60.0):
    req = urllib.request.Request(url, headers={"User-Agent": "crypto-execution-lab"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s) URLs we build


def fetch_one(f: ArchiveFile, root: Path, base_url: str = BASE_URL) -> Outcome:
    """Download one archive file (resuming a ``.part``) and verify it against its checksum."""
    url = f"{base_url.rstrip('/')}/{f.url_path}"
    dest = f.local_path(root)
    try:
        with _get(url + ".CHECKSUM") as resp:
            expected = resp.read().decode("utf-8", "replace").split()[0].lower()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return Outcome(f, dest, "missing", f"not published ({url})")
        return Outcome(f, dest, "failed", f"HTTP {exc.code} for {url}.CHECKSUM")
    except (urllib.error.URLError, OSError, IndexError) as exc:
        return Outcome(f, dest, "failed", f"{url}.CHECKSUM: {getattr(exc, 'reason', exc)}")
    if dest.is_file() and _sha256(dest) == expected:
        return Outcome(f, dest, "present")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    try:
        with _get(url, offset) as resp:
            resumed = offset > 0 and resp.status == 206
            with open(part, "ab" if resumed else "wb") as out:
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is already complete
            resumed = True
        elif exc.code == 404:
            return Outcome(f, dest, "missing", f"not published ({url})")
        else:
            return Outcome(f, dest, "failed", f"HTTP {exc.code} for {url}")
    except (urllib.error.URLError, OSError) as exc:
        return Outcome(f, dest, "failed", f"{url}: {getattr(exc, 'reason', exc)}; run again to resume")
    got = _sha256(part)
    if got != expected:
        part.unlink()
        return Outcome(f, dest, "bad checksum", f"sha256 {got[:16]}... but the archive says {expected[:16]}...; deleted, run again")
    part.replace(dest)
    return Outcome(f, dest, "resumed" if resumed else "fetched")


def fetch(files: list[ArchiveFile], root: Path, base_url: str = BASE_URL,
          report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    outcomes = []
    for f in files:
        o = fetch_one(f, root, base_url)
        outcomes.append(o)
        if report is not None:
            report(o)
    return outcomes


_STAMP = re.compile(r"-(\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$")


def file_stamp(path: Path) -> str | None:
    """The date (YYYY-MM-DD) or month (YYYY-MM) in an archive file's name."""
    m = _STAMP.search(path.name)
    return m.group(1) if m else None


def in_range(stamp: str, start: str | None, end: str | None) -> bool:
    """Whether a file's date or month overlaps [start, end] (dates or months, inclusive)."""
    lo, hi = stamp, stamp
    if len(stamp) == 7:  # a month covers its days
        lo, hi = f"{stamp}-01", f"{stamp}-31"
    if start and hi < (start if len(start) == 10 else f"{start}-01"):
        return False
    return not (end and lo > (end if len(end) == 10 else f"{end}-31"))
