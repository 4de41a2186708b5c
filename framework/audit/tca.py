"""Transaction cost analysis (TCA) of a run, from its audit log.

Per order, with ``s = +1`` for a buy and ``-1`` for a sell, ``Q`` the quantity decided
(``qty_requested``: notional / decision mid, before the exchange's lot rounding), fills
``(p_i, q_i)`` of total ``q``, fees ``F``, and a benchmark price ``B``:

- **Implementation shortfall** against ``B`` (Perold), in bps of ``Q x B``:
  ``IS = [sum_i s q_i (p_i - B) + (Q - q) s (P_end - B) + F] / (Q B) x 10^4``: the execution
  cost of what filled, the **opportunity cost** of what did not (judged at ``P_end``, the mid
  when the order ended: cancel, expiry, reject, completing fill, session end; the lot rounding's
  remainder counts as unfilled) and fees. ``B`` is the mid at
  decision (``is_decision_bps``) and at arrival at the exchange (``is_arrival_bps``; an order
  refused before it was sent has arrival = decision). Positive = cost.
- **Effective spread** per fill, against the mid ``M_t`` in force at the fill:
  ``ES = 2 s (p - M_t) / M_t x 10^4``; **realized spread** at horizon ``h``:
  ``RS_h = 2 s (p - M_{t+h}) / M_t x 10^4``; **price impact** ``PI_h = 2 s (M_{t+h} - M_t) / M_t
  x 10^4``, so ``ES = RS_h + PI_h`` for every fill. ``M_{t+h}`` is recovered from the engine's
  markout of the fill (``markout = s (M_{t+h} - p) / p``). Per order: notional-weighted over its
  fills (realized spread and impact over the fills whose horizon was reached). A passive fill
  at our own limit has a negative effective spread: we earned it.
- **Fill ratio** (filled / quantity sent), **time to first fill** and **time to fill**
  (decision to the completing fill), in ms.

Aggregates (``aggregate``): per group (any label such as ``regime`` or ``health`` at decision,
``style``, ``symbol``, or ``queue_model`` when the log records one), each metric's count, mean
over orders (every order weighs the same) and a 95 % confidence interval of the mean (Student
t, ``mean +- t(0.975, n-1) x sd / sqrt(n)``; none for ``n < 2``).

Money: PnL, position, fees and an equity curve are rebuilt from the fills (average-cost
accounting, as the engine keeps it), and the end position is marked to the last mid and, where
the run's recording carries depth for the symbol, to what liquidating it through the book at the
end would fetch (``OrderBook.walk`` on the book rebuilt from the recording); otherwise the
report says ``no depth``.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

# Student t quantiles t(0.975, df); between tabulated values interpolated in 1/df (error < 1e-3).
_T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646, 8: 2.3060,
         9: 2.2622, 10: 2.2281, 11: 2.2010, 12: 2.1788, 13: 2.1604, 14: 2.1448, 15: 2.1314, 16: 2.1199,
         17: 2.1098, 18: 2.1009, 19: 2.0930, 20: 2.0860, 21: 2.0796, 22: 2.0739, 23: 2.0687, 24: 2.0639,
         25: 2.0595, 26: 2.0555, 27: 2.0518, 28: 2.0484, 29: 2.0452, 30: 2.0423, 40: 2.0211, 60: 2.0003,
         120: 1.9799}
_Z975 = 1.959964


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df {df}; expected >= 1")
    if df in _T975:
        return _T975[df]
    keys = sorted(_T975)
    if df > keys[-1]:
        lo, hi, tlo, thi = keys[-1], math.inf, _T975[keys[-1]], _Z975
    else:
        i = bisect.bisect_left(keys, df)
        lo, hi = keys[i - 1], keys[i]
        tlo, thi = _T975[lo], _T975[hi]
    x, xlo, xhi = 1 / df, 1 / lo, (0.0 if hi == math.inf else 1 / hi)
    return thi + (tlo - thi) * (x - xhi) / (xlo - xhi)


def mean_ci(xs: list[float]) -> dict[str, Any]:
    """n, mean and the 95 % confidence interval of the mean (None below two values)."""
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "ci95": None}
    m = math.fsum(xs) / n
    if n < 2:
        return {"n": 1, "mean": m, "ci95": None}
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": m, "ci95": [m - half, m + half]}


# --------------------------------------------------------------------------------------------
# per order


def _horizon_keys(results: list[dict]) -> list[str]:
    keys: list[str] = []
    for r in results:
        for h in r.get("markout_bps") or {}:
            if h not in keys:
                keys.append(h)
    return sorted(keys, key=lambda h: float(h.rstrip("s")))


class _MidLine:
    """The mids the log states (decisions, arrivals, fills, cancels, metric samples), by
    symbol, so the mid at a moment can be read when a record did not carry it."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[int, int, float]]] = defaultdict(list)  # (ts, seq, mid)

    def add(self, symbol: str, ts: int, mid: Any) -> None:
        if isinstance(mid, (int, float)) and mid > 0 and math.isfinite(mid):
            pts = self.points[symbol]
            pts.append((ts, len(pts), float(mid)))

    def finish(self) -> None:
        for pts in self.points.values():
            pts.sort()

    def at(self, symbol: str, ts: int) -> float | None:
        pts = self.points.get(symbol) or []
        i = bisect.bisect_right(pts, (ts, math.inf, math.inf)) - 1
        return pts[i][2] if i >= 0 else None


def _mid_of(rec: dict) -> float | None:
    b, a = rec.get("arrival_bid"), rec.get("arrival_ask")
    if isinstance(b, (int, float)) and isinstance(a, (int, float)):
        return (b + a) / 2
    return None


def order_costs(records: list[dict]) -> tuple[list[dict], list[str]]:
    """One cost record per order of the log (in order of decision), and the markout horizons."""
    orders: dict[str, dict] = {}
    seq: list[str] = []
    mids = _MidLine()
    results: list[dict] = []
    for r in records:
        kind = r.get("kind")
        oid = r.get("order_id")
        sym = r.get("symbol", "")
        if kind == "order":
            orders[oid] = {"order": r, "ack": None, "fills": [], "end": None, "result": None}
            seq.append(oid)
            mids.add(sym, r["ts_ns"], r.get("decision_mid"))
        elif kind == "ack" and oid in orders:
            orders[oid]["ack"] = r
            mids.add(sym, r["ts_ns"], r.get("arrival_mid"))
        elif kind == "fill" and oid in orders:
            orders[oid]["fills"].append(r)
            mids.add(sym, r["ts_ns"], r.get("mid"))
        elif kind in ("cancel", "reject") and oid in orders:
            orders[oid]["end"] = r
            mids.add(sym, r["ts_ns"], r.get("mid") if kind == "cancel" else _mid_of(r))
        elif kind == "order_result" and oid in orders:
            orders[oid]["result"] = r
            results.append(r)
        elif kind == "metrics":
            mids.add(sym, r["ts_ns"], (r.get("values") or {}).get("mid"))
    mids.finish()
    horizons = _horizon_keys(results)
    return [_order_cost(orders[oid], horizons, mids) for oid in seq], horizons


def _order_cost(o: dict, horizons: list[str], mids: _MidLine) -> dict:
    rec, ack, fills, end, res = o["order"], o["ack"], o["fills"], o["end"], o["result"] or {}
    sym = rec.get("symbol", "")
    s = 1.0 if rec.get("side") == "buy" else -1.0
    qty = float(rec.get("qty") or 0.0)
    q_dec = float(rec.get("qty_requested", qty) or 0.0)
    dec = rec.get("decision_mid")
    arr = ack.get("arrival_mid") if ack else None
    arr = arr if arr is not None else dec
    filled = math.fsum(float(f["qty"]) for f in fills)
    fees = math.fsum(float(f.get("fee_usd") or 0.0) for f in fills)
    notional = math.fsum(float(f["price"]) * float(f["qty"]) for f in fills)
    # The price the unfilled rest is judged at: the mid when the order ended.
    end_ts = end["ts_ns"] if end else (fills[-1]["ts_ns"] if fills else rec["ts_ns"])
    p_end = None
    if end is not None:
        p_end = end.get("mid") if end.get("kind") == "cancel" else _mid_of(end)
    if p_end is None:
        p_end = mids.at(sym, end_ts)
    unfilled = max(q_dec - filled, 0.0)

    def shortfall(b: float | None) -> tuple[float | None, float | None, float | None, float | None]:
        if not b or q_dec <= 0:
            return None, None, None, None
        base = q_dec * b
        ex = math.fsum(s * float(f["qty"]) * (float(f["price"]) - b) for f in fills)
        opp = unfilled * s * ((p_end if p_end is not None else b) - b)
        return ((ex + opp + fees) / base * 1e4, ex / base * 1e4, opp / base * 1e4, fees / base * 1e4)

    is_dec, ex_dec, opp_dec, fee_bps = shortfall(dec)
    is_arr, ex_arr, opp_arr, _ = shortfall(arr)
    es_w = es_sum = 0.0
    rs_sum = [0.0] * len(horizons)
    pi_sum = [0.0] * len(horizons)
    h_w = [0.0] * len(horizons)
    # per fill, the markouts in the engine's horizon order (ascending, as ``horizons``); the
    # keys of ``markout_bps`` may come back in another order (the log sorts keys as text)
    fill_mk = res.get("fill_markouts_bps") or []
    for i, f in enumerate(fills):
        p, q, m = float(f["price"]), float(f["qty"]), f.get("mid")
        if not m:
            continue
        w = p * q
        es_sum += w * 2 * s * (p - m) / m * 1e4
        es_w += w
        mk = fill_mk[i] if i < len(fill_mk) else []
        for j in range(len(horizons)):
            v = mk[j] if j < len(mk) else None
            if v is None:
                continue
            m_h = p * (1 + s * v / 1e4)
            rs_sum[j] += w * 2 * s * (p - m_h) / m * 1e4
            pi_sum[j] += w * 2 * s * (m_h - m) / m * 1e4
            h_w[j] += w
    labels = dict(rec.get("labels") or {})
    groups = {**labels, "style": rec.get("style"), "symbol": sym, "side": rec.get("side")}
    for src in (rec, ack or {}, res, *(fills[:1])):
        if src.get("queue_model") is not None and "queue_model" not in labels:
            groups["queue_model"] = src["queue_model"]
    end_kind = (end or {}).get("kind")
    return {
        "order_id": rec.get("order_id"), "symbol": sym, "side": rec.get("side"), "style": rec.get("style"),
        "groups": {k: str(v) for k, v in groups.items() if v is not None},
        "decision_ts_ns": rec["ts_ns"], "end_ts_ns": end_ts,
        "status": res.get("status") or ("rejected" if end_kind == "reject" else "filled" if filled >= qty > 0 else "cancelled"),
        "reason": (end or {}).get("reason", ""), "filter": (end or {}).get("filter"),
        "qty_requested": q_dec, "qty": qty, "filled_qty": filled, "notional_filled_usd": notional,
        "fees_usd": fees, "decision_mid": dec, "arrival_mid": arr, "end_mid": p_end,
        "fill_ratio": filled / qty if qty > 0 else None,
        "is_decision_bps": is_dec, "is_arrival_bps": is_arr,
        "is_execution_decision_bps": ex_dec, "is_opportunity_decision_bps": opp_dec,
        "is_execution_arrival_bps": ex_arr, "is_opportunity_arrival_bps": opp_arr, "is_fees_bps": fee_bps,
        "effective_spread_bps": es_sum / es_w if es_w else None,
        "realized_spread_bps": {h: (rs_sum[j] / h_w[j] if h_w[j] else None) for j, h in enumerate(horizons)},
        "price_impact_bps": {h: (pi_sum[j] / h_w[j] if h_w[j] else None) for j, h in enumerate(horizons)},
        "time_to_first_fill_ms": res.get("time_to_first_fill_ms"),
        "time_to_fill_ms": res.get("time_to_fill_ms"),
    }


SCALAR_METRICS = ("is_decision_bps", "is_arrival_bps", "is_execution_decision_bps", "is_opportunity_decision_bps",
                  "is_fees_bps", "effective_spread_bps", "fill_ratio", "time_to_first_fill_ms", "time_to_fill_ms")
HORIZON_METRICS = ("realized_spread_bps", "price_impact_bps")


def _stats(costs: list[dict], horizons: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "orders": len(costs),
        "with_fill": sum(1 for c in costs if c["filled_qty"] > 0),
        "complete": sum(1 for c in costs if c["status"] == "filled"),
        "rejected": sum(1 for c in costs if c["status"] == "rejected"),
        "cancelled": sum(1 for c in costs if c["status"] == "cancelled"),
        "fees_usd": math.fsum(c["fees_usd"] for c in costs),
        "notional_filled_usd": math.fsum(c["notional_filled_usd"] for c in costs),
    }
    for k in SCALAR_METRICS:
        out[k] = mean_ci([c[k] for c in costs if c[k] is not None])
    for k in HORIZON_METRICS:
        out[k] = {h: mean_ci([c[k][h] for c in costs if c[k].get(h) is not None]) for h in horizons}
    return out


def aggregate(costs: list[dict], horizons: list[str], by: list[str]) -> dict[str, Any]:
    """``all`` and, for each dimension of ``by``, one block of statistics per value."""
    out: dict[str, Any] = {"all": _stats(costs, horizons), "by": {}}
    for dim in by:
        groups: dict[str, list[dict]] = defaultdict(list)
        for c in costs:
            groups[c["groups"].get(dim, "-")].append(c)
        out["by"][dim] = {v: _stats(cs, horizons) for v, cs in sorted(groups.items())}
    return out


# --------------------------------------------------------------------------------------------
# money: PnL, position, fees, equity curve, end position


class _Book:
    """Average-cost position accounting, as the paper engine keeps it."""

    def __init__(self) -> None:
        self.pos = self.avg = self.realized = self.fees = 0.0

    def fill(self, s: float, qty: float, px: float, fee: float) -> None:
        self.fees += fee
        pos = self.pos
        if pos == 0.0 or (pos > 0) == (s > 0):
            new = pos + s * qty
            self.avg = (self.avg * abs(pos) + px * qty) / abs(new)
            self.pos = new
            return
        close = min(qty, abs(pos))
        self.realized += close * (px - self.avg) * (1.0 if pos > 0 else -1.0)
        new = pos + s * qty
        if abs(new) <= 1e-12 * max(abs(pos), qty):
            self.pos, self.avg = 0.0, 0.0
        elif (new > 0) != (pos > 0):
            self.pos, self.avg = new, px
        else:
            self.pos = new

    def equity(self, mid: float | None) -> float:
        unreal = self.pos * (mid - self.avg) if (mid is not None and self.pos) else 0.0
        return self.realized + unreal - self.fees


def money(records: list[dict]) -> dict[str, Any]:
    """Per symbol: fills, fees, realized PnL, end position, the equity curve (realized +
    position marked to the mid - fees, at every moment the log states a mid) and the end
    position marked to the last mid."""
    books: dict[str, _Book] = {}
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    last_mid: dict[str, float] = {}
    n_fills: dict[str, int] = defaultdict(int)
    end_ns = 0
    for r in records:
        kind, sym = r.get("kind"), r.get("symbol", "")
        end_ns = max(end_ns, int(r.get("ts_ns") or 0))
        mid = None
        if kind == "fill":
            b = books.setdefault(sym, _Book())
            b.fill(1.0 if r.get("side") == "buy" else -1.0, float(r["qty"]), float(r["price"]), float(r.get("fee_usd") or 0.0))
            n_fills[sym] += 1
            mid = r.get("mid")
        elif kind == "order":
            mid = r.get("decision_mid")
        elif kind == "ack":
            mid = r.get("arrival_mid")
        elif kind == "cancel":
            mid = r.get("mid")
        elif kind == "metrics":
            mid = (r.get("values") or {}).get("mid")
        if isinstance(mid, (int, float)) and mid > 0:
            last_mid[sym] = float(mid)
        if sym in books and sym in last_mid and (kind == "fill" or isinstance(mid, (int, float))):
            curves[sym].append((int(r["ts_ns"]), books[sym].equity(last_mid[sym])))
    out: dict[str, Any] = {"end_ns": end_ns, "symbols": {}}
    for sym, b in sorted(books.items()):
        m = last_mid.get(sym)
        out["symbols"][sym] = {
            "fills": n_fills[sym], "position": b.pos, "avg_price": b.avg, "realized_pnl_usd": b.realized,
            "fees_usd": b.fees, "last_mid": m, "unrealized_pnl_usd": b.pos * (m - b.avg) if (m and b.pos) else 0.0,
            "net_pnl_usd": b.equity(m), "equity_curve": curves[sym],
        }
    tot = out["symbols"].values()
    out["total"] = {k: math.fsum(s[k] for s in tot) for k in ("realized_pnl_usd", "fees_usd", "unrealized_pnl_usd", "net_pnl_usd")}
    return out


def _recordings(start: dict) -> list[Path]:
    src = start.get("source") or {}
    files = src.get("files") or ([src] if src.get("path") else [])
    return [Path(f["path"]) for f in files if isinstance(f, dict) and f.get("path")]


def liquidation(start: dict, symbol: str, position: float, at_ns: int, mid: float | None) -> dict[str, Any]:
    """What closing ``position`` through the book at ``at_ns`` would fetch, with the book
    rebuilt from the run's recording; ``{"depth": False, "why": ...}`` where there is none."""
    if not position:
        return {"depth": None, "why": "flat"}
    paths = [p for p in _recordings(start) if p.is_file()]
    if not paths:
        return {"depth": False, "why": "no depth (the recording is not at hand)"}
    from ..market.book_replay import replay_book

    for p in paths:
        try:
            book, _ = replay_book(p, symbol, at_ns=at_ns)
        except ValueError:
            continue
        if book is None or not book.in_sync or book.mid() is None:
            continue
        side = "sell" if position > 0 else "buy"
        w = book.walk(side, abs(position))
        ref = mid or w.mid
        proceeds = w.avg_price * w.filled
        # Cost against marking to the mid: what liquidating gives up, positive = a cost.
        cost = (ref * w.filled - proceeds) * (1 if position > 0 else -1)
        return {"depth": True, "book_state": book.state, "side": side, "qty": abs(position), "filled": w.filled,
                "avg_price": w.avg_price, "levels": w.levels, "book_mid": w.mid, "mark_mid": ref,
                "cost_usd": cost, "cost_bps": cost / (ref * w.filled) * 1e4 if w.filled and ref else None,
                "unknown_levels": w.unknown,
                "value_usd": position / abs(position) * proceeds if w.filled else 0.0}
    return {"depth": False, "why": "no depth (no depth frames of this symbol in the recording)"}


# --------------------------------------------------------------------------------------------
# the whole analysis


def analyse_records(records: list[dict], by: list[str], with_book: bool = True) -> dict[str, Any]:
    costs, horizons = order_costs(records)
    m = money(records)
    start = next((r for r in records if r.get("kind") == "session_start"), {})
    for sym, s in m["symbols"].items():
        s["liquidation"] = (liquidation(start, sym, s["position"], m["end_ns"], s["last_mid"]) if with_book
                            else {"depth": False, "why": "not asked"})
    return {"session": start.get("session"), "horizons": horizons, "by": by,
            "orders": costs, "aggregate": aggregate(costs, horizons, by), "money": m}


def analyse(run_dir: str | Path, by: list[str], with_book: bool = True) -> dict[str, Any]:
    from .runlog import load_records, log_path

    log_path(run_dir)
    return analyse_records(load_records(run_dir), by, with_book)


# --------------------------------------------------------------------------------------------
# text


def fmt_ci(st: dict[str, Any], nd: int = 2) -> str:
    if not st or st.get("mean") is None:
        return "-"
    ci = st.get("ci95")
    if ci is None:
        return f"{st['mean']:.{nd}f} (n=1)"
    return f"{st['mean']:.{nd}f} [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}] n={st['n']}"


def summary_rows(st: dict[str, Any], horizons: list[str]) -> list[tuple[str, str]]:
    rows = [("orders (with fill / complete / rejected / cancelled)",
             f"{st['orders']} ({st['with_fill']} / {st['complete']} / {st['rejected']} / {st['cancelled']})"),
            ("fees (USD)", f"{st['fees_usd']:.4f}"),
            ("IS vs decision (bps)", fmt_ci(st["is_decision_bps"])),
            ("  execution", fmt_ci(st["is_execution_decision_bps"])),
            ("  opportunity (unfilled)", fmt_ci(st["is_opportunity_decision_bps"])),
            ("  fees", fmt_ci(st["is_fees_bps"])),
            ("IS vs arrival (bps)", fmt_ci(st["is_arrival_bps"])),
            ("effective spread (bps)", fmt_ci(st["effective_spread_bps"]))]
    for h in horizons:
        rows.append((f"realized spread {h} (bps)", fmt_ci(st["realized_spread_bps"][h])))
        rows.append((f"price impact {h} (bps)", fmt_ci(st["price_impact_bps"][h])))
    rows += [("fill ratio", fmt_ci(st["fill_ratio"], 3)),
             ("time to first fill (ms)", fmt_ci(st["time_to_first_fill_ms"], 1)),
             ("time to fill (ms)", fmt_ci(st["time_to_fill_ms"], 1))]
    return rows


def money_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for sym, s in m["symbols"].items():
        liq = s["liquidation"]
        if liq.get("depth"):
            liq_text = (f"{liq['side']} {liq['qty']:g} through {liq['levels']} levels: avg {liq['avg_price']:.2f}, "
                        f"cost {liq['cost_usd']:.4f} USD ({liq['cost_bps']:.3f} bps) vs the mid"
                        + (" (walked through unseen levels)" if liq.get("unknown_levels") else ""))
        else:
            liq_text = liq.get("why", "no depth")
        rows += [(f"{sym} fills", str(s["fills"])),
                 (f"{sym} position", f"{s['position']:.8g} @ avg {s['avg_price']:.2f}"),
                 (f"{sym} realized PnL before fees (USD)", f"{s['realized_pnl_usd']:.4f}"),
                 (f"{sym} fees (USD)", f"{s['fees_usd']:.4f}"),
                 (f"{sym} end position marked to mid {s['last_mid'] or 0:.2f} (USD)", f"{s['unrealized_pnl_usd']:.4f}"),
                 (f"{sym} net PnL at mid (USD)", f"{s['net_pnl_usd']:.4f}"),
                 (f"{sym} liquidating the end position", liq_text)]
    t = m["total"]
    rows.append(("total net PnL at mid (USD)", f"{t['net_pnl_usd']:.4f}"))
    return rows


def format_text(a: dict[str, Any]) -> str:
    lines = [f"transaction cost analysis of {a.get('session')}: means with 95 % confidence intervals "
             "(costs positive; IS = implementation shortfall)"]

    def block(title: str, rows: list[tuple[str, str]]) -> None:
        lines.append("")
        lines.append(title)
        w = max(len(r[0]) for r in rows)
        lines.extend(f"  {k:{w}}  {v}" for k, v in rows)

    block("all orders", summary_rows(a["aggregate"]["all"], a["horizons"]))
    for dim, groups in a["aggregate"]["by"].items():
        for v, st in groups.items():
            block(f"{dim} = {v}", summary_rows(st, a["horizons"]))
    block("money", money_rows(a["money"]))
    return "\n".join(lines) + "\n"
