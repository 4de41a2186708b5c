"""Transaction cost analysis: the arithmetic against brute-force references, and a real run's
figures recomputed independently from the raw recording."""

from __future__ import annotations

import bisect
import gzip
import json
import math
import statistics
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.audit.runlog import load_records
from framework.audit.tca import aggregate, analyse, mean_ci, money, order_costs, t975

REPO = Path(__file__).resolve().parents[2]
H = ["1s", "5s"]

prices = st.decimals(min_value="100", max_value="200", places=2).map(float)
qtys = st.decimals(min_value="0.001", max_value="3", places=3).map(float)


@st.composite
def an_order(draw):
    side = draw(st.sampled_from(["buy", "sell"]))
    q_req = draw(qtys)
    qty = draw(st.sampled_from([q_req, round(q_req * 0.9, 6)]))
    n = draw(st.integers(0, 4))
    fills = []
    for _ in range(n):
        fills.append({"price": draw(prices), "qty": draw(qtys), "mid": draw(prices),
                      "fee": draw(st.decimals(min_value="0", max_value="0.5", places=4).map(float)),
                      "mk": [draw(st.one_of(st.none(), st.decimals(min_value="-50", max_value="50", places=3).map(float)))
                             for _ in H]})
    return {"side": side, "q_req": q_req, "qty": qty, "dec": draw(prices), "arr": draw(st.one_of(st.none(), prices)),
            "end": draw(prices), "fills": fills}


def records_of(o: dict) -> list[dict]:
    t = 1_000
    recs = [{"kind": "order", "ts_ns": t, "symbol": "X", "order_id": "X-1", "side": o["side"], "style": "take",
             "qty": o["qty"], "qty_requested": o["q_req"], "decision_mid": o["dec"], "labels": {"regime": "R"}}]
    if o["arr"] is not None:
        recs.append({"kind": "ack", "ts_ns": t + 1, "symbol": "X", "order_id": "X-1", "arrival_mid": o["arr"]})
    for i, f in enumerate(o["fills"]):
        recs.append({"kind": "fill", "ts_ns": t + 2 + i, "symbol": "X", "order_id": "X-1", "side": o["side"],
                     "price": f["price"], "qty": f["qty"], "fee_usd": f["fee"], "mid": f["mid"]})
    recs.append({"kind": "cancel", "ts_ns": t + 10, "symbol": "X", "order_id": "X-1", "mid": o["end"], "reason": "ttl"})
    recs.append({"kind": "order_result", "ts_ns": t + 10, "symbol": "X", "order_id": "X-1", "status": "cancelled",
                 "markout_bps": {h: None for h in H}, "fill_markouts_bps": [f["mk"] for f in o["fills"]]})
    return recs


def Fr(x) -> Fraction:
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def perold(o: dict, bench: float) -> Fraction | None:
    """Perold's definition: the paper portfolio's gain minus the real one's, both valued at the
    end price, over the paper position's value at the benchmark."""
    s = 1 if o["side"] == "buy" else -1
    b, end, q_req = Fr(bench), Fr(o["end"]), Fr(o["q_req"])
    paper = s * q_req * (end - b)
    real = sum((s * Fr(f["qty"]) * (end - Fr(f["price"])) - Fr(f["fee"]) for f in o["fills"]), Fraction(0))
    # what filled beyond the decided quantity is not in the paper portfolio: keep it comparable
    extra = max(sum((Fr(f["qty"]) for f in o["fills"]), Fraction(0)) - q_req, Fraction(0))
    real -= s * extra * (end - b)
    return (paper - real) / (q_req * b) * 10_000


@given(an_order())
@settings(max_examples=300)
def test_order_costs_agree_with_brute_force(o):
    (c,), horizons = order_costs(records_of(o))
    assert horizons == H
    filled = sum(Fr(f["qty"]) for f in o["fills"])
    if filled > Fr(o["q_req"]):  # overfilled: the opportunity term is 0, Perold's paper portfolio differs
        return
    want = perold(o, o["dec"])
    assert c["is_decision_bps"] == pytest.approx(float(want), abs=1e-6)
    arr = o["arr"] if o["arr"] is not None else o["dec"]
    assert c["is_arrival_bps"] == pytest.approx(float(perold(o, arr)), abs=1e-6)
    parts = c["is_execution_decision_bps"] + c["is_opportunity_decision_bps"] + c["is_fees_bps"]
    assert parts == pytest.approx(c["is_decision_bps"], abs=1e-9)
    s = 1 if o["side"] == "buy" else -1
    w = [Fr(f["price"]) * Fr(f["qty"]) for f in o["fills"]]
    es = [2 * s * (Fr(f["price"]) - Fr(f["mid"])) / Fr(f["mid"]) * 10_000 for f in o["fills"]]
    if w:
        assert c["effective_spread_bps"] == pytest.approx(float(sum(a * b for a, b in zip(w, es, strict=True)) / sum(w)), abs=1e-6)
    else:
        assert c["effective_spread_bps"] is None
    assert c["fill_ratio"] == pytest.approx(float(filled / Fr(o["qty"])))


@given(an_order())
@settings(max_examples=300)
def test_realized_spread_and_impact_split_the_effective_spread(o):
    recs = records_of(o)
    recs[-1]["markout_bps"] = {h: 0.0 for h in H}  # announce the horizons
    (c,), horizons = order_costs(recs)
    assert horizons == H
    s = 1 if o["side"] == "buy" else -1
    for j, h in enumerate(H):
        num_rs = num_pi = den = Fraction(0)
        for f in o["fills"]:
            mk = f["mk"][j]
            if mk is None:
                continue
            p, m = Fr(f["price"]), Fr(f["mid"])
            m_h = p * (1 + s * Fr(mk) / 10_000)  # the mid at t + h, from the markout's definition
            wt = p * Fr(f["qty"])
            num_rs += wt * 2 * s * (p - m_h) / m * 10_000
            num_pi += wt * 2 * s * (m_h - m) / m * 10_000
            den += wt
        if den == 0:
            assert c["realized_spread_bps"][h] is None and c["price_impact_bps"][h] is None
            continue
        assert c["realized_spread_bps"][h] == pytest.approx(float(num_rs / den), abs=1e-6)
        assert c["price_impact_bps"][h] == pytest.approx(float(num_pi / den), abs=1e-6)
        if all(f["mk"][j] is not None for f in o["fills"]):
            assert c["realized_spread_bps"][h] + c["price_impact_bps"][h] == pytest.approx(c["effective_spread_bps"], abs=1e-6)


@given(st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=0, max_size=60))
def test_mean_ci_against_the_textbook_formula(xs):
    r = mean_ci(xs)
    assert r["n"] == len(xs)
    if not xs:
        assert r["mean"] is None and r["ci95"] is None
        return
    assert r["mean"] == pytest.approx(statistics.fmean(xs), abs=1e-6)
    if len(xs) < 2:
        assert r["ci95"] is None
        return
    half = t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    assert r["ci95"][0] == pytest.approx(r["mean"] - half, abs=1e-6)
    assert r["ci95"][1] == pytest.approx(r["mean"] + half, abs=1e-6)


def test_t_quantiles_match_published_values():
    # Published t(0.975, df) values, including ones between the tabulated points.
    for df, t in ((1, 12.7062), (5, 2.5706), (30, 2.0423), (35, 2.0301), (50, 2.0086), (100, 1.9840), (1000, 1.9623)):
        assert t975(df) == pytest.approx(t, abs=1.5e-3)
    assert all(t975(d) > t975(d + 1) for d in range(1, 400))
    assert t975(10**9) == pytest.approx(1.95996, abs=1e-4)


@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), qtys, prices,
                          st.decimals(min_value="0", max_value="0.2", places=4).map(float)), min_size=1, max_size=30),
       prices)
def test_money_equals_cash_flows_plus_the_position_at_the_mid(fills, mark):
    recs = [{"kind": "fill", "ts_ns": i, "symbol": "X", "side": sd, "qty": q, "price": p, "fee_usd": fee, "mid": mark}
            for i, (sd, q, p, fee) in enumerate(fills)]
    m = money(recs)["symbols"]["X"]
    cash = sum((-1 if sd == "buy" else 1) * Fr(q) * Fr(p) for sd, q, p, _ in fills)
    pos = sum((1 if sd == "buy" else -1) * Fr(q) for sd, q, _, _ in fills)
    fees = sum(Fr(fee) for *_, fee in fills)
    assert m["position"] == pytest.approx(float(pos), abs=1e-9)
    assert m["net_pnl_usd"] == pytest.approx(float(cash + pos * Fr(mark) - fees), abs=1e-6)
    assert m["fees_usd"] == pytest.approx(float(fees), abs=1e-9)
    assert m["equity_curve"][-1][1] == pytest.approx(m["net_pnl_usd"], abs=1e-9)


def test_aggregate_groups_by_any_label():
    recs = []
    for i, regime in enumerate(["A", "B", "A"]):
        o = {"side": "buy", "q_req": 1.0, "qty": 1.0, "dec": 100.0, "arr": 100.0, "end": 101.0 + i, "fills": []}
        rs = records_of(o)
        for r in rs:
            r["order_id"] = f"X-{i}"
        rs[0]["labels"] = {"regime": regime}
        recs += rs
    costs, hs = order_costs(recs)
    agg = aggregate(costs, hs, ["regime", "style"])
    assert agg["all"]["orders"] == 3 and set(agg["by"]["regime"]) == {"A", "B"}
    assert agg["by"]["regime"]["A"]["is_opportunity_decision_bps"]["n"] == 2
    assert agg["by"]["regime"]["A"]["is_opportunity_decision_bps"]["mean"] == pytest.approx(200.0)  # 100 and 300 bps
    assert agg["by"]["style"]["take"]["orders"] == 3


# --------------------------------------------------------------------------------------------
# a real run, recomputed from the raw recording


def raw_mids(path: Path, symbol: str) -> tuple[list[int], list[float]]:
    """Every bookTicker mid of the recording, by receive time: plain json, not the project's decoder."""
    ts, mids = [], []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            t, _, raw = line.partition(" ")
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            d = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(d, dict) or d.get("s") != symbol or "b" not in d or "a" not in d or "e" in d and d["e"] != "bookTicker":
                continue
            ts.append(int(t))
            mids.append((float(d["b"]) + float(d["a"])) * 0.5)
    return ts, mids


def test_a_real_runs_costs_recomputed_independently(replay_run):
    records = load_records(replay_run)
    start = records[0]
    path = Path(start["source"]["files"][0]["path"])
    ts, mids = raw_mids(path, "BTCUSDT")

    def mid_at(t: int) -> float:
        return mids[bisect.bisect_right(ts, t) - 1]

    a = analyse(replay_run, ["regime", "style"])
    by_id = {c["order_id"]: c for c in a["orders"]}
    orders = {r["order_id"]: r for r in records if r.get("kind") == "order"}
    fills: dict[str, list[dict]] = {}
    for r in records:
        if r.get("kind") == "fill":
            fills.setdefault(r["order_id"], []).append(r)
    results = {r["order_id"]: r for r in records if r.get("kind") == "order_result"}
    ends = {r["order_id"]: r for r in records if r.get("kind") in ("cancel", "reject") and r.get("order_id")}
    assert len(by_id) == len(orders) > 10 and fills
    horizons = {"1s": 1, "5s": 5, "30s": 30}
    checked_rs = 0
    for oid, o in orders.items():
        c = by_id[oid]
        s = 1 if o["side"] == "buy" else -1
        dec = mid_at(o["ts_ns"])
        assert dec == pytest.approx(o["decision_mid"], rel=1e-12)
        fs = fills.get(oid, [])
        end = ends.get(oid)
        # the order ended at its cancel or reject, else at its completing fill
        end_mid = mid_at(end["ts_ns"]) if end else (mid_at(fs[-1]["ts_ns"]) if fs else dec)
        q_req = o["qty_requested"]
        filled = sum(f["qty"] for f in fs)
        is_dec = (sum(s * f["qty"] * (f["price"] - dec) for f in fs) + max(q_req - filled, 0) * s * (end_mid - dec)
                  + sum(f["fee_usd"] for f in fs)) / (q_req * dec) * 1e4
        assert c["is_decision_bps"] == pytest.approx(is_dec, abs=1e-6), oid
        if not fs:
            continue
        num = den = 0.0
        rs = {h: [0.0, 0.0] for h in horizons}
        for i, f in enumerate(fs):
            m = mid_at(f["ts_ns"])
            assert m == pytest.approx(f["mid"], rel=1e-12)
            w = f["price"] * f["qty"]
            num += w * 2 * s * (f["price"] - m) / m * 1e4
            den += w
            for h, sec in horizons.items():
                if results[oid]["fill_markouts_bps"][i][list(horizons).index(h)] is None:  # ascending horizons
                    continue
                mh = mid_at(f["ts_ns"] + sec * 1_000_000_000)
                rs[h][0] += w * 2 * s * (f["price"] - mh) / m * 1e4
                rs[h][1] += w
        assert c["effective_spread_bps"] == pytest.approx(num / den, abs=1e-6)
        for h, (n_, d_) in rs.items():
            if d_:
                assert c["realized_spread_bps"][h] == pytest.approx(n_ / d_, abs=1e-4), (oid, h)
                checked_rs += 1
    assert checked_rs > 10
    # the money: the engine's own summary (summary.json) against the rebuilt accounting
    eng = json.loads((replay_run / "summary.json").read_text())["symbols"]["BTCUSDT"]["execution"]
    m = a["money"]["symbols"]["BTCUSDT"]
    assert m["fees_usd"] == pytest.approx(eng["fees_usd"], abs=1e-5)
    assert m["realized_pnl_usd"] == pytest.approx(eng["realized_pnl_usd"], abs=1e-5)
    assert m["position"] == pytest.approx(eng["position"], abs=1e-12)
    liq = m["liquidation"]
    assert liq["depth"] in (True, None)  # the spot recording carries depth@100ms
    if liq["depth"]:
        assert liq["filled"] == pytest.approx(abs(m["position"]))


def test_tca_cli_prints_json_and_text(replay_run):
    r = subprocess.run([sys.executable, "-m", "framework.cli", "tca", str(replay_run), "--by", "regime,health", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["aggregate"]["by"]) == {"regime", "health"} and d["aggregate"]["all"]["orders"] > 10
    r = subprocess.run([sys.executable, "-m", "framework.cli", "tca", str(replay_run), "--no-book"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0 and "IS vs decision (bps)" in r.stdout and "net PnL at mid" in r.stdout
    r = subprocess.run([sys.executable, "-m", "framework.cli", "tca", str(replay_run), "--by", "Bad-Name"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 2 and "expected names" in r.stderr


def test_the_report_and_diff_show_costs_and_money(replay_run):
    from framework.audit.diff import cost_summary, rows
    from framework.audit.report import _costs_section

    records = load_records(replay_run)
    html = _costs_section(records)
    a = analyse(replay_run, [])
    net = a["money"]["symbols"]["BTCUSDT"]["net_pnl_usd"]
    assert "IS vs decision (bps)" in html and "regime NORMAL" in html and "style take" in html
    assert f"{net:.4f}" in html and "data:image/png;base64," in html  # the money and the equity curve
    cs = cost_summary(records)
    assert cs["net_pnl_usd"] == pytest.approx(net) and cs["position"]["BTCUSDT"] == a["money"]["symbols"]["BTCUSDT"]["position"]
    d = {"duration_s": {"base": 1.0, "edited": 1.0}, "eligible_s": {"base": 1.0, "edited": 1.0},
         "refused_intents": {"base": 0, "edited": 0}, "orders": {"base": 1, "edited": 1}, "fills": {"base": 1, "edited": 1},
         "quality": {"base": None, "edited": None}, "machines": [],
         "costs": {"base": cs, "edited": {**cs, "net_pnl_usd": cs["net_pnl_usd"] + 1.0}}}
    got = {r[0]: r for r in rows(d)}
    assert got["net PnL at mid (USD)"][3] == "+1.0000" and "BTCUSDT end position" in got
