"""The same recording and the same orders through hftbacktest and through ``execlab run``.

    python benchmarks/hftbacktest_agreement.py FRAMES [FRAMES ...] [--seconds S] [--json FILE]
                                              [--work DIR] [--hftbacktest-python PYTHON]
    python benchmarks/hftbacktest_agreement.py hbt-side WORKDIR     # the hftbacktest half only

What is compared (docs/execution.md, *Agreement with hftbacktest*):

1. One fixed schedule of intents (``schedule``): every ``--every`` seconds a taker, alternately
   buy and sell, of notionals cycling through ``TAKER_NOTIONALS`` (the larger ones walk the
   book), and half a period later a post-only limit at the touch, alternately buy and sell,
   of notionals cycling through ``PASSIVE_NOTIONALS``, cancelled by its TTL.
2. Ours: ``execlab run`` on a session with ``market.depth: true`` (takers walk the L2 book, the
   queue models read the book's level at our price), the ``file`` intents generator with that
   schedule, a constant latency without jitter, no fees, a decision table that lets every
   intent through unscaled, and risk limits out of the way. One run per queue model acting,
   so every model's fills carry their times.
3. hftbacktest: the recording's depth snapshot, depth diffs (Binance's sequencing rules) and
   trades converted once to its event format, on the same receive clock; ``PartialFillExchange``
   with the same constant latency; one backtest per queue model (``RiskAdverseQueueModel`` for
   our ``conservative``, ``PowerProbQueueModel(1, 2, 3)`` for ``linear``/``power2``/``power3``,
   ``LogProbQueueModel`` for ``log``), each with a second asset for the takers; the orders are ours as our engine
   sent them (decision time, side, quantity after the lot rounding, limit price), takers as IOC
   limits far beyond any level they could reach (ours walk as far: ``WALK_BPS``), passive
   orders as GTX limits cancelled at decision + TTL (they reach the exchange one latency later,
   when ours expires).
4. Order by order: taker filled quantity and VWAP (bps apart), passive filled or not, filled
   quantity and first fill time; then the aggregates. Each disagreement is classified by its
   cause (``classify_passive``, ``classify_taker``).

hftbacktest is optional (``pip install hftbacktest==2.4.4``, see ``scripts/setup``). The
hftbacktest half imports nothing of ours: it runs in this interpreter when hftbacktest is
importable here, else in ``--hftbacktest-python`` (or ``$EXECLAB_HFTBACKTEST_PYTHON``).
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NS = 1_000_000_000
LATENCY_MS = 25.0
TAKER_NOTIONALS = (2_000.0, 50_000.0, 250_000.0, 1_000_000.0)
PASSIVE_NOTIONALS = (1_000.0, 10_000.0)
EVERY_S = 6.0
TTL_S = 10.0
WARMUP_S = 15.0  # the book is complete (snapshot bridged) long before the first order
WALK_BPS = 500.0  # how far either side may walk: 5 %, far beyond what any order reaches
# our name -> (hftbacktest's queue model, its argument)
MODELS = {
    "conservative": ("risk_adverse", None),
    "linear": ("power_prob", 1.0),
    "power2": ("power_prob", 2.0),
    "power3": ("power_prob", 3.0),
    "log": ("log_prob", None),
}
DECISION_TABLE = """\
table: decision
doc: Every intent goes through unscaled (the comparison is of the fill models, not of the gates).
rules:
  - name: all
    doc: Always eligible, takers allowed, full budget.
    when: true
    then: {eligible: true, aggressiveness: take, risk_budget: 1.0}
"""


# -- the recording ---------------------------------------------------------------------------------

def read_frames(path: Path, seconds: float | None = None) -> list[tuple[int, bytes]]:
    """(receive ns, raw JSON) of every frame line, in file order; only the first ``seconds``."""
    out: list[tuple[int, bytes]] = []
    first = None
    with gzip.open(path, "rb") as f:
        for line in f:
            stamp, _, raw = line.partition(b" ")
            if not stamp.isdigit():
                continue
            ts = int(stamp)
            first = ts if first is None else first
            if seconds is not None and ts > first + seconds * NS:
                break
            out.append((ts, raw.rstrip(b"\n")))
    return out


def write_frames(frames: list[tuple[int, bytes]], path: Path) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as f:
        for ts, raw in frames:
            f.write(b"%d %s\n" % (ts, raw))
    return path


def describe(frames: list[tuple[int, bytes]]) -> dict:
    """Symbol and market of a one-symbol recording (USD-M depth diffs carry ``pu``)."""
    symbol, market = "", "spot"
    for _, raw in frames:
        if b"depthUpdate" in raw:
            d = json.loads(raw)
            d = d.get("data", d)
            symbol = d["s"]
            market = "usdm" if "pu" in d else "spot"
            break
    if not symbol:
        raise ValueError("no depth frames: the comparison needs a recording with Binance depth diffs")
    return {"symbol": symbol, "market": market, "start_ns": frames[0][0], "end_ns": max(t for t, _ in frames)}


def schedule(start_ns: int, end_ns: int, every_s: float = EVERY_S, ttl_s: float = TTL_S) -> list[dict]:
    """The fixed intents: a taker every ``every_s`` and a passive order half a period later."""
    rows = []
    t = start_ns + int(WARMUP_S * NS)
    k = 0
    step = int(every_s * NS)
    while t + step // 2 + int((ttl_s + 2) * NS) < end_ns:
        rows.append({"ts_ns": t, "side": "buy" if k % 2 == 0 else "sell", "style": "take",
                     "notional_usd": TAKER_NOTIONALS[k % len(TAKER_NOTIONALS)], "intent_id": f"T{k}"})
        rows.append({"ts_ns": t + step // 2, "side": "sell" if k % 2 == 0 else "buy", "style": "passive",
                     "notional_usd": PASSIVE_NOTIONALS[k % len(PASSIVE_NOTIONALS)], "limit_offset_ticks": 0,
                     "ttl_s": ttl_s, "intent_id": f"P{k}"})
        t += step
        k += 1
    return rows


# -- ours ------------------------------------------------------------------------------------------

def instrument(market: str, symbol: str) -> dict:
    """Tick and lot step of the symbol from the shipped exchangeInfo file (what our engine uses)."""
    from framework.execution.filters import load_rules, shipped_file

    r = load_rules(shipped_file(market), market)[symbol]
    return {"tick": r.tick_size, "lot": r.step_size}


def session_yaml(frames: Path, symbol: str, tick: float, intents: Path, out: Path, acting: str,
                 shadows: list[str]) -> dict:
    return {
        "session": f"hftbacktest-agreement-{acting}",
        "doc": "The hftbacktest comparison's orders (benchmarks/hftbacktest_agreement.py).",
        "symbols": [symbol],
        "source": {"kind": "replay", "path": str(frames), "seed": 7},
        "clock": {"tick_ms": 100},
        "market": {"depth": True},
        "machines": {"decision": "decision.yaml"},
        "intents": {"generator": "file", "file": {"path": str(intents)}},
        "execution": {
            "tick_size": tick,
            "latency": {"fixed_ms": LATENCY_MS, "jitter": "none", "ack_fixed_ms": LATENCY_MS},
            "fees": {"maker_bps": 0, "taker_bps": 0},
            "taker": {"impact": "walk", "walk_step_bps": WALK_BPS / 10, "walk_max_levels": 10},
            "passive": {"ttl_s": TTL_S, "queue": {"model": acting, "shadows": shadows}},
            "markout_horizons_s": [1],
        },
        "risk": {"max_order_notional_usd": 1e9, "max_position_notional_usd": 1e12, "max_orders": 100000,
                 "order_window_s": 60, "loss_limit_usd": 1e12, "max_drawdown_usd": 1e12,
                 "stale_quote_ms": 86_400_000, "kill_switch_on": []},
        "output": {"dir": str(out)},
    }


def run_ours(frames: Path, meta: dict, rows: list[dict], work: Path, models: list[str]) -> dict[str, list[dict]]:
    """``execlab run`` once per acting queue model; returns each run's audit records."""
    import yaml

    from framework.runtime.rundir import read_log

    intents = work / "intents.jsonl"
    intents.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "decision.yaml").write_text(DECISION_TABLE)
    execlab = Path(sys.executable).with_name("execlab")
    logs = {}
    for acting in models:
        cfg = work / f"session-{acting}.yaml"
        doc = session_yaml(frames, meta["symbol"], meta["tick"], intents, work, acting,
                           [m for m in models if m != acting])
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
        run_dir = work / f"run-{acting}"
        proc = subprocess.run([str(execlab), "run", str(cfg), "--out", str(run_dir), "--force", "--no-progress"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"execlab run {cfg} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        logs[acting] = list(read_log(run_dir))
    return logs


def our_orders(records: list[dict]) -> dict[str, dict]:
    """intent id -> what our engine did with it: the order as sent, its fills, how it ended."""
    by_oid: dict[str, dict] = {}
    by_intent: dict[str, dict] = {}
    for r in records:
        kind = r.get("kind")
        if kind == "order":
            o = {"intent_id": r["intent_id"], "order_id": r["order_id"], "ts_ns": r["ts_ns"], "side": r["side"],
                 "style": r["style"], "qty": r["qty"], "limit_price": r["limit_price"], "ttl_s": r["ttl_s"],
                 "decision_bid": r["decision_bid"], "decision_ask": r["decision_ask"], "fills": [],
                 "end": None, "arrival": None, "queue_models": None}
            by_oid[r["order_id"]] = o
            by_intent[r["intent_id"]] = o
        elif kind == "ack":
            by_oid[r["order_id"]]["arrival"] = {k: r[k] for k in ("ts_ns", "arrival_bid", "arrival_ask",
                                                                   "placement", "queue_ahead")}
        elif kind == "fill":
            by_oid[r["order_id"]]["fills"].append({k: r[k] for k in ("ts_ns", "price", "qty", "how")})
        elif kind in ("cancel", "reject"):
            by_oid[r["order_id"]]["end"] = {"kind": kind, "reason": r["reason"], "ts_ns": r["ts_ns"]}
        elif kind == "intent_reject":
            by_intent[r["intent_id"]] = {"intent_id": r["intent_id"], "refused": r["reason"]}
        elif kind == "order_result" and r.get("queue_models"):
            by_oid[r["order_id"]]["queue_models"] = {m["model"]: m["filled_qty"] for m in r["queue_models"]}
    return by_intent


# -- hftbacktest -----------------------------------------------------------------------------------
# This half imports only numpy and hftbacktest: it runs in whichever interpreter has hftbacktest.

def hbt_events(frames_path: Path):
    """The recording in hftbacktest's event format, on the receive clock (exchange and local
    stamps both the receive time, a late frame at the latest time seen: what our replay does).

    Depth follows Binance's rules as our book does: diffs before the REST snapshot wait; the
    snapshot clears the book and inserts its levels, then the waiting diffs it does not cover
    (spot ``u > L``, USD-M ``u >= L``) apply at once; afterwards a diff applies unless it is
    old (``u <=`` the last applied). Trades: aggressor buy (``m`` false) or sell."""
    import numpy as np
    from hftbacktest.types import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
        event_dtype,
    )

    both = EXCH_EVENT | LOCAL_EVENT
    rows: list[tuple] = []
    waiting: list[dict] = []
    last: int | None = None  # final update id of the last diff applied; None before the snapshot
    bridge: tuple[int, bool] | None = None  # (snapshot id, USD-M) until a diff follows the snapshot
    seen = 0
    counts = {"diffs": 0, "applied": 0, "dropped_old": 0, "gaps": 0, "trades": 0, "snapshots": 0}

    def apply(ts: int, d: dict) -> None:
        nonlocal last, bridge
        if bridge is not None:
            L, usdm = bridge
            if (d["u"] < L) if usdm else (d["u"] <= L):
                counts["dropped_old"] += 1
                return
            counts["gaps"] += 0 if ((d["U"] <= L <= d["u"]) if usdm else (d["U"] <= L + 1 <= d["u"])) else 1
            bridge = None
        elif d["u"] <= last:
            counts["dropped_old"] += 1
            return
        else:
            counts["gaps"] += 0 if ((d["pu"] == last) if "pu" in d else (d["U"] <= last + 1)) else 1
        for key, side in (("b", BUY_EVENT), ("a", SELL_EVENT)):
            for p, q in d[key]:
                rows.append((DEPTH_EVENT | side | both, ts, ts, float(p), float(q), 0, 0, 0.0))
        counts["applied"] += 1
        last = d["u"]

    with gzip.open(frames_path, "rb") as f:
        for line in f:
            stamp, _, raw = line.partition(b" ")
            if not stamp.isdigit():
                continue
            seen = max(seen, int(stamp))
            msg = json.loads(raw)
            d = msg.get("data", msg)
            if "lastUpdateId" in d:
                counts["snapshots"] += 1
                rows.append((DEPTH_CLEAR_EVENT | both, seen, seen, 0.0, 0.0, 0, 0, 0.0))
                for key, side in (("bids", BUY_EVENT), ("asks", SELL_EVENT)):
                    for p, q in d[key]:
                        rows.append((DEPTH_SNAPSHOT_EVENT | side | both, seen, seen, float(p), float(q), 0, 0, 0.0))
                last, bridge = int(d["lastUpdateId"]), (int(d["lastUpdateId"]), "E" in d)
                for w in waiting:  # diffs that came before the snapshot and are newer than it
                    apply(seen, w)
                waiting = []
            elif d.get("e") == "depthUpdate":
                counts["diffs"] += 1
                if last is None:
                    waiting.append(d)
                else:
                    apply(seen, d)
            elif d.get("e") == "trade":
                counts["trades"] += 1
                side = SELL_EVENT if d["m"] else BUY_EVENT  # the aggressor
                rows.append((TRADE_EVENT | side | both, seen, seen, float(d["p"]), float(d["q"]), 0, 0, 0.0))
    return np.array(rows, dtype=event_dtype), counts


_DRIVE = None


def _drive():
    """The strategy loop, compiled by numba (hftbacktest's bindings are numba jitclasses)."""
    global _DRIVE
    if _DRIVE is None:
        import numpy as np
        from hftbacktest import GTX, LIMIT
        from hftbacktest.order import CANCELED, EXPIRED, FILLED, IOC
        from numba import njit

        def observe(hbt, n_assets, tk_pending, tk_out, open_a, open_o, n_open, qty, ps_filled,
                    ps_first, ps_status):
            if tk_pending[0] >= 0:
                k = tk_pending[0]
                o = hbt.orders(0).get(k + 1)
                if o is not None and (o.status == FILLED or o.status == EXPIRED):  # IOC: its answer is in
                    # hftbacktest reports the total filled and the last level's price only
                    tk_out[k, 0] = qty[k] - o.leaves_qty
                    tk_out[k, 2] = o.exec_price_tick
                    tk_pending[0] = -1
            j = 0
            while j < n_open[0]:
                a, k = open_a[j], open_o[j]
                o = hbt.orders(a).get(k + 1)
                done = False
                if o is not None:
                    filled = qty[k] - o.leaves_qty
                    if filled > 1e-12 and ps_first[a - 1, k] == 0:
                        ps_first[a - 1, k] = o.exch_timestamp
                    ps_filled[a - 1, k] = max(filled, 0.0) if o.status != EXPIRED else 0.0
                    if o.status == FILLED or o.status == CANCELED or o.status == EXPIRED:
                        ps_status[a - 1, k] = o.status
                        done = True
                if done:
                    n_open[0] -= 1
                    open_a[j] = open_a[n_open[0]]
                    open_o[j] = open_o[n_open[0]]
                else:
                    j += 1

        observe = njit(observe)

        def drive(hbt, n_assets, ts, kind, oid, side, price, qty, end_ts, tk_out, ps_filled, ps_first, ps_status):
            tk_pending = np.full(1, -1, np.int64)
            open_a = np.zeros(4 * len(ts) * n_assets + 1, np.int64)
            open_o = np.zeros(4 * len(ts) * n_assets + 1, np.int64)
            n_open = np.zeros(1, np.int64)
            hbt.elapse(0)
            i = 0
            n = len(ts)
            while True:
                target = ts[i] if i < n else end_ts
                while hbt.current_timestamp < target:
                    r = hbt.wait_next_feed(True, target - hbt.current_timestamp)
                    if r == 3:
                        observe(hbt, n_assets, tk_pending, tk_out, open_a, open_o, n_open, qty,
                                ps_filled, ps_first, ps_status)
                    elif r == 1:
                        break
                observe(hbt, n_assets, tk_pending, tk_out, open_a, open_o, n_open, qty,
                        ps_filled, ps_first, ps_status)
                if i >= n:
                    break
                while i < n and ts[i] == target:
                    k = oid[i]
                    if kind[i] == 0:  # a taker: IOC limit far beyond any level it reaches
                        tk_pending[0] = k
                        if side[i] > 0:
                            hbt.submit_buy_order(0, k + 1, price[i], qty[k], IOC, LIMIT, False)
                        else:
                            hbt.submit_sell_order(0, k + 1, price[i], qty[k], IOC, LIMIT, False)
                    elif kind[i] == 3:
                        # the taker reaches the exchange now: the book it is matched against is
                        # the one here (same clock, events of this instant already applied). Walk
                        # it by hftbacktest's own IOC rule, tick by tick from the best, to price the
                        # fill, which hftbacktest's order response does not (its last level only).
                        d = hbt.depth(0)
                        left = qty[k]
                        value = 0.0
                        last = 0
                        cap = int(round(price[i] / d.tick_size))
                        t = d.best_ask_tick if side[i] > 0 else d.best_bid_tick
                        while left > 1e-12 and (t <= cap if side[i] > 0 else t >= cap):
                            q = d.ask_qty_at_tick(t) if side[i] > 0 else d.bid_qty_at_tick(t)
                            if q > 0.0:
                                f = min(q, left)
                                value += f * t * d.tick_size
                                left -= f
                                last = t
                            t += side[i]
                        tk_out[k, 1] = value
                        tk_out[k, 3] = qty[k] - left
                        tk_out[k, 4] = last
                    elif kind[i] == 1:  # a post-only limit, once per queue model
                        for a in range(1, n_assets):
                            if side[i] > 0:
                                hbt.submit_buy_order(a, k + 1, price[i], qty[k], GTX, LIMIT, False)
                            else:
                                hbt.submit_sell_order(a, k + 1, price[i], qty[k], GTX, LIMIT, False)
                            open_a[n_open[0]] = a
                            open_o[n_open[0]] = k
                            n_open[0] += 1
                    else:  # its TTL: cancel wherever it still rests
                        for a in range(1, n_assets):
                            o = hbt.orders(a).get(k + 1)
                            if o is not None and (o.status == 1 or o.status == 5):  # NEW, PARTIALLY_FILLED
                                hbt.cancel(a, k + 1, False)
                    i += 1
            return n_open[0]

        _DRIVE = njit(drive)
    return _DRIVE


def hbt_side(work: Path) -> dict:
    """Convert (once per work directory), then run the orders of ``work/hbt-orders.json``."""
    import numpy as np
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    spec = json.loads((work / "hbt-orders.json").read_text())
    events_path = work / "hbt-events.npz"
    t0 = time.perf_counter()
    if not events_path.is_file():
        events, counts = hbt_events(Path(spec["frames"]))
        np.savez_compressed(events_path, data=events)
        (work / "hbt-events.json").write_text(json.dumps(counts))
    counts = json.loads((work / "hbt-events.json").read_text())
    convert_s = time.perf_counter() - t0
    latency = int(spec["latency_ms"] * 1_000_000)

    def asset(model: str | None, arg):
        a = (BacktestAsset().data([str(events_path)]).linear_asset(1.0)
             .constant_order_latency(latency, latency).partial_fill_exchange()
             .trading_value_fee_model(0.0, 0.0).tick_size(spec["tick"]).lot_size(spec["lot"])
             .last_trades_capacity(0))
        if model == "power_prob":
            return a.power_prob_queue_model(arg)
        if model == "log_prob":
            return a.log_prob_queue_model()
        return a.risk_adverse_queue_model()

    models = spec["models"]
    orders = spec["orders"]
    acts = []  # (ts, kind, order index, side, price)
    for k, o in enumerate(orders):
        sgn = 1 if o["side"] == "buy" else -1
        if o["style"] == "take":
            touch = o["decision_ask"] if sgn > 0 else o["decision_bid"]
            cap = touch * (1 + sgn * WALK_BPS / 1e4)
            acts.append((o["ts_ns"], 0, k, sgn, cap))
            acts.append((o["ts_ns"] + latency, 3, k, sgn, cap))
        else:
            acts.append((o["ts_ns"], 1, k, sgn, o["limit_price"]))
            acts.append((o["ts_ns"] + int(round(o["ttl_s"] * NS)), 2, k, sgn, o["limit_price"]))
    acts.sort(key=lambda a: (a[0], a[2], a[1]))
    ts = np.array([a[0] for a in acts], np.int64)
    kind = np.array([a[1] for a in acts], np.int64)
    oid = np.array([a[2] for a in acts], np.int64)
    side = np.array([a[3] for a in acts], np.int64)
    price = np.array([a[4] for a in acts], np.float64)
    qty = np.array([o["qty"] for o in orders], np.float64)
    n = len(orders)
    tk_out = np.full((n, 5), np.nan)  # filled, value (walked), last tick, filled (walked), last tick (walked)
    ps_filled = np.zeros((len(models), n))
    ps_first = np.zeros((len(models), n), np.int64)
    ps_status = np.zeros((len(models), n), np.int64)
    t1 = time.perf_counter()
    drive = _drive()
    left_open = 0
    # One backtest per queue model (the takers' asset and the model's): all models in one
    # backtest of six assets grew past 7 GB on USD-M BTCUSDT, one model at a time stays at 0.3 GB.
    for j, m in enumerate(models):
        hbt = HashMapMarketDepthBacktest([asset(None, None), asset(*MODELS[m])])
        left_open += drive(hbt, 2, ts, kind, oid, side, price, qty, int(ts.max()) + 2 * NS if n else 0,
                           tk_out, ps_filled[j:j + 1], ps_first[j:j + 1], ps_status[j:j + 1])
        hbt.close()
    run_s = time.perf_counter() - t1
    out = {"convert_s": round(convert_s, 3), "run_s": round(run_s, 3), "events": counts, "left_open": left_open,
           "takers": {}, "passive": {m: {} for m in models}}
    for k, o in enumerate(orders):
        if o["style"] == "take":
            # the walk of hftbacktest's book must end where hftbacktest's own fill ended
            walked = {"filled": float(tk_out[k, 3]), "last_tick": float(tk_out[k, 4])}
            reported = {"filled": float(tk_out[k, 0]), "last_tick": float(tk_out[k, 2])}
            out["takers"][o["intent_id"]] = {
                "filled": reported["filled"], "value": float(tk_out[k, 1]),
                "walk_matches_fill": abs(walked["filled"] - reported["filled"]) <= spec["lot"] / 2
                and (reported["filled"] == 0 or walked["last_tick"] == reported["last_tick"])}
        else:
            for j, m in enumerate(models):
                st = int(ps_status[j, k])
                out["passive"][m][o["intent_id"]] = {
                    "filled": float(ps_filled[j, k]),
                    "first_fill_ns": int(ps_first[j, k]) or None,
                    "status": {3: "filled", 4: "cancelled", 2: "rejected"}.get(st, f"status {st}")}
    return out


def run_hbt(work: Path, python: str | None) -> dict:
    """The hftbacktest half here when hftbacktest imports, else in ``python``."""
    if python is None:
        out = hbt_side(work)
    else:
        proc = subprocess.run([python, __file__, "hbt-side", str(work)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{python} {__file__} hbt-side failed: {proc.stderr.strip()[-2000:]}")
        out = json.loads((work / "hbt-results.json").read_text())
    (work / "hbt-results.json").write_text(json.dumps(out))
    return out


def hbt_python(given: str | None) -> str | None:
    """None: hftbacktest imports here. Else the interpreter to run its half in; raises when none has it."""
    if given is None:
        try:
            import hftbacktest  # noqa: F401
            return None
        except ImportError:
            given = os.environ.get("EXECLAB_HFTBACKTEST_PYTHON")
    if given is None:
        raise ModuleNotFoundError("hftbacktest is not installed here (pip install hftbacktest==2.4.4, "
                                  "or give --hftbacktest-python / $EXECLAB_HFTBACKTEST_PYTHON)")
    return given


# -- the comparison --------------------------------------------------------------------------------

def frame_index(frames: list[tuple[int, bytes]]) -> dict[int, list[dict]]:
    """Receive time (the latest seen, as both sides stamp) -> the trades and depth diffs there."""
    out: dict[int, list[dict]] = {}
    seen = 0
    for ts, raw in frames:
        seen = max(seen, ts)
        if b'"trade"' in raw or b"depthUpdate" in raw:
            d = json.loads(raw)
            out.setdefault(seen, []).append(d.get("data", d))
    return out


def at_our_price(index: dict[int, list[dict]], times: list[int], o: dict, after_ns: int, until_ns: int):
    """The prints at ``o``'s limit against it (``("trade", qty)``) and the depth diffs that
    report its level (``("level", qty)``), strictly after ``after_ns`` up to ``until_ns``."""
    sgn = 1 if o["side"] == "buy" else -1
    px = o["limit_price"]
    key = "b" if sgn > 0 else "a"
    for ts in times[bisect.bisect_right(times, after_ns):bisect.bisect_right(times, until_ns)]:
        for d in index[ts]:
            if d.get("e") == "trade":
                if (d["m"] if sgn > 0 else not d["m"]) and abs(float(d["p"]) - px) < 1e-9:
                    yield "trade", float(d["q"])
            else:
                for p, q in d[key]:
                    if abs(float(p) - px) < 1e-9:
                        yield "level", float(q)


def level_fell_below_front(events, front: float) -> bool:
    """Whether the level went below the quantity our conservative model keeps ahead of us
    (placement level less the prints at our price): there hftbacktest's risk-adverse model
    takes the level as the new quantity ahead, ours does not."""
    for kind, q in events:
        if kind == "trade":
            front -= q
        elif q < front - 1e-12:
            return True
    return False


def hbt_front_went_negative(events, front: float, model: str) -> bool:
    """Replays hftbacktest's ProbQueueModel on the level's history: whether its quantity ahead
    went below zero on a depth decrease (it is not clamped there, and a later decrease with a
    negative front moves it back up, since f(front) < 0); ours stops at zero."""
    kind_, n = MODELS[model]

    def f(x: float) -> float:
        return math.log1p(x) if kind_ == "log_prob" else x ** n  # as Rust's powf for whole n

    prev, cum = front, 0.0
    for kind, q in events:
        if kind == "trade":
            front -= q
            cum += q
            if front < 0:
                return False  # a print reached us first: filled, not a depth quirk
            continue
        chg = prev - q - cum
        cum = 0.0
        if chg < 0:
            front = min(front, q)
        else:
            back = prev - front
            den = f(back) + f(front)
            prob = 1.0 if den == 0 else f(back) / den
            front = min(front - (1 - prob) * chg + min(back - prob * chg, 0.0), q)
            if front < -1e-12:
                return True
        prev = q
    return False


def hbt_fill_cause(o: dict, ts: int | None, index: dict[int, list[dict]]) -> str:
    """What filled hftbacktest's order at ``ts``: a print at our price (the queue), a print
    through it, or a depth diff that moved the opposite side onto our price (the book crossed)."""
    if ts is None:
        return "none"
    sgn = 1 if o["side"] == "buy" else -1
    for d in index.get(ts, []):
        if d.get("e") == "trade" and (d["m"] if sgn > 0 else not d["m"]):
            through = (o["limit_price"] - float(d["p"])) * sgn
            return "print through" if through > 1e-9 else "print at our price"
    return "book crossed" if any(d.get("e") == "depthUpdate" for d in index.get(ts, [])) else "unknown"


def bps(a: float, b: float) -> float:
    return (a - b) / b * 1e4


def compare(rows: list[dict], ours: dict[str, list[dict]], hbt: dict, frames: list[tuple[int, bytes]],
            lot: float) -> dict:
    """Order by order, then the aggregates; each disagreement with its cause."""
    models = list(ours)
    per_model = {m: our_orders(ours[m]) for m in models}
    first = per_model[models[0]]
    index = frame_index(frames)
    times = sorted(index)
    tol = lot / 2
    takers, passive = [], {m: [] for m in models}
    taken: dict[str, set[float]] = {"buy": set(), "sell": set()}  # prices our earlier takers took from
    for row in rows:
        iid = row["intent_id"]
        o = first[iid]
        if "refused" in o:
            raise RuntimeError(f"intent {iid} refused by our session ({o['refused']}); the comparison needs every order sent")
        if row["style"] == "take":
            fills = o["fills"]
            q = sum(f["qty"] for f in fills)
            ours_vwap = sum(f["price"] * f["qty"] for f in fills) / q if q > 0 else None
            h = hbt["takers"][iid]
            hv = h["value"] / h["filled"] if h["filled"] > 0 else None
            if not h["walk_matches_fill"]:
                raise RuntimeError(f"taker {iid}: the walk of hftbacktest's book does not end where its fill did ({h})")
            same_in_every_run = all(per_model[m][iid]["fills"] == fills for m in models)
            arrival = o["arrival"] or {}
            touch = arrival.get("arrival_ask") if o["side"] == "buy" else arrival.get("arrival_bid")
            takers.append({
                "intent_id": iid, "side": o["side"], "qty": o["qty"], "ts_ns": o["ts_ns"],
                "ours_filled": q, "hbt_filled": h["filled"], "ours_vwap": ours_vwap, "hbt_vwap": hv,
                "levels": len(fills), "ours_end": (o["end"] or {}).get("reason"),
                "vwap_diff_bps": None if ours_vwap is None or hv is None else bps(ours_vwap, hv) * (1 if o["side"] == "buy" else -1),
                "qty_agree": abs(q - h["filled"]) <= tol,
                "cost_vs_touch_bps": None if ours_vwap is None or not touch else abs(bps(ours_vwap, touch)),
                "same_in_every_run": same_in_every_run})
            t = takers[-1]
            t["agree"] = t["qty_agree"] and (t["vwap_diff_bps"] is None or abs(t["vwap_diff_bps"]) < 1e-6)
            # ours walks from the touch to its last fill: a level in that range that an earlier
            # taker of ours took from may still count as taken (skipped or partly used)
            if fills:
                sgn = 1 if o["side"] == "buy" else -1
                far = max(f["price"] * sgn for f in fills)
                near = min([f["price"] * sgn for f in fills] + ([touch * sgn] if touch else []))
                t["met_own_consumption"] = any(near - 1e-9 <= p * sgn <= far + 1e-9 for p in taken[o["side"]])
            else:
                t["met_own_consumption"] = False
            t["cause"] = None if t["agree"] else taker_cause(t)
            taken[o["side"]].update(f["price"] for f in fills)
        else:
            for m in models:
                om = per_model[m][iid]
                q = sum(f["qty"] for f in om["fills"])
                h = hbt["passive"][m][iid]
                # a fill below half a lot is a rounding residue of the queue arithmetic, not a
                # fill the exchange could make (hftbacktest fills whole lots): counted apart
                real = [f for f in om["fills"] if f["qty"] >= tol]
                ours_first = real[0]["ts_ns"] if real else None
                rejected = (om["end"] or {}).get("reason") == "post_only_would_cross"
                rec = {
                    "intent_id": iid, "model": m, "side": om["side"], "qty": om["qty"], "limit": om["limit_price"],
                    "placement": (om["arrival"] or {}).get("placement"), "queue_ahead": (om["arrival"] or {}).get("queue_ahead"),
                    "ours_filled": q, "hbt_filled": h["filled"], "ours_first_ns": ours_first,
                    "hbt_first_ns": h["first_fill_ns"], "ours_how": sorted({f["how"] for f in om["fills"]}),
                    "ours_dust_fills": len(om["fills"]) - len(real), "ours_rejected": rejected, "hbt_rejected": h["status"] == "rejected",
                    "hbt_cause": hbt_fill_cause(om, h["first_fill_ns"], index)}
                rec["filled_agree"] = (q > tol) == (h["filled"] > tol)
                rec["qty_agree"] = abs(q - h["filled"]) <= tol
                rec["time_agree"] = rec["filled_agree"] and ours_first == h["first_fill_ns"]
                rec["agree"] = rec["filled_agree"] and rec["qty_agree"] and (q <= tol or rec["time_agree"])
                if not rec["agree"] and om["arrival"] and rec["queue_ahead"] is not None:
                    end = max(ours_first or 0, h["first_fill_ns"] or 0) or om["arrival"]["ts_ns"] + int(om["ttl_s"] * NS)
                    history = list(at_our_price(index, times, om, om["arrival"]["ts_ns"], end))
                    rec["level_below_front"] = level_fell_below_front(history, rec["queue_ahead"])
                    rec["hbt_front_negative"] = m != "conservative" and hbt_front_went_negative(history, rec["queue_ahead"], m)
                rec["cause"] = None if rec["agree"] else passive_cause(rec)
                passive[m].append(rec)
    return {"takers": takers, "passive": passive, "summary": summarise(takers, passive)}


def taker_cause(t: dict) -> str:
    """The kind of a taker disagreement. Both walk the same book at the same instant; what
    differs is memory: ours keeps what our earlier takers took from a level until the book
    shows the level replenished, hftbacktest matches every order against the book as
    published (its own fills never change the depth)."""
    if t["met_own_consumption"] and t["qty_agree"] and (t["vwap_diff_bps"] or 0) > 0:
        return "ours remembers what our earlier takers took from a level; hftbacktest does not"
    return "other"


def passive_cause(r: dict) -> str:
    """The kind of a passive disagreement, from what filled each side (docs/execution.md)."""
    if r["ours_rejected"] != r["hbt_rejected"]:
        return "post-only check: ours against the book ticker, hftbacktest against the depth book"
    ours = r["ours_filled"] > 0
    hbt = r["hbt_filled"] > 0
    if hbt and r["hbt_cause"] == "book crossed" and (not ours or r["hbt_first_ns"] < (r["ours_first_ns"] or 1 << 62)):
        return "hftbacktest fills when the depth book crosses our price; ours needs a print"
    if ours and hbt and r["ours_first_ns"] == r["hbt_first_ns"]:
        if "trade_through" in r["ours_how"] and r["hbt_filled"] > r["ours_filled"]:
            return "a print through our price fills all of it in hftbacktest, the print's size in ours"
        return "same first fill, different quantity (queue arithmetic)"
    if r["model"] == "conservative" and r.get("level_below_front"):
        return ("the level shrank below the quantity ahead: hftbacktest's risk-adverse model "
                "caps it there, our conservative one keeps it")
    if r.get("hbt_front_negative"):
        return ("hftbacktest's quantity ahead went below zero on a depth decrease and "
                "came back up; ours stops at zero")
    if hbt and (not ours or r["hbt_first_ns"] < r["ours_first_ns"]):
        return f"hftbacktest filled earlier ({r['hbt_cause']}), other queue arithmetic"
    if ours and (not hbt or r["ours_first_ns"] < r["hbt_first_ns"]):
        return "ours filled earlier, other queue arithmetic"
    return "other"


def summarise(takers: list[dict], passive: dict[str, list[dict]]) -> dict:
    out: dict = {}
    diffs = [abs(t["vwap_diff_bps"]) for t in takers if t["vwap_diff_bps"] is not None]
    out["takers"] = {
        "orders": len(takers),
        "walked": sum(1 for t in takers if t["levels"] > 1),
        "agree": sum(1 for t in takers if t["agree"]),
        "qty_agree": sum(1 for t in takers if t["qty_agree"]),
        "vwap_mean_abs_bps": sum(diffs) / len(diffs) if diffs else None,
        "vwap_max_abs_bps": max(diffs) if diffs else None,
        "same_in_every_run": all(t["same_in_every_run"] for t in takers),
        "met_own_consumption": sum(1 for t in takers if t["met_own_consumption"]),
        "causes": {c: sum(1 for t in takers if t["cause"] == c) for c in {t["cause"] for t in takers} if c},
        "fill_ratio_ours": sum(t["ours_filled"] for t in takers) / max(sum(t["qty"] for t in takers), 1e-300),
        "fill_ratio_hbt": sum(t["hbt_filled"] for t in takers) / max(sum(t["qty"] for t in takers), 1e-300),
    }
    out["passive"] = {}
    for m, recs in passive.items():
        both = [r for r in recs if r["ours_filled"] > 0 and r["hbt_filled"] > 0]
        dt = [abs(r["ours_first_ns"] - r["hbt_first_ns"]) / 1e6 for r in both]
        causes: dict[str, int] = {}
        for r in recs:
            if r["cause"]:
                causes[r["cause"]] = causes.get(r["cause"], 0) + 1
        total = sum(r["qty"] for r in recs) or 1e-300
        out["passive"][m] = {
            "orders": len(recs),
            "agree": sum(1 for r in recs if r["agree"]),
            "filled_agree": sum(1 for r in recs if r["filled_agree"]),
            "filled_ours": sum(1 for r in recs if r["ours_filled"] > 0),
            "filled_hbt": sum(1 for r in recs if r["hbt_filled"] > 0),
            "fill_ratio_ours": sum(r["ours_filled"] for r in recs) / total,
            "fill_ratio_hbt": sum(r["hbt_filled"] for r in recs) / total,
            "both_filled": len(both),
            "same_first_fill_time": sum(1 for r in both if r["ours_first_ns"] == r["hbt_first_ns"]),
            "first_fill_dt_mean_ms": sum(dt) / len(dt) if dt else None,
            "first_fill_dt_max_ms": max(dt) if dt else None,
            "ours_dust_fills": sum(r["ours_dust_fills"] for r in recs),
            "qty_mean_abs_diff": sum(abs(r["ours_filled"] - r["hbt_filled"]) for r in recs) / max(len(recs), 1),
            "causes": causes,
        }
    return out


def agreement(frames_path: Path, work: Path, seconds: float | None = None, models: list[str] | None = None,
              python: str | None = None, every_s: float = EVERY_S) -> dict:
    """The whole comparison on one recording; ``work`` keeps every input and output."""
    models = models or list(MODELS)
    frames_path, work = frames_path.resolve(), work.resolve()  # the session file lives in work
    work.mkdir(parents=True, exist_ok=True)
    frames = read_frames(frames_path, seconds)
    meta = describe(frames)
    meta.update(instrument(meta["market"], meta["symbol"]))
    src = frames_path if seconds is None else write_frames(frames, work / "input.frames.gz")
    rows = schedule(meta["start_ns"], meta["end_ns"], every_s)
    t0 = time.perf_counter()
    ours = run_ours(src, meta, rows, work, models)
    ours_s = time.perf_counter() - t0
    sent = our_orders(ours[models[0]])
    orders = [sent[r["intent_id"]] for r in rows if "refused" not in sent[r["intent_id"]]]
    (work / "hbt-orders.json").write_text(json.dumps({
        "frames": str(src), "tick": meta["tick"], "lot": meta["lot"], "latency_ms": LATENCY_MS,
        "models": models, "orders": orders}))
    hbt = run_hbt(work, python)
    res = compare(rows, ours, hbt, frames, meta["lot"])
    res["meta"] = {**meta, "recording": frames_path.name, "seconds": seconds, "ours_s": round(ours_s, 2),
                   "hbt_convert_s": hbt["convert_s"], "hbt_run_s": hbt["run_s"], "hbt_events": hbt["events"],
                   "hbt_left_open": hbt["left_open"]}
    return res


def print_report(res: dict) -> None:
    m, s = res["meta"], res["summary"]
    t = s["takers"]
    print(f"{m['recording']} ({m['symbol']} {m['market']}, tick {m['tick']:g}, lot {m['lot']:g}); "
          f"ours {m['ours_s']} s, hftbacktest convert {m['hbt_convert_s']} s + run {m['hbt_run_s']} s")
    vm = "-" if t["vwap_mean_abs_bps"] is None else f"{t['vwap_mean_abs_bps']:.4f}"
    vx = "-" if t["vwap_max_abs_bps"] is None else f"{t['vwap_max_abs_bps']:.4f}"
    print(f"  takers: {t['agree']}/{t['orders']} agree ({t['walked']} walked the book), qty {t['qty_agree']}/{t['orders']}, "
          f"VWAP |diff| mean {vm} max {vx} bps, fill ratio ours {t['fill_ratio_ours']:.4f} hbt {t['fill_ratio_hbt']:.4f}")
    for cause, n in sorted(t["causes"].items(), key=lambda kv: -kv[1]):
        print(f"      {n:3d}  {cause}")
    for name, p in s["passive"].items():
        dm = "-" if p["first_fill_dt_mean_ms"] is None else f"{p['first_fill_dt_mean_ms']:.1f}"
        print(f"  passive {name:12s}: {p['agree']}/{p['orders']} agree, filled-or-not {p['filled_agree']}/{p['orders']}, "
              f"filled ours {p['filled_ours']} hbt {p['filled_hbt']}, fill ratio ours {p['fill_ratio_ours']:.3f} "
              f"hbt {p['fill_ratio_hbt']:.3f}, same first fill time {p['same_first_fill_time']}/{p['both_filled']} "
              f"(mean |dt| {dm} ms)")
        for cause, n in sorted(p["causes"].items(), key=lambda kv: -kv[1]):
            print(f"      {n:3d}  {cause}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hbt-side"]:
        work = Path(argv[1])
        (work / "hbt-results.json").write_text(json.dumps(hbt_side(work)))
        sys.stdout.flush()
        os._exit(0)  # hftbacktest's runtime can linger at exit; the results are written
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("frames", type=Path, nargs="+", help="recordings with depth (data/*.frames.gz)")
    ap.add_argument("--seconds", type=float, default=None, help="only the first S seconds of each")
    ap.add_argument("--every", type=float, default=EVERY_S, help="seconds between two takers (and two passive orders)")
    ap.add_argument("--models", default=",".join(MODELS), help="queue models to compare")
    ap.add_argument("--work", type=Path, default=None, help="keep inputs, runs and results here")
    ap.add_argument("--json", type=Path, default=None, help="write every order's comparison here")
    ap.add_argument("--hftbacktest-python", default=None, help="an interpreter that has hftbacktest")
    args = ap.parse_args(argv)
    for f in args.frames:
        if not f.is_file():
            print(f"{f}: no such file; expected a frames recording with depth", file=sys.stderr)
            return 2
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        print(f"--models: unknown {', '.join(unknown)}; expected some of {', '.join(MODELS)}", file=sys.stderr)
        return 2
    try:
        python = hbt_python(args.hftbacktest_python)
    except ModuleNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    base = args.work or Path(tempfile.mkdtemp(prefix="hbt-agreement-"))
    results = []
    for f in args.frames:
        try:
            res = agreement(f, base / f.name.split(".")[0], args.seconds, models, python, args.every)
        except (ValueError, RuntimeError) as exc:
            print(f"{f}: {exc}", file=sys.stderr)
            return 2
        print_report(res)
        results.append(res)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
