"""The peers of ``execlab run`` on the same frames: nautilus_trader and hftbacktest.

    python benchmarks/peers.py bench FRAMES [--runs 3] [--json]   # convert, then time each peer
    python benchmarks/peers.py convert FRAMES DIR                  # only the conversion
    python benchmarks/peers.py run {nautilus,hftbacktest} DIR [--orders]

``execlab bench --e2e`` calls ``bench`` and prints the ratios. Both peers are optional
(``pip install -e '.[peers]'``, or any interpreter that has ``nautilus_trader==1.221.0`` and
``hftbacktest==2.4.4``); a peer that is not installed is reported as such.

What each peer is given: the recording's ``bookTicker`` and ``trade`` frames (what ``execlab
run`` uses; depth updates and snapshots are left out, as our decoder ignores them), stamped
with the recording's receive times, converted once, untimed, to the peer's own input format:

- nautilus_trader: a Parquet data catalog of ``QuoteTick`` and ``TradeTick`` (its native
  storage), read back with ``ParquetDataCatalog`` and run in a ``BacktestEngine`` with an L1
  simulated venue; a strategy subscribed to both (callbacks do nothing), and the same with a
  market order every 5 s of data time (alternately buy and sell, 0.008 BTC, about 500 USD).
- hftbacktest: an ``.npz`` array of its event records (a quote becomes depth updates of the
  best bid and ask, removing the previous best level when the price moved; a trade a trade
  event), run by a numba-compiled loop that visits every feed event (``wait_next_feed``), and
  the same with a market order every 5 s.

Each timed run is a fresh process (``run``): interpreter start, imports, reading the converted
input, the engine, exit; as ``execlab run`` is timed. Only the conversion is left out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORDER_EVERY_NS = 5_000_000_000
ORDER_QTY = 0.008


# -- reading the frames (for the conversion only) -----------------------------------------------

def read_market_frames(path: Path):
    """(recv_ns, kind, payload) of every bookTicker and trade frame, in file order."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        for line in f:
            stamp, _, raw = line.partition(b" ")
            if not stamp.isdigit() or b'"data"' not in raw[:80]:
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            stream = str(msg.get("stream", ""))
            kind = stream.partition("@")[2]
            if kind in ("bookTicker", "trade", "aggTrade"):
                yield int(stamp), kind, msg["data"]


def _decimals(text: str) -> int:
    return len(text.rstrip("0").partition(".")[2])


def convert(frames: Path, out: Path) -> dict:
    """Write each peer's input into ``out``; returns counts and the instrument's precisions."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    quotes, trades = [], []
    symbol = ""
    price_dp = size_dp = 0
    for ns, kind, d in read_market_frames(frames):
        symbol = symbol or str(d.get("s", "")).upper()
        if kind == "bookTicker":
            quotes.append((ns, float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])))
            price_dp = max(price_dp, _decimals(d["b"]), _decimals(d["a"]))
            size_dp = max(size_dp, _decimals(d["B"]), _decimals(d["A"]))
        else:
            trades.append((ns, float(d["p"]), float(d["q"]), bool(d["m"]), int(d.get("t", d.get("a", 0)))))
            price_dp = max(price_dp, _decimals(d["p"]))
            size_dp = max(size_dp, _decimals(d["q"]))
    meta = {"symbol": symbol, "quotes": len(quotes), "trades": len(trades), "price_dp": price_dp,
            "size_dp": size_dp, "frames": str(frames)}
    q = np.array(quotes, dtype=[("ts", "i8"), ("bid", "f8"), ("bid_qty", "f8"), ("ask", "f8"), ("ask_qty", "f8")])
    t = np.array(trades, dtype=[("ts", "i8"), ("price", "f8"), ("qty", "f8"), ("maker", "?"), ("id", "i8")])
    np.savez(out / "columns.npz", quotes=q, trades=t)
    (out / "meta.json").write_text(json.dumps(meta))
    done = {}
    for name, fn in (("nautilus", _convert_nautilus), ("hftbacktest", _convert_hftbacktest)):
        try:
            t0 = time.perf_counter()
            fn(q, t, meta, out)
            done[name] = round(time.perf_counter() - t0, 3)
        except ImportError as exc:
            done[name] = f"not installed ({exc.name})"
    meta["converted_s"] = done
    (out / "meta.json").write_text(json.dumps(meta))
    return meta


# -- nautilus_trader -----------------------------------------------------------------------------

def _nautilus_instrument(meta: dict):
    from decimal import Decimal

    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Currency, Price, Quantity

    sym = meta["symbol"]
    base = sym[:-4] if sym.endswith("USDT") else sym
    pdp, sdp = max(meta["price_dp"], 1), max(meta["size_dp"], 1)
    return CurrencyPair(
        instrument_id=InstrumentId(Symbol(sym), Venue("BINANCE")), raw_symbol=Symbol(sym),
        base_currency=Currency.from_str(base), quote_currency=USDT,
        price_precision=pdp, size_precision=sdp,
        price_increment=Price(10.0 ** -pdp, precision=pdp), size_increment=Quantity(10.0 ** -sdp, precision=sdp),
        lot_size=None, max_quantity=None, min_quantity=None, max_notional=None, min_notional=None,
        max_price=None, min_price=None, margin_init=Decimal(0), margin_maint=Decimal(0),
        maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"), ts_event=0, ts_init=0)


def _convert_nautilus(q, t, meta: dict, out: Path) -> None:
    import pandas as pd
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.persistence.wranglers import QuoteTickDataWrangler, TradeTickDataWrangler

    inst = _nautilus_instrument(meta)
    catalog = ParquetDataCatalog(str(out / "nautilus"))
    catalog.write_data([inst])
    if len(q):
        df = pd.DataFrame({"bid_price": q["bid"], "ask_price": q["ask"], "bid_size": q["bid_qty"],
                           "ask_size": q["ask_qty"]}, index=pd.to_datetime(q["ts"], unit="ns", utc=True))
        catalog.write_data(QuoteTickDataWrangler(inst).process(df))
    if len(t):
        df = pd.DataFrame({"price": t["price"], "quantity": t["qty"],
                           "side": ["SELL" if m else "BUY" for m in t["maker"]],  # the aggressor
                           "trade_id": t["id"].astype(str)}, index=pd.to_datetime(t["ts"], unit="ns", utc=True))
        catalog.write_data(TradeTickDataWrangler(inst).process(df))


def run_nautilus(d: Path, orders: bool) -> dict:
    from datetime import timedelta
    from decimal import Decimal

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import QuoteTick, TradeTick
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Venue
    from nautilus_trader.model.objects import Money, Quantity
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.trading.strategy import Strategy

    class Config(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        orders: bool = False

    class Probe(Strategy):
        """Sees every quote and trade and does nothing; with ``orders``, a market order every 5 s."""

        def __init__(self, config: Config) -> None:
            super().__init__(config)
            self.side = OrderSide.BUY
            self.sent = 0

        def on_start(self) -> None:
            self.subscribe_quote_ticks(self.config.instrument_id)
            self.subscribe_trade_ticks(self.config.instrument_id)
            if self.config.orders:
                self.clock.set_timer("probe", timedelta(seconds=ORDER_EVERY_NS / 1e9), callback=self.on_probe)

        def on_quote_tick(self, tick: QuoteTick) -> None:
            pass

        def on_trade_tick(self, tick: TradeTick) -> None:
            pass

        def on_probe(self, event) -> None:
            inst = self.cache.instrument(self.config.instrument_id)
            order = self.order_factory.market(self.config.instrument_id, self.side,
                                              Quantity(ORDER_QTY, inst.size_precision))
            self.submit_order(order)
            self.sent += 1
            self.side = OrderSide.SELL if self.side == OrderSide.BUY else OrderSide.BUY

    meta = json.loads((d / "meta.json").read_text())
    catalog = ParquetDataCatalog(str(d / "nautilus"))
    (inst,) = catalog.instruments()
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                     starting_balances=[Money(10_000_000, USDT), Money(Decimal(1000), inst.base_currency)])
    engine.add_instrument(inst)
    data = catalog.quote_ticks() + catalog.trade_ticks()
    engine.add_data(data)
    strategy = Probe(Config(instrument_id=inst.id, orders=orders))
    engine.add_strategy(strategy)
    engine.run()
    fills = len(engine.cache.orders_closed())
    engine.dispose()
    return {"events": len(data), "orders": strategy.sent, "closed_orders": fills, "symbol": meta["symbol"]}


# -- hftbacktest ---------------------------------------------------------------------------------

def _convert_hftbacktest(q, t, meta: dict, out: Path) -> None:
    import numpy as np
    from hftbacktest.types import (
        BUY_EVENT,
        DEPTH_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
        event_dtype,
    )

    rows = []
    flags = EXCH_EVENT | LOCAL_EVENT
    bid = ask = None
    qi = ti = 0
    # quotes and trades merged in receive order (stable: a quote before a trade of the same stamp
    # only when it came first in the file, which a stable merge on the stamp cannot tell; the
    # stamps are nanoseconds, so ties are rare and harmless here)
    while qi < len(q) or ti < len(t):
        if ti >= len(t) or (qi < len(q) and q["ts"][qi] <= t["ts"][ti]):
            ts, b, bq, a, aq = (q[k][qi].item() for k in ("ts", "bid", "bid_qty", "ask", "ask_qty"))
            qi += 1
            if bid is not None and bid != b:
                rows.append((DEPTH_EVENT | BUY_EVENT | flags, ts, ts, bid, 0.0, 0, 0, 0.0))
            rows.append((DEPTH_EVENT | BUY_EVENT | flags, ts, ts, b, bq, 0, 0, 0.0))
            if ask is not None and ask != a:
                rows.append((DEPTH_EVENT | SELL_EVENT | flags, ts, ts, ask, 0.0, 0, 0, 0.0))
            rows.append((DEPTH_EVENT | SELL_EVENT | flags, ts, ts, a, aq, 0, 0, 0.0))
            bid, ask = b, a
        else:
            ts, p, qty, maker = (t[k][ti].item() for k in ("ts", "price", "qty", "maker"))
            ti += 1
            side = SELL_EVENT if maker else BUY_EVENT  # the aggressor
            rows.append((TRADE_EVENT | side | flags, ts, ts, p, qty, 0, 0, 0.0))
    np.savez_compressed(out / "hftbacktest.npz", data=np.array(rows, dtype=event_dtype))


def run_hftbacktest(d: Path, orders: bool) -> dict:
    import numpy as np
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    meta = json.loads((d / "meta.json").read_text())
    pdp, sdp = max(meta["price_dp"], 1), max(meta["size_dp"], 1)
    asset = (BacktestAsset().data([str(d / "hftbacktest.npz")]).linear_asset(1.0)
             .constant_order_latency(25_000_000, 25_000_000).risk_adverse_queue_model()
             .no_partial_fill_exchange().trading_value_fee_model(0.001, 0.001)
             .tick_size(10.0 ** -pdp).lot_size(10.0 ** -sdp))
    hbt = HashMapMarketDepthBacktest([asset])

    n, sent = _hft_visit()(hbt, orders, ORDER_EVERY_NS, ORDER_QTY)
    hbt.close()
    return {"events": int(n), "orders": int(sent), "symbol": meta["symbol"], "rows": int(np.load(d / "hftbacktest.npz")["data"].shape[0])}


_VISIT = None


def _hft_visit():
    """The strategy loop, compiled by numba. hftbacktest's bindings hold ctypes pointers, so
    numba cannot cache a function that drives them: every process compiles it (part of using
    hftbacktest, so part of its time)."""
    global _VISIT
    if _VISIT is None:
        from hftbacktest import GTC, MARKET
        from numba import njit

        def visit(hbt, orders, every, qty):
            n = 0
            sent = 0
            next_order = 0
            while hbt.wait_next_feed(False, 3_600_000_000_000) == 2:  # 2: a feed event arrived
                n += 1
                if orders:
                    now = hbt.current_timestamp
                    if next_order == 0:
                        next_order = now + every
                    elif now >= next_order:
                        next_order += every
                        depth = hbt.depth(0)
                        if sent % 2 == 0:
                            hbt.submit_buy_order(0, sent + 1, depth.best_ask, qty, GTC, MARKET, False)
                        else:
                            hbt.submit_sell_order(0, sent + 1, depth.best_bid, qty, GTC, MARKET, False)
                        sent += 1
                        hbt.clear_inactive_orders(0)
            return n, sent

        _VISIT = njit(visit)
    return _VISIT


RUNNERS = {"nautilus": run_nautilus, "hftbacktest": run_hftbacktest}
PACKAGES = {"nautilus": "nautilus_trader", "hftbacktest": "hftbacktest"}


# -- the benchmark -------------------------------------------------------------------------------

def _installed(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGES[name])
    except PackageNotFoundError:
        return None


def bench(frames: Path, runs: int) -> dict:
    """Convert once, then time every peer and mode as ``runs`` fresh processes (after one warm-up)."""
    work = Path(tempfile.mkdtemp(prefix="peers-"))
    t0 = time.perf_counter()
    meta = convert(frames, work)
    res: dict = {"convert_s": round(time.perf_counter() - t0, 3), "quotes": meta["quotes"], "trades": meta["trades"],
                 "notes": []}
    for name in ("nautilus", "hftbacktest"):
        ver = _installed(name)
        if ver is None or not isinstance(meta["converted_s"].get(name), float):
            res["notes"].append(f"peer {PACKAGES[name]} not installed (pip install -e '.[peers]')")
            continue
        for mode in ("noop", "orders"):
            cmd = [sys.executable, __file__, "run", name, str(work)] + (["--orders"] if mode == "orders" else [])
            key = f"{name}_{mode}"
            try:
                subprocess.run(cmd, check=True, capture_output=True, text=True)  # warm-up (numba cache, page cache)
                times, cpus, out = [], [], ""
                for _ in range(runs):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t1 = time.perf_counter()
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                    times.append(time.perf_counter() - t1)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                res[key] = {"best_s": min(times), "all_s": times, "cpu_s": min(cpus), "version": ver,
                            **json.loads(out)}
            except subprocess.CalledProcessError as exc:
                res[key] = {"error": f"failed: {(exc.stderr or '').strip().splitlines()[-1:] or exc.returncode}"}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("frames", type=Path)
    b.add_argument("--runs", type=int, default=3)
    b.add_argument("--json", action="store_true")
    c = sub.add_parser("convert")
    c.add_argument("frames", type=Path)
    c.add_argument("out", type=Path)
    r = sub.add_parser("run")
    r.add_argument("peer", choices=sorted(RUNNERS))
    r.add_argument("dir", type=Path)
    r.add_argument("--orders", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "convert":
        print(json.dumps(convert(args.frames, args.out)))
    elif args.cmd == "run":
        print(json.dumps(RUNNERS[args.peer](args.dir, args.orders)))
    else:
        if not args.frames.is_file():
            print(f"{args.frames}: no such file; expected a frames recording", file=sys.stderr)
            return 2
        res = bench(args.frames, max(args.runs, 1))
        if args.json:
            print(json.dumps(res))
        else:
            for k, v in res.items():
                print(f"{k}: {v}")
    sys.stdout.flush()
    os._exit(0)  # the peers' runtimes can linger at exit; the figures are out


if __name__ == "__main__":
    sys.exit(main())
