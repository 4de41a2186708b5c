"""``execlab record`` and ``execlab fake-binance``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "record", help="record raw Binance websocket frames to a .frames.gz file",
        description="Record raw Binance market-data frames (trades and book tickers) with "
                    "their receive time, in the layout replay reads.")
    p.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--futures", action="store_true", help="USD-M futures instead of spot")
    p.add_argument("--url", default=None,
                   help="websocket base URL (default: Binance's public endpoint)")
    p.add_argument("--depth", nargs="?", const="depth@100ms", default=None, metavar="STREAM",
                   choices=["depth", "depth@100ms", "depth@0ms", "depth@250ms", "depth@500ms"],
                   help="also record the diff-depth stream (default depth@100ms) and the REST "
                        "snapshots a local book needs (on the first diff and after a break)")
    p.add_argument("--out", required=True, help="output path, e.g. rec/btc.frames.gz")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this long (default: until interrupted)")
    p.add_argument("--rotate-mb", type=float, default=None, metavar="N",
                   help="start a new file after N MB (compressed)")
    p.add_argument("--rotate-s", type=float, default=None, metavar="N",
                   help="start a new file after N seconds")
    p.set_defaults(func=cmd_record)

    f = subparsers.add_parser(
        "fake-binance", help="serve a recording or a scenario as a fake Binance websocket",
        description="Serve Binance combined-stream frames on loopback from a .frames(.gz) "
                    "recording or a scenario YAML; connect with --url ws://127.0.0.1:PORT.")
    f.add_argument("--replay", required=True, metavar="FILE",
                   help="a .frames.gz recording or a configs/scenarios/*.yaml scenario")
    f.add_argument("--port", type=int, default=8765)
    f.add_argument("--speed", type=float, default=1.0,
                   help="replay speed factor (0: as fast as possible)")
    f.set_defaults(func=cmd_fake_binance)


def _fail(message: str) -> int:
    print(f"execlab: {message}", file=sys.stderr)
    return 2


def _positive(name: str, value: float | None) -> str | None:
    if value is not None and not value > 0:
        return f"{name} must be positive, got {value}"
    return None


def cmd_record(args: argparse.Namespace) -> int:
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    bad = [s for s in symbols if not _SYMBOL.match(s)]
    if not symbols or bad:
        return _fail(f"--symbols: {', '.join(bad) or 'none given'} is not a symbol; "
                     "expected a comma-separated list like BTCUSDT,ETHUSDT")
    for name, value in (("--duration", args.duration), ("--rotate-mb", args.rotate_mb),
                        ("--rotate-s", args.rotate_s)):
        err = _positive(name, value)
        if err:
            return _fail(err)
    if args.url and not args.url.startswith(("ws://", "wss://")):
        return _fail(f"--url {args.url!r}; expected ws://HOST:PORT or wss://HOST")
    out = Path(args.out)
    if out.exists() and out.is_dir():
        return _fail(f"--out {out} is a directory; expected a file path like rec.frames.gz")

    import asyncio

    from .recorder import Recorder

    rotate_bytes = int(args.rotate_mb * 1_000_000) if args.rotate_mb else None
    try:
        recorder = Recorder(out, rotate_bytes=rotate_bytes, rotate_s=args.rotate_s)
    except OSError as exc:
        return _fail(f"--out {out}: cannot write ({exc.strerror})")
    try:
        asyncio.run(record(symbols, recorder, futures=args.futures, url=args.url,
                           duration_s=args.duration, depth=args.depth))
    except KeyboardInterrupt:
        pass
    finally:
        recorder.close()
    files = ", ".join(str(p) for p in recorder.files)
    print(f"recorded {recorder.lines} frames to {files}")
    return 0 if recorder.lines else 1


async def record(symbols: list[str], recorder, *, futures: bool = False,
                 url: str | None = None, duration_s: float | None = None,
                 log=None, depth: str | None = None, **source_kwargs) -> dict:
    """Run a live source into ``recorder`` until ``duration_s`` passes (or forever). With
    ``depth`` (a diff-depth stream name), that stream too, and the REST snapshots a local book
    needs, recorded as frames of ``<symbol>@depth@snapshot`` (``book_live.DepthResync``)."""
    import asyncio

    from .binance import DEFAULT_STREAMS, BinanceSource
    from .events import FeedEvent

    log = log or (lambda msg: print(msg, file=sys.stderr))
    market = "usdm" if futures else "spot"
    if depth:
        from .book_feed import DepthFrameDecoder

        source_kwargs.setdefault("streams", [*DEFAULT_STREAMS[market], depth])
        source_kwargs.setdefault("decoder", DepthFrameDecoder(symbols))
    source = BinanceSource(symbols, market=market, base_url=url, on_frame=recorder, **source_kwargs)
    events = source
    if depth:
        from .book_live import DepthResync, rest_url_for

        events = DepthResync(source, market=market, rest_url=rest_url_for(url, market))

    async def ticker():
        while True:
            await asyncio.sleep(0.25)
            recorder.tick()

    async def consume():
        async for ev in events:
            if type(ev) is FeedEvent and ev.kind != "malformed":
                log(f"{ev.kind} {ev.symbol} {ev.detail}".rstrip())

    tick_task = asyncio.create_task(ticker())
    try:
        async with source:
            try:
                async with asyncio.timeout(duration_s):
                    await consume()
            except TimeoutError:
                pass
    finally:
        tick_task.cancel()
        if events is not source:
            await events.aclose()  # snapshot fetches still out
    return source.decoder.counters.as_dict()


def load_frames(path: str | Path):
    """Frames to serve: a recording, or a scenario (YAML) generated with its own seed."""
    p = Path(path)
    if p.suffix in (".yaml", ".yml"):
        from .synthetic import scenario_frames
        return list(scenario_frames(p))
    from .replay import read_frames
    return list(read_frames(p))


def cmd_fake_binance(args: argparse.Namespace) -> int:
    p = Path(args.replay)
    if not p.is_file():
        return _fail(f"--replay {p}: no such file; expected a .frames.gz or a scenario YAML")
    if not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port}; expected 0..65535")
    if args.speed < 0:
        return _fail(f"--speed {args.speed}; expected a positive factor or 0")
    from framework.spec.errors import SpecErrors
    try:
        frames = load_frames(p)
    except SpecErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        return 2
    except ValueError as exc:
        return _fail(str(exc))
    import asyncio

    from .fake_server import FakeBinance

    async def serve():
        srv = FakeBinance(frames, speed=args.speed or None, port=args.port)
        await srv.start()
        print(f"fake Binance on {srv.url} ({len(frames)} frames from {p}); Ctrl-C to stop",
              file=sys.stderr)
        await srv.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        return _fail(f"--port {args.port}: {exc.strerror}")
    return 0
