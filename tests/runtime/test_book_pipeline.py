"""The L2 book inside the pipeline, on the shipped recordings (all four carry depth frames).

- Both replay paths write the same log byte for byte with depth on (the fast path processes
  every depth row in full).
- Every taker fill was available at arrival: the book is rebuilt here from the raw frames by a
  small diff-applier of the test's own (plain json, Binance's documented rules), independent of
  the engine and of ``framework.market``; each fill's price and size must have been resting at
  that moment, less our earlier consumption (which lasts at a level until the book shows more
  quantity there, or the level empties), and better levels must have been used up first.
- Every passive fill is justified under its queue model, against the same book and the raw
  prints and book tickers: the acting model's fill records one by one by market evidence
  (``_justify_acting_fills``), and every model's fills, acting and shadows, by a replay of the
  queue models written here from docs/execution.md ("Queue models"), not imported
  (``_replay_queue_models``), which must reproduce each order's ``queue_models`` and the acting
  model's fill records. Schedules: one order at a time under ``quote_through`` on the four
  recordings; probabilistic models acting; three orders at once at one price (our own orders
  ahead of us).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from itertools import takewhile
from pathlib import Path

import pytest
import yaml

from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import Runtime, run_events
from framework.runtime.sources import replay_events
from framework.spec.session import load_session
from tests.support import REPO

# (file, symbol, tick size, notional of one taker in USD: about 1 BTC / 20 ETH)
RECORDINGS = [
    ("binance-spot-btcusdt-20240808.frames.gz", "BTCUSDT", 0.01, 62_000.0),
    ("binance-spot-ethusdt-20240808.frames.gz", "ETHUSDT", 0.01, 54_000.0),
    ("binance-usdm-btcusdt-20240808.frames.gz", "BTCUSDT", 0.1, 62_000.0),
    ("binance-usdm-ethusdt-20240808.frames.gz", "ETHUSDT", 0.01, 54_000.0),
]
TOL = 1e-9
# The first minutes of each recording by default (both paths, four recordings); the whole of them
# with EXECLAB_BOOK_FULL=1.
SECONDS = None if os.environ.get("EXECLAB_BOOK_FULL") else 240


def _frames(path: Path) -> list[tuple[int, dict]]:
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            stamp, _, raw = line.partition(" ")
            if SECONDS is not None and out and int(stamp) > out[0][0] + SECONDS * 10**9:
                break
            out.append((int(stamp), json.loads(raw)))
    return out


def _intents(path: Path, start_ns: int, end_ns: int, notional: float) -> Path:
    """Bursts of three takers 40 ms apart every 4 s, alternating side: the second and third of a
    burst meet what the first consumed."""
    rows = []
    t, k = start_ns + 20 * 10**9, 0
    while t < end_ns - 10**9:
        side = "buy" if k % 2 == 0 else "sell"
        for i in range(3):
            rows.append({"ts_ns": t + i * 40_000_000, "side": side, "notional_usd": notional * (1 + 0.5 * i),
                         "style": "take"})
        t += 4 * 10**9
        k += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _session(tmp: Path, name: str, symbol: str, tick: float, notional: float, frames):
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    intents = _intents(tmp / f"{name}.intents.jsonl", frames[0][0], frames[-1][0], notional)
    data.update(
        symbols=[symbol],
        source={"kind": "replay", "path": str(REPO / "data" / name), "seed": 7},
        market={"depth": True},
        intents={"generator": "file", "file": {"path": str(intents)}},
        risk={**data["risk"], "max_order_notional_usd": 1e7, "max_position_notional_usd": 1e9,
              "max_orders": 1000, "loss_limit_usd": 1e9, "max_drawdown_usd": 1e9},
    )
    data["execution"] = {**data["execution"], "tick_size": tick, "taker": {"impact": "walk"}}
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_session(cfg)


def _run(session, end_ns: int, fast: bool) -> tuple[list[dict], Runtime]:
    records: list[dict] = []
    runtime = Runtime(session, records.append)
    events, _ = replay_events(session)
    events = takewhile(lambda ev: ev.ts_ns <= end_ns, events)
    if fast:
        BlockRunner(runtime).run(events)
    else:
        run_events(runtime, events)
    records.append({"summary": runtime.finish()})
    return records, runtime


@pytest.fixture(scope="module", params=RECORDINGS, ids=[r[0].split(".")[0] for r in RECORDINGS])
def recording(request, tmp_path_factory):
    name, symbol, tick, notional = request.param
    frames = _frames(REPO / "data" / name)
    session = _session(tmp_path_factory.mktemp("book"), name, symbol, tick, notional, frames)
    scalar, _ = _run(session, frames[-1][0], fast=False)
    fast, runtime = _run(session, frames[-1][0], fast=True)
    return {"frames": frames, "scalar": scalar, "fast": fast, "runtime": runtime, "symbol": symbol}


def test_both_replay_paths_write_the_same_log_with_depth(recording):
    scalar, fast = recording["scalar"], recording["fast"]
    assert len(scalar) == len(fast)
    for a, b in zip(scalar, fast, strict=True):
        assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    sym = recording["symbol"]
    book = scalar[-1]["summary"]["symbols"][sym]["book"]
    assert book["counters"]["gaps"] == 0 and book["counters"]["snapshots_used"] == 1
    assert book["state"] == "synced"
    sample = next(r for r in reversed(scalar) if r.get("kind") == "metrics")
    assert sample["values"]["book_in_sync"] == 1.0
    assert 0.0 < sample["values"]["book_bid_depth_5bps"] and -1.0 <= sample["values"]["book_imbalance_10"] <= 1.0


class _Book:
    """The test's own book: Binance's documented rules, nothing from framework.market."""

    def __init__(self) -> None:
        self.side = {"b": {}, "a": {}}
        self.last: int | None = None
        self.diffs: list[dict] = []
        self.bridge: tuple[int, bool] | None = None  # (snapshot id, USD-M) until a diff bridges it

    def _levels(self, d: dict) -> None:
        for key in ("b", "a"):
            for p, q in d[key]:
                p, q = float(p), float(q)
                if q == 0.0:
                    self.side[key].pop(p, None)
                else:
                    self.side[key][p] = q

    def diff(self, d: dict) -> None:
        self.diffs.append(d)
        if self.bridge is not None:  # the first diff after a snapshot newer than every diff
            L, usdm = self.bridge
            if (d["u"] < L) if usdm else (d["u"] <= L):
                return
            assert (d["U"] <= L <= d["u"]) if usdm else (d["U"] <= L + 1 <= d["u"]), d
            self.bridge = None
            self._levels(d)
            self.last = d["u"]
            return
        if self.last is not None and d["u"] <= self.last:
            return
        if self.last is not None:  # the recordings have no gap: every diff chains
            assert (d["pu"] == self.last) if "pu" in d else (d["U"] <= self.last + 1 <= d["u"]), d
        self._levels(d)
        self.last = d["u"]

    def apply(self, data: dict) -> bool:
        """A snapshot or a diff-depth payload applied; False for any other frame."""
        if "lastUpdateId" in data:
            self.snapshot(data)
        elif data.get("e") == "depthUpdate":
            self.diff(data)
        else:
            return False
        return True

    def snapshot(self, s: dict) -> None:
        L = s["lastUpdateId"]
        self.side = {"b": {float(p): float(q) for p, q in s["bids"]}, "a": {float(p): float(q) for p, q in s["asks"]}}
        usdm = "E" in s
        newer = [d for d in self.diffs if (d["u"] >= L if usdm else d["u"] > L)]
        if newer:
            first = newer[0]
            assert (first["U"] <= L <= first["u"]) if usdm else (first["U"] <= L + 1 <= first["u"])
            self._levels(first)  # the bridging diff; the rest chain on it
            self.last = first["u"]
        else:
            self.last, self.bridge = L, (L, usdm)
        diffs, self.diffs = self.diffs, []
        for d in newer[1:]:
            self.diff(d)
        self.diffs = diffs


def test_every_taker_fill_was_available_in_an_independently_rebuilt_book(recording):
    records, frames = recording["scalar"], recording["frames"]
    orders = {r["order_id"]: r for r in records if r.get("kind") == "order"}
    acks = {r["order_id"]: r["ts_ns"] for r in records if r.get("kind") == "ack"}
    fills: dict[str, list[dict]] = {}
    for r in records:
        if r.get("kind") == "fill" and r["liquidity"] == "taker":
            assert r["model"] == "book"  # depth on: no taker is judged on the top of book
            fills.setdefault(r["order_id"], []).append(r)
    takers = sorted((acks[o], o) for o, r in orders.items() if r["style"] == "take" and o in acks)
    assert len(fills) >= 20  # the bursts went through the decision and filled

    book = _Book()
    consumed: dict[tuple[str, float], list[float]] = {}  # (side, price) -> [taken, book qty then]
    i, seen_ns = 0, 0
    checked = deeper = 0
    for arrival, oid in takers:
        while i < len(frames):  # every frame the pipeline applied before this arrival
            seen_ns = max(seen_ns, frames[i][0])  # a late frame counts at the latest time seen
            if seen_ns > arrival:
                break
            msg = frames[i][1]
            if not book.apply(msg.get("data", msg)):
                i += 1
                continue
            for (side, px), used in list(consumed.items()):
                now = book.side[side].get(px, 0.0)
                if now <= 0.0 or now > used[1]:
                    del consumed[(side, px)]
                else:
                    used[1] = now
            i += 1
        side = "a" if orders[oid]["side"] == "buy" else "b"
        best_first = sorted(book.side[side], reverse=side == "b")
        for f in fills.get(oid, []):
            px, qty = f["price"], f["qty"]
            shown = book.side[side].get(px, 0.0)
            used = consumed.get((side, px), [0.0, shown])
            assert qty <= shown - used[0] + TOL, (oid, px, qty, shown, used)
            for better in best_first:  # price priority: better levels were used up first
                if better == px:
                    break
                left = book.side[side][better] - consumed.get((side, better), [0.0])[0]
                assert left <= TOL, (oid, px, better, left)
            consumed[(side, px)] = [used[0] + qty, shown]
            checked += 1
            deeper += px != best_first[0]
    assert checked >= 20 and deeper > 0  # walks went past the touch
    # our consumption lasted: a later taker of a burst met a level an earlier one had thinned
    assert any(r["reason"] == "ioc_remainder" or r["n_fills"] > 1 for r in records if r.get("kind") == "order_result")


def test_book_health_is_logged_and_read_by_the_health_machine(tmp_path):
    """A sequence gap and a stale book on synthetic events: feed records, book metrics, and the
    health machine's book_trouble (which zeroes its score)."""
    from framework.market.depth import DepthUpdate
    from framework.market.events import Quote

    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["market"] = {"depth": True, "stale_book_ms": 1000}
    data["intents"] = {"generator": "none"}
    data["source"]["path"] = str(REPO / "data" / RECORDINGS[0][0])
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    session = load_session(cfg)
    records: list[dict] = []
    rt = Runtime(session, records.append)
    p = rt.pipelines["BTCUSDT"]
    health = next(m for m in p.machines if m.spec.name == "health")
    t0, ms = 1_723_161_254_000_000_000, 1_000_000

    def q(t):
        return Quote(t, "BTCUSDT", 100.0, 1.0, 100.01, 1.0, t)

    def d(t, first, last, bid_qty=1.0):
        return DepthUpdate(t, "BTCUSDT", first, last, -1, t // ms, 0, ((100.0, bid_qty), (99.9, 2.0)),
                           ((100.01, 1.0), (100.05, 3.0)))

    rt.feed(q(t0))
    assert p.metrics.values["book_in_sync"] == 0.0 and health.out["book_trouble"]  # no depth yet
    rt.feed(d(t0 + 10 * ms, 1, 5))
    rt.feed(q(t0 + 20 * ms))
    assert p.metrics.values["book_in_sync"] == 1.0 and not health.out["book_trouble"]
    assert p.metrics.values["book_bid_depth_5bps"] == 1.0  # 99.9 is 5.5 bps below the mid
    rt.feed(d(t0 + 100 * ms, 9, 12))  # 6..8 lost
    rt.feed(q(t0 + 1500 * ms))  # no depth for 1.4 s: stale
    assert p.metrics.values["book_age_ms"] == 1400.0 and health.out["book_trouble"]
    assert health.out["score"] == 0
    rt.feed(d(t0 + 1600 * ms, 13, 13))
    assert not health.out["book_trouble"] and p.metrics.values["book_gaps"] == 1.0
    events = [(r["event"], r["detail"]) for r in records if r.get("kind") == "feed"]
    assert [e for e, _ in events] == ["book_sync", "book_gap", "book_sync", "book_stale"]
    assert "does not follow 5" in events[1][1]
    summary = rt.finish()
    assert summary["symbols"]["BTCUSDT"]["book"]["incidents"] == {"book_gap": 1, "book_stale": 1, "book_sync": 2}


def test_depth_on_a_recording_without_depth_is_refused(tmp_path):
    import subprocess
    import sys

    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["market"] = {"depth": True}
    data["source"] = {"kind": "replay", "path": str(REPO / "data" / "BTCUSDT-trades-2021-05-19.excerpt.csv")}
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "run", str(cfg), "--no-progress",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "market.depth is on but this recording carries no depth frames" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_execlab_metrics_reads_the_book_when_the_recording_carries_depth():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "framework.cli", "metrics", str(REPO / "data" / RECORDINGS[1][0]),
                           "--describe", "--json"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    per = out["symbols"]["ETHUSDT"]
    assert per["book_in_sync"]["p1"] == 1.0 and per["book_gaps"]["max"] == 0.0
    assert per["book_bid_depth_5bps"]["n"] > 3000 and per["book_age_ms"]["max"] < 1000


# -- passive orders with depth: queue models driven by the book ---------------------------------

MODELS = ("conservative", "linear", "power2", "power3", "log", "quote_through")


def _passive_intents(path: Path, start_ns: int, end_ns: int) -> Path:
    """A passive order every 2 s, resting 1.5 s (never two at once), alternating side, joining
    the touch or one or two ticks behind it."""
    rows, t, k = [], start_ns + 20 * 10**9, 0
    while t < end_ns - 2 * 10**9:
        rows.append({"ts_ns": t, "side": "buy" if k % 2 == 0 else "sell", "notional_usd": 2_000.0,
                     "style": "passive", "limit_offset_ticks": k % 3, "ttl_s": 1.5})
        t += 2 * 10**9
        k += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _overlapping_intents(path: Path, start_ns: int, end_ns: int) -> Path:
    """Every 2 s three passive orders 100 ms apart on the same side and at the same offset from
    the touch (so mostly at the same price), each resting 1.5 s: our later orders queue behind
    our earlier ones."""
    rows, t, k = [], start_ns + 20 * 10**9, 0
    while t < end_ns - 2 * 10**9:
        for i in range(3):
            rows.append({"ts_ns": t + i * 100_000_000, "side": "buy" if k % 2 == 0 else "sell",
                         "notional_usd": 2_000.0, "style": "passive", "limit_offset_ticks": k % 3, "ttl_s": 1.5})
        t += 2 * 10**9
        k += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _passive_session(tmp: Path, name: str, symbol: str, tick: float, frames, acting: str, schedule=_passive_intents):
    _session(tmp, name, symbol, tick, 1_000.0, frames)
    cfg = tmp / f"{name}.yaml"  # written by _session
    data = yaml.safe_load(cfg.read_text())
    intents = schedule(tmp / f"{name}.passive.jsonl", frames[0][0], frames[-1][0])
    data["intents"] = {"generator": "file", "file": {"path": str(intents)}}
    data["execution"] = {**data["execution"], "passive": {
        "ttl_s": 1.5, "queue": {"model": acting, "shadows": [m for m in MODELS if m != acting]}}}
    cfg = tmp / f"{name}.{acting}.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_session(cfg)


@pytest.mark.parametrize("acting", MODELS)
def test_passive_orders_under_each_queue_model_write_the_same_log_on_both_paths(acting, tmp_path):
    name, symbol, tick, _ = RECORDINGS[0]
    frames = _frames(REPO / "data" / name)
    end = frames[-1][0]
    session = _passive_session(tmp_path, name, symbol, tick, frames, acting)
    scalar, _ = _run(session, end, fast=False)
    fast, _ = _run(session, end, fast=True)
    assert len(scalar) == len(fast)
    for a, b in zip(scalar, fast, strict=True):
        assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    results = [r for r in scalar if r.get("kind") == "order_result"]
    assert results and all([m["model"] for m in r["queue_models"]][0] == acting for r in results)
    assert any(r.get("kind") == "fill" and r["liquidity"] == "maker" for r in scalar)


def _market(frames):
    """Pipeline-time trades ``(ts, price, qty, aggressor)`` and quotes ``(ts, bid, ask)`` of the
    raw frames (a late frame counts at the latest time seen, as the taker check does)."""
    trades, quotes, seen = [], [], 0
    for stamp, msg in frames:
        seen = max(seen, stamp)
        data = msg.get("data", msg)
        e = data.get("e")
        if e in ("trade", "aggTrade"):
            trades.append((seen, float(data["p"]), float(data["q"]), "sell" if data["m"] else "buy"))
        elif e == "bookTicker" or (e is None and "b" in data and "a" in data and "lastUpdateId" not in data):
            quotes.append((seen, float(data["b"]), float(data["a"])))
    return trades, quotes


@pytest.fixture(scope="module", params=RECORDINGS, ids=[r[0].split(".")[0] for r in RECORDINGS])
def passive_recording(request, tmp_path_factory):
    name, symbol, tick, _ = request.param
    frames = _frames(REPO / "data" / name)
    session = _passive_session(tmp_path_factory.mktemp("passive"), name, symbol, tick, frames, "quote_through")
    records, _ = _run(session, frames[-1][0], fast=False)
    return {"frames": frames, "records": records, "tick": tick}


def test_every_passive_fill_is_justified_in_an_independently_rebuilt_book(passive_recording):
    """The acting model is ``quote_through`` (the conservative model that also fills when the
    opposite side is quoted at or through our price), so all three kinds of passive fill occur;
    each fill is checked against the raw frames and the test's own book by
    ``_justify_acting_fills``. Fees/PnL are not checked here (the taker test and the engine's
    own tests cover them)."""
    records = passive_recording["records"]
    counts = _justify_acting_fills(records, passive_recording["frames"], passive_recording["tick"], "quote_through")
    fills = [r for r in records if r.get("kind") == "fill"]
    kinds = {k: n for k, n in counts.items() if "behind_own" not in k}
    assert sum(kinds.values()) == len(fills) >= 5 and kinds.get("quote_through", 0) > 0


# -- the queue models rebuilt from their documentation, driven by the test's own book ------------

# Built-in models as docs/execution.md ("Queue models") describes them: (kind, n, fills when the
# opposite side is quoted at or through our price). The built-in conservative models take no
# share of an unexplained decrease as ahead of us (cancel_ahead_fraction 0).
REFERENCE_MODELS = {
    "conservative": ("conservative", 0.0, False),
    "linear": ("power", 1.0, False),
    "power2": ("power", 2.0, False),
    "power3": ("power", 3.0, False),
    "log": ("log", 0.0, False),
    "quote_through": ("conservative", 0.0, True),
}


class _View:
    """One of our orders under one queue model: the quantity estimated ahead of it (``front``,
    None while unknown), the level last observed at its price, the prints at its price since
    that observation, and what it filled."""

    def __init__(self, order: dict, model: str):
        self.order, self.model = order, model
        self.kind, self.n, self.quote_through = REFERENCE_MODELS[model]
        self.front: float | None = None
        self.level: float | None = None
        self.traded = 0.0
        self.filled = 0.0
        self.fills: list[tuple[int, float, str]] = []  # (time, qty, how)

    @property
    def remaining(self) -> float:
        return self.order["qty"] - self.filled

    def place(self, level: float | None, own_ahead: float) -> None:
        """The conservative models count our own earlier orders at the price as ahead of us; the
        probabilistic ones do not (our orders are not in the market data)."""
        self.level = level
        if level is not None:
            self.front = level + own_ahead if self.kind == "conservative" else level

    def observe(self, now: float | None, own_ahead: float) -> None:
        """A new quantity at our price (None: the book cannot tell)."""
        before, traded = self.level, self.traded
        self.level, self.traded = now, 0.0
        if now is None:
            return  # nothing inferred across what was not seen
        if self.kind == "conservative":
            if self.front is None and now > 0.0:  # an empty level is, to it, one not seen
                self.front = now + own_ahead
            return
        if self.front is None:
            self.front = now
            return
        front = self.front
        if before is not None:
            d = before - now - traded  # the decrease the prints at our price do not explain
            if d > 0.0:
                back = max(before - front, 0.0)
                share = self._ahead_share(front, back)
                from_back = (1.0 - share) * d
                front -= share * d + max(from_back - back, 0.0)  # what the back cannot hold
        self.front = min(max(front, 0.0), now)

    def _ahead_share(self, front: float, back: float) -> float:
        if front <= 0.0:
            return 0.0
        if back <= 0.0:
            return 1.0
        f = (lambda x: math.log(1.0 + x)) if self.kind == "log" else (lambda x: x ** self.n)
        return f(front) / (f(front) + f(back))

    def fill(self, ts: int, qty: float, how: str) -> None:
        self.filled += qty
        if self.remaining <= 1e-12 * self.order["qty"]:
            self.filled = self.order["qty"]
        self.fills.append((ts, qty, how))


def _replay_queue_models(frames, orders: list[dict], tick: float, models=MODELS) -> dict[str, dict[str, _View]]:
    """Every model's view of every order, replayed over the raw frames in pipeline order with
    the test's own book. ``orders``: ``{id, side, price, qty, arrival, end}`` (arrival: the ack's
    time; end: its cancel or TTL). What is due at time X happens before the first frame later
    than X, in time order (an arrival at the very instant another order ends comes first); a
    view rests from its arrival to its end or until it is filled. The level is unknown until
    the book has its snapshot (the recordings have no gap, so it stays known afterwards).
    Written from the same documentation as the engine, it cannot catch a rule the two read
    alike and wrongly; ``_justify_acting_fills`` bounds every fill by the market alone."""
    def ticks(p: float) -> int:
        return round(p / tick)

    for o in orders:
        o["sgn"], o["px"] = (1 if o["side"] == "buy" else -1), ticks(o["price"])
    book, synced = _Book(), False
    views = {m: {} for m in models}
    live: dict[str, list[_View]] = {m: [] for m in models}  # in arrival order
    due = sorted(orders, key=lambda o: o["arrival"])
    k = 0

    def level(o: dict) -> float | None:
        if not synced:
            return None
        return book.side["b" if o["sgn"] > 0 else "a"].get(o["price"], 0.0)

    def own_ahead(v: _View) -> float:
        o = v.order
        return sum(x.remaining for x in live[v.model]
                   if x is not v and x.order["sgn"] == o["sgn"] and x.order["px"] == o["px"])

    def schedule(ts: int) -> None:
        nonlocal k
        while True:
            arrive = due[k]["arrival"] if k < len(due) else None
            ends = [(v.order["end"], m, v) for m in models for v in live[m]]
            end = min(ends, key=lambda e: e[0]) if ends else None
            if end is not None and end[0] < ts and (arrive is None or end[0] < arrive):
                live[end[1]].remove(end[2])
            elif arrive is not None and arrive < ts:
                o, lv = due[k], level(due[k])
                k += 1
                for m in models:
                    v = views[m][o["id"]] = _View(o, m)
                    v.place(lv, own_ahead(v))
                    live[m].append(v)
            else:
                return

    seen = 0
    for stamp, msg in frames:
        seen = max(seen, stamp)
        schedule(seen)
        data = msg.get("data", msg)
        e = data.get("e")
        if "lastUpdateId" in data or e == "depthUpdate":
            if "lastUpdateId" in data:
                book.snapshot(data)
                synced = True
            else:
                book.diff(data)
            for m in models:
                for v in live[m]:
                    now = level(v.order)
                    if now != v.level:
                        v.observe(now, own_ahead(v))
        elif e in ("trade", "aggTrade"):
            px, qty, aggressor = ticks(float(data["p"])), float(data["q"]), "sell" if data["m"] else "buy"
            for m in models:
                budget = qty  # one print is shared among our orders in arrival order, per model
                for v in list(live[m]):
                    o = v.order
                    if (aggressor == "sell") != (o["sgn"] > 0):
                        continue  # only an aggressor on the other side trades against us
                    if px == o["px"]:
                        v.traded += qty
                        if v.front is None:
                            continue
                        used = min(v.front, qty)
                        if qty - used <= qty * 1e-9:
                            used = qty  # less than a billionth of the print left: the estimate's float residue
                        v.front = max(v.front - used, 0.0)
                        avail, how = qty - used, "queue_consumed"
                    elif (o["px"] - px) * o["sgn"] > 0:
                        v.front, avail, how = 0.0, qty, "trade_through"
                    else:
                        continue
                    f = min(v.remaining, avail, budget)
                    if f > 0.0:
                        budget -= f
                        v.fill(seen, f, how)
                        if v.remaining <= 0.0:
                            live[m].remove(v)
        elif e == "bookTicker" or (e is None and "b" in data and "a" in data):
            bid, ask = ticks(float(data["b"])), ticks(float(data["a"]))
            for m in models:
                if not REFERENCE_MODELS[m][2]:
                    continue
                for v in list(live[m]):
                    o = v.order
                    if (ask <= o["px"]) if o["sgn"] > 0 else (bid >= o["px"]):
                        v.front = 0.0
                        v.fill(seen, v.remaining, "quote_through")
                        live[m].remove(v)
    return views


def _passive_orders(records: list[dict]) -> list[dict]:
    """Our passive orders that rested, from the log: limit, quantity, arrival (the ack) and end
    (the cancel record, else arrival + TTL: a filled order's shadows rest until its TTL)."""
    acks = {r["order_id"]: r["ts_ns"] for r in records if r.get("kind") == "ack"}
    cancels = {r["order_id"]: r["ts_ns"] for r in records if r.get("kind") == "cancel"}
    out = []
    for r in records:
        if r.get("kind") == "order" and r["style"] == "passive" and r["order_id"] in acks:
            arrival = acks[r["order_id"]]
            end = cancels.get(r["order_id"], arrival + round(r["ttl_s"] * 1e9))
            out.append({"id": r["order_id"], "side": r["side"], "price": r["limit_price"], "qty": r["qty"],
                        "arrival": arrival, "end": end})
    return out


def _check_against_reference(records: list[dict], frames, tick: float) -> dict[str, int]:
    """Every order's filled quantity and number of fills under every model (``queue_models``)
    and every fill record of the acting model (time, price, quantity, how) match the reference
    replay. Returns the number of fills per model."""
    orders = _passive_orders(records)
    views = _replay_queue_models(frames, orders, tick)
    limit = {o["id"]: o["price"] for o in orders}
    fills: dict[str, list[dict]] = {}
    for r in records:
        if r.get("kind") == "fill":
            fills.setdefault(r["order_id"], []).append(r)
    counted = {m: 0 for m in MODELS}
    results = [r for r in records if r.get("kind") == "order_result" and r["style"] == "passive"]
    assert results
    for r in results:
        oid = r["order_id"]
        for qm in r["queue_models"]:
            v = views[qm["model"]].get(oid)
            ref_filled, ref_fills = (v.filled, v.fills) if v is not None else (0.0, [])
            assert qm["filled_qty"] == pytest.approx(ref_filled, rel=1e-9, abs=1e-12), (oid, qm, ref_fills)
            assert qm["n_fills"] == len(ref_fills), (oid, qm, ref_fills)
            counted[qm["model"]] += qm["n_fills"]
        acting = r["queue_models"][0]["model"]
        got = [(f["ts_ns"], f["qty"], f["how"]) for f in fills.get(oid, [])]
        want = views[acting][oid].fills if oid in views[acting] else []
        assert [(t, h) for t, _, h in got] == [(t, h) for t, _, h in want], (oid, acting, got, want)
        assert [q for _, q, _ in got] == pytest.approx([q for _, q, _ in want], rel=1e-9, abs=1e-12)
        assert all(f["price"] == limit[oid] for f in fills.get(oid, []))
    return counted


def test_every_queue_model_fills_as_its_documented_rule_on_the_independent_book(passive_recording):
    """Acting and shadows alike: the queue models rebuilt from docs/execution.md over the raw
    frames and the test's own book (nothing from ``framework.execution.queue``) fill every order
    by the same quantity in the same number of fills as the engine's ``queue_models``, and the
    acting model's fill records are the reference's, fill by fill."""
    counted = _check_against_reference(passive_recording["records"], passive_recording["frames"],
                                       passive_recording["tick"])
    assert all(n > 0 for n in counted.values()), counted


def _levels_at_orders(frames, orders: list[dict]) -> dict[str, dict]:
    """Per order, from the test's own book: the level quantity at its price at arrival
    (``level0``) and every decrease of that level while it rested (``drops``: (time, amount))."""
    book, seen = _Book(), 0
    out: dict[str, dict] = {}
    active: list[dict] = []
    due = sorted(orders, key=lambda o: o["arrival"])
    k = 0

    def level(o: dict) -> float:
        return book.side["b" if o["side"] == "buy" else "a"].get(o["price"], 0.0)

    for stamp, msg in frames:
        seen = max(seen, stamp)
        while k < len(due) and due[k]["arrival"] < seen:
            o = due[k]
            k += 1
            out[o["id"]] = {"level0": level(o), "drops": [], "now": level(o)}
            active.append(o)
        active = [o for o in active if o["end"] >= seen]
        if not book.apply(msg.get("data", msg)):
            continue
        for o in active:
            h, now = out[o["id"]], level(o)
            if now < h["now"]:
                h["drops"].append((seen, h["now"] - now))
            h["now"] = now
    return out


def _justify_acting_fills(records: list[dict], frames, tick: float, acting: str) -> dict[str, int]:
    """Each fill record of the acting model against the raw frames and the test's own book alone
    (no queue model replayed): a ``trade_through`` fill has a print from the other side at or
    through our limit at its time; a ``quote_through`` fill (only a model that has the rule) has
    the opposite quote at or through our limit at its time; a ``queue_consumed`` fill has, since
    placement, prints at our limit from the other side covering the level at placement plus
    everything filled so far: under the conservative models also plus our own earlier orders
    resting at that price at placement, under the probabilistic ones less the decreases of the
    level observed since placement (a cancellation can move us up by no more than it removed) —
    unless a print through our limit came since placement (it cleared the queue). At placement
    the ack's ``queue_ahead`` is the book's level (plus our own orders ahead, conservative).
    Returns the fills per ``how`` and the orders placed behind our own."""
    kind, _, quote_through = REFERENCE_MODELS[acting]
    orders = _passive_orders(records)
    by_id = {o["id"]: o for o in orders}
    acks = {r["order_id"]: r for r in records if r.get("kind") == "ack"}
    fills = [r for r in records if r.get("kind") == "fill"]
    assert fills and all(f["liquidity"] == "maker" for f in fills)
    trades, quotes = _market(frames)
    levels = _levels_at_orders(frames, orders)
    eps = tick * 1e-6

    fills_of: dict[str, list[dict]] = {}
    for f in fills:
        fills_of.setdefault(f["order_id"], []).append(f)

    def filled_by(oid: str, ts: int) -> float:
        return sum(f["qty"] for f in fills_of.get(oid, []) if f["ts_ns"] <= ts)

    counts: dict[str, int] = {"behind_own": 0}
    own0: dict[str, float] = {}
    for o in orders:  # our earlier orders still resting at the same price when this one arrived
        own0[o["id"]] = sum(
            max(x["qty"] - filled_by(x["id"], o["arrival"]), 0.0) for x in orders
            if x["side"] == o["side"] and abs(x["price"] - o["price"]) <= eps
            and x["arrival"] < o["arrival"] <= x["end"])
        ahead = levels[o["id"]]["level0"] + (own0[o["id"]] if kind == "conservative" else 0.0)
        assert acks[o["id"]]["queue_ahead"] == pytest.approx(ahead, rel=1e-9, abs=1e-12), (o, ahead)
        counts["behind_own"] += own0[o["id"]] > 1e-12
    for f in fills:
        oid, ts, px = f["order_id"], f["ts_ns"], f["price"]
        o = by_id[oid]
        assert px == o["price"] and o["arrival"] < ts <= o["end"], f
        sgn = 1 if f["side"] == "buy" else -1
        other = "sell" if sgn > 0 else "buy"
        counts[f["how"]] = counts.get(f["how"], 0) + 1
        if own0[oid] > 1e-12:
            counts[f"{f['how']}_behind_own"] = counts.get(f"{f['how']}_behind_own", 0) + 1
        if f["how"] == "trade_through":
            assert any(t == ts and a == other and (px - p) * sgn >= -eps for t, p, _, a in trades), f
        elif f["how"] == "quote_through":
            assert quote_through, f
            assert any(t == ts and ((a <= px + eps) if sgn > 0 else (b >= px - eps)) for t, b, a in quotes), f
        else:
            assert f["how"] == "queue_consumed", f
            since = [(p, q) for t, p, q, a in trades if o["arrival"] < t <= ts and a == other]
            at = sum(q for p, q in since if abs(p - px) <= eps)
            through = any((px - p) * sgn > eps for p, _ in since)
            h = levels[oid]
            need = h["level0"] + f["filled_qty"]
            if kind == "conservative":
                need += own0[oid]
            else:
                at += sum(d for t, d in h["drops"] if t <= ts)
            assert through or at >= need - TOL, (f, h["level0"], own0[oid], at)
    return counts


# (recording, acting model, schedule): probabilistic models acting, so their fill records are
# checked one by one; and our orders overlapping at the same price, so that the conservative
# rule "our own earlier orders at the price are ahead of us" and the sharing of one print among
# our orders in arrival order are exercised (under every model: the others run as shadows).
# One run per family by default (linear and power3 share power2's rule); more with the full set.
ACTING = [
    (RECORDINGS[1], "log", _passive_intents),
    (RECORDINGS[2], "conservative", _overlapping_intents),  # where a queue we joined behind our own clears
    (RECORDINGS[0], "power2", _overlapping_intents),
] + ([(RECORDINGS[3], "linear", _passive_intents), (RECORDINGS[3], "power3", _overlapping_intents)]
     if SECONDS is None else [])


@pytest.fixture(scope="module", params=ACTING,
                ids=[f"{r[0].split('.')[0]}-{m}-{s.__name__.strip('_').split('_')[0]}" for r, m, s in ACTING])
def acting_recording(request, tmp_path_factory):
    (name, symbol, tick, _), acting, schedule = request.param
    frames = _frames(REPO / "data" / name)
    session = _passive_session(tmp_path_factory.mktemp("acting"), name, symbol, tick, frames, acting, schedule)
    records, _ = _run(session, frames[-1][0], fast=False)
    return {"frames": frames, "records": records, "tick": tick, "acting": acting,
            "overlapping": schedule is _overlapping_intents}


def test_every_fill_of_the_acting_model_is_justified_in_the_independent_book(acting_recording):
    """A probabilistic model acting, or our orders queued behind our own: each fill record is
    checked against the raw frames and the test's own book (``_justify_acting_fills``), and
    fills of every kind the model has occur."""
    r = acting_recording
    counts = _justify_acting_fills(r["records"], r["frames"], r["tick"], r["acting"])
    assert counts.get("queue_consumed", 0) > 0 and counts.get("trade_through", 0) > 0, counts
    if r["overlapping"]:
        # the schedule does queue us behind ourselves, and such orders fill both ways
        assert counts["behind_own"] >= 20, counts
        assert counts.get("queue_consumed_behind_own", 0) > 0 and counts.get("trade_through_behind_own", 0) > 0, counts


def test_every_queue_model_fills_as_its_rule_with_any_model_acting(acting_recording):
    """The reference replay (acting and shadows, fill by fill for the acting model) with a
    probabilistic model acting and with our orders overlapping at one price."""
    r = acting_recording
    counted = _check_against_reference(r["records"], r["frames"], r["tick"])
    assert all(n > 0 for n in counted.values()), counted


def test_an_order_gone_before_ours_arrives_is_not_queued_ahead_of_it():
    """Our first order's TTL ends at 1.010 s, our second arrives at 1.015 s at the same price,
    and no market event comes in between: the first is not ahead of the second (both fall due
    at the next event; the expiry, earlier, is applied first), and the log keeps time order."""
    from framework.execution import ExecutionConfig, Intent, PaperEngine
    from framework.market.events import Quote

    ms = 1_000_000
    cfg = ExecutionConfig.from_dict({"latency": {"fixed_ms": 10, "jitter": "none", "ack_fixed_ms": 10},
                                     "exchange_rules": {"enabled": False}, "passive": {"queue": {
                                         "model": "conservative", "shadows": ["quote_through"]}}})
    recs: list[dict] = []
    e = PaperEngine("BTCUSDT", cfg, recs.append, 7)
    e.on_quote(Quote(0, "BTCUSDT", 100.0, 1.0, 100.1, 2.0, 0))
    buy = {"symbol": "BTCUSDT", "side": "buy", "notional_usd": 100.05, "style": "passive"}
    e.submit(Intent(ts_ns=0, ttl_s=1.0, **buy), 0, {})  # arrives at 10 ms, rests until 1.010 s
    e.on_tick(500 * ms)
    e.submit(Intent(ts_ns=0, **buy), 1005 * ms, {})  # arrives at 1.015 s
    e.on_tick(1100 * ms)
    assert [(r["kind"], r["ts_ns"]) for r in recs if r["kind"] in ("ack", "cancel")] == [
        ("ack", 10 * ms), ("cancel", 1010 * ms), ("ack", 1015 * ms)]
    assert [r["queue_ahead"] for r in recs if r["kind"] == "ack"] == [1.0, 1.0]  # the bid's size only
