"""What the dashboard server sends for a given sequence of records: the board's snapshot and
deltas, the page's merge of them, the PnL it shows, the thresholds it draws, the time slider."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.dashboard import history as history_module
from framework.dashboard.board import LIMITS, Board, Tail
from framework.dashboard.history import History
from framework.dashboard.layout import charted_metrics, guard_thresholds, thresholds
from framework.spec.session import load_session

T0 = 1_723_161_255_000_000_000
S = 1_000_000_000


def start(ts: int = T0) -> dict:
    return {"kind": "session_start", "ts_ns": ts, "symbol": "", "seq": 0, "session": "t", "symbols": ["BTCUSDT"],
            "initial": {"BTCUSDT": {"regime": "UNSTABLE", "permission": "BLOCKED", "health": "RED"}},
            "decision": {"BTCUSDT": {"eligible": False, "aggressiveness": "none", "risk_budget": 0.0, "rule": "stale_data"}}}


def metrics(ts: int, mid: float, spread: float = 0.01) -> dict:
    return {"kind": "metrics", "ts_ns": ts, "symbol": "BTCUSDT", "values": {"mid": mid, "spread_bps": spread, "quote_age_ms": 12.5},
            "states": {}}


def transition(ts: int, machine: str, frm: str, to: str, rule: int = 1) -> dict:
    return {"kind": "transition", "ts_ns": ts, "symbol": "BTCUSDT", "machine": machine, "from": frm, "to": to, "rule": rule,
            "guard": "when metrics.spread_bps <   params.x", "inputs": {"metrics.spread_bps": 0.01}, "params": {"x": 5.0}}


def fill(ts: int, side: str, qty: float, price: float, position: float, order_id: str = "o1") -> dict:
    return {"kind": "fill", "ts_ns": ts, "symbol": "BTCUSDT", "order_id": order_id, "side": side, "price": price, "qty": qty,
            "fee_usd": 0.01, "liquidity": "taker", "how": "touch", "done": True, "filled_qty": qty, "position": position}


def test_snapshot_after_a_session_shows_states_decision_reasons_orders_and_feed():
    b = Board()
    for r in [start(),
              metrics(T0 + S, 100.0),
              transition(T0 + 2 * S, "regime", "UNSTABLE", "NORMAL", rule=3),
              {"kind": "decision", "ts_ns": T0 + 2 * S, "symbol": "BTCUSDT", "eligible": True, "aggressiveness": "take",
               "risk_budget": 0.5, "rule": "normal", "states": {}},
              {"kind": "order", "ts_ns": T0 + 3 * S, "symbol": "BTCUSDT", "order_id": "o1", "side": "buy", "qty": 1.0,
               "notional_usd": 100.0, "style": "take"},
              {"kind": "ack", "ts_ns": T0 + 3 * S, "symbol": "BTCUSDT", "order_id": "o1"},
              fill(T0 + 3 * S, "buy", 1.0, 100.0, 1.0),
              {"kind": "reject", "ts_ns": T0 + 4 * S, "symbol": "BTCUSDT", "stage": "decision", "intent_id": "i2",
               "rule": "blocked", "reason": "not eligible"},
              {"kind": "alert", "ts_ns": T0 + 5 * S, "symbol": "BTCUSDT", "source": "risk", "guard": "order_rate",
               "state": "trip", "value": 9, "limit": 5},
              {"kind": "alert", "ts_ns": T0 + 6 * S, "symbol": "BTCUSDT", "source": "risk", "guard": "loss_limit",
               "tripped": True, "value": -50, "limit": -40},
              {"kind": "alert", "ts_ns": T0 + 7 * S, "symbol": "BTCUSDT", "source": "risk", "guard": "order_rate", "state": "clear"},
              {"kind": "feed", "ts_ns": T0 + 8 * S, "symbol": "", "event": "gap", "detail": None, "gap_ms": 1500.0},
              {"kind": "feed", "ts_ns": T0 + 9 * S, "symbol": "", "event": "disconnect", "detail": "closed", "gap_ms": None},
              metrics(T0 + 10 * S, 110.0)]:
        b.apply(r)
    snap = b.snapshot()
    sym = snap["symbols"]["BTCUSDT"]
    assert {m: v["state"] for m, v in sym["states"].items()} == {"regime": "NORMAL", "permission": "BLOCKED", "health": "RED"}
    assert sym["states"]["regime"]["since_ns"] == T0 + 2 * S
    assert sym["decision"] == {"eligible": True, "aggressiveness": "take", "risk_budget": 0.5, "rule": "normal", "since_ns": T0 + 2 * S}
    [t] = sym["append"]["transitions"]
    assert (t["machine"], t["from"], t["to"], t["rule"]) == ("regime", "UNSTABLE", "NORMAL", 3)
    assert t["guard"] == "when metrics.spread_bps < params.x"  # whitespace folded, as explain prints it
    assert t["inputs"] == {"metrics.spread_bps": 0.01} and t["params"] == {"x": 5.0}
    assert sym["orders"][0]["status"] == "filled" and sym["orders"][0]["filled_qty"] == 1.0
    assert [r["rule"] for r in sym["append"]["refusals"]] == ["blocked"]
    assert sym["append"]["refusals"][0]["price"] == 100.0  # marked at the mid of the moment
    assert list(sym["tripped"]) == ["loss_limit"]  # order_rate cleared; both alert spellings read
    assert sym["feed"]["gaps"] == 1 and sym["feed"]["max_gap_ms"] == 1500.0
    assert sym["feed"]["connection"] == "disconnected" and sym["feed"]["quote_age_ms"] == 12.5
    assert sym["pnl"]["position"] == 1.0 and sym["pnl"]["unrealized_usd"] == pytest.approx(10.0)
    assert sym["pnl"]["net_usd"] == pytest.approx(10.0 - 0.01)
    assert [p[1] for p in sym["append"]["points"]] == [100.0, 110.0]
    assert [c[1:] for c in sym["append"]["changes"]] == [["regime", "UNSTABLE"], ["permission", "BLOCKED"], ["health", "RED"],
                                                         ["regime", "NORMAL"]]
    assert snap["session"]["event_ns"] == T0 + 10 * S and not snap["session"]["ended"]
    json.dumps(snap, allow_nan=False)  # what the page gets is plain JSON


def test_a_delta_carries_only_what_changed_and_nothing_when_nothing_did():
    b = Board()
    b.apply(start())
    first = b.take_delta()
    assert first["type"] == "delta" and "BTCUSDT" in first["symbols"]
    assert b.take_delta() is None
    for i in range(1000):  # a burst: one message for all of it
        b.apply(metrics(T0 + i * S, 100.0 + i))
    delta = b.take_delta()
    assert [p[1] for p in delta["symbols"]["BTCUSDT"]["append"]["points"]] == [100.0 + i for i in range(1000)]
    assert "transitions" not in delta["symbols"]["BTCUSDT"]["append"]
    b.apply(transition(T0 + 2000 * S, "health", "RED", "YELLOW"))
    delta = b.take_delta()
    assert list(delta["symbols"]["BTCUSDT"]["append"]) == ["changes", "transitions"]
    assert delta["symbols"]["BTCUSDT"]["states"]["health"]["state"] == "YELLOW"
    b.apply({"kind": "session_end", "ts_ns": T0 + 2001 * S, "symbol": "", "end_reason": "end of input"})
    delta = b.take_delta()
    assert delta["session"]["ended"] and delta["session"]["end_reason"] == "end of input" and delta["symbols"] == {}


def test_a_snapshot_in_between_deltas_does_not_count_as_a_send():
    b = Board()
    b.apply(start())
    b.apply(metrics(T0 + S, 1.0))
    b.snapshot()
    delta = b.take_delta()
    assert [p[1] for p in delta["symbols"]["BTCUSDT"]["append"]["points"]] == [1.0]


def test_tail_since_returns_the_items_appended_after_a_count_even_past_its_bound():
    t = Tail(3)
    for i in range(5):
        t.append(i)
    assert t.since(3) == [3, 4] and t.since(0) == [2, 3, 4] and t.since(5) == []


def merge(page: dict, msg: dict) -> None:
    """What dashboard.js does with a snapshot or a delta (onBoard)."""
    if msg["type"] == "snapshot":
        page.clear()
    for sym, data in msg["symbols"].items():
        cur = page.setdefault(sym, {"lists": {}})
        for name, items in data["append"].items():
            lst = list(items) if msg["type"] == "snapshot" else cur["lists"].get(name, []) + items
            if lst:  # a list the page never got is an empty one (``d.lists.x || []``)
                cur["lists"][name] = lst[-LIMITS[name]:]
        cur.update({k: v for k, v in data.items() if k != "append"})


def record_stream(draw_kinds: list[int]) -> list[dict]:
    out = [start()]
    ts = T0
    states = {"regime": "UNSTABLE", "health": "RED"}
    for i, k in enumerate(draw_kinds):
        ts += S // 4
        if k == 0:
            out.append(metrics(ts, 100.0 + i))
        elif k == 1:
            machine = "regime" if i % 2 else "health"
            new = f"S{i}"
            out.append(transition(ts, machine, states[machine], new))
            states[machine] = new
        elif k == 2:
            out.append(fill(ts, "buy" if i % 3 else "sell", 0.5, 100.0 + i, 0.0, order_id=f"o{i}"))
        else:
            out.append({"kind": "feed", "ts_ns": ts, "symbol": "", "event": "gap", "detail": None, "gap_ms": float(i)})
    return out


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.integers(0, 3), max_size=300), cuts=st.lists(st.integers(0, 301), max_size=12),
       join=st.integers(0, 301))
def test_a_page_that_merges_snapshot_and_deltas_holds_what_a_fresh_snapshot_holds(kinds, cuts, join):
    """Whenever the page joins and however the records are batched, snapshot + deltas == the
    board's own final snapshot (lists bounded the same way)."""
    records = record_stream(kinds)
    b = Board()
    page: dict = {}
    joined = False
    bounds = sorted({min(c, len(records)) for c in cuts} | {len(records)})
    lo = 0
    for hi in bounds:
        for r in records[lo:hi]:
            b.apply(r)
        lo = hi
        delta = b.take_delta()  # the server flushes before a page joins
        if joined and delta is not None:
            merge(page, delta)
        if not joined and hi >= min(join, len(records)):
            merge(page, b.snapshot())
            joined = True
    final = b.snapshot()
    expected: dict = {}
    merge(expected, final)
    assert page == expected


# --- PnL ----------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(trades=st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 50), st.integers(90, 110)),
                       min_size=1, max_size=40),
       mark=st.integers(90, 110))
def test_pnl_shown_equals_cash_flow_plus_the_position_marked_at_the_mid(trades, mark):
    """Average-cost accounting splits PnL into realized and unrealized; their sum must be the
    brute-force figure: every cash flow plus the position valued at the mid."""
    b = Board()
    b.apply(start())
    cash, pos = 0.0, 0.0
    for i, (side, qty_units, price) in enumerate(trades):
        qty = qty_units / 10
        sgn = 1 if side == "buy" else -1
        cash -= sgn * qty * price
        pos += sgn * qty
        b.apply(fill(T0 + i, side, qty, float(price), pos, order_id=f"o{i}"))
    b.apply(metrics(T0 + len(trades), float(mark)))
    pnl = b.snapshot()["symbols"]["BTCUSDT"]["pnl"]
    assert pnl["position"] == pytest.approx(pos)
    assert pnl["realized_usd"] + pnl["unrealized_usd"] == pytest.approx(cash + pos * mark, abs=1e-6)
    assert pnl["net_usd"] == pytest.approx(cash + pos * mark - 0.01 * len(trades), abs=1e-6)


# --- thresholds drawn on the charts --------------------------------------------------------

def test_guard_thresholds_read_comparisons_of_metrics_with_params_and_numbers():
    params = {"a": 5.0, "r": 0.5, "flag": True}
    found = guard_thresholds("metrics.spread_bps >= params.a or 2 * params.a < metrics.x "
                             "and not (metrics.age < 1000) and metrics.y < params.a * params.r "
                             "and metrics.z > metrics.spread_bps and metrics.w > params.flag "
                             "and metrics.v > params.a / 0", params)
    assert sorted(found) == [("age", "<", 1000.0), ("spread_bps", ">=", 5.0), ("x", ">", 10.0), ("y", "<", 2.5)]
    assert guard_thresholds("metrics.x >", params) == []  # not an expression: nothing drawn


def test_the_default_machines_thresholds_are_the_params_in_force_with_overrides():
    session = load_session(None, ["regime.unstable_spread_bps=7"])
    lines = thresholds(session.machine_set)
    spread = {(x["op"], x["value"]) for x in lines["spread_bps"]}
    assert (">=", 7.0) in spread and ("<", 7.0 * 0.7) in spread
    assert any("regime #1" in label for x in lines["spread_bps"] for label in x["labels"])
    charted = charted_metrics(session.machine_set)
    assert charted[:2] == ["mid", "spread_bps"] and "quote_age_ms" in charted


# --- the time slider -------------------------------------------------------------------------

def test_the_board_at_a_time_is_the_board_of_the_records_up_to_it_in_any_order_of_moves(monkeypatch):
    monkeypatch.setattr(history_module, "CHECKPOINT_EVERY", 7)
    records = record_stream([i % 4 for i in range(120)])
    # an engine record logged with an earlier time than the one before it
    records.insert(50, dict(metrics(records[49]["ts_ns"] - 1, 42.0)))
    h = History(records, ["mid", "spread_bps"])
    times = [h.start_ns + k * S // 3 for k in range(0, 45, 4)] + [h.end_ns, h.start_ns - 1]
    for at in times + list(reversed(times)) + times[::3]:
        expected = Board(["mid", "spread_bps"])
        for r in records:
            if r["ts_ns"] > at and r is not records[50]:
                break
            expected.apply(r)
        got = h.snapshot_at(at)
        assert got["at_ns"] == at
        want = expected.snapshot()
        assert json.dumps(got["symbols"], sort_keys=True) == json.dumps(want["symbols"], sort_keys=True)
        assert got["session"]["records"] == want["session"]["records"]
    assert h.marks() == [r["ts_ns"] for r in records if r["kind"] == "transition"]


def test_history_does_not_change_the_records_it_was_given():
    records = record_stream([0, 1, 2, 3] * 5)
    before = copy.deepcopy(records)
    History(records, ["mid"]).snapshot_at(10**30)
    assert records == before
