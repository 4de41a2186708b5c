"""Exchange rules: Binance filters from exchangeInfo files, applied to paper orders."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from exec_helpers import MS, cfg, engine, intent, kinds
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.execution import PaperEngine
from framework.execution.filters import (
    SymbolRules,
    check_order,
    load_rules,
    parse_exchange_info,
    round_to_step,
    shipped_file,
)
from framework.market.events import Quote
from framework.spec.errors import SpecErrors

REPO = Path(__file__).resolve().parents[2]

steps = st.sampled_from(["0.00001", "0.0001", "0.001", "0.01", "0.1", "1", "0.00000100", "5"])
decimals = st.decimals(min_value="0.00000001", max_value="100000", places=8).map(lambda d: float(d))


def F(x) -> Fraction:
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


@given(decimals, steps, st.sampled_from(["down", "up"]))
def test_round_to_step_is_the_nearest_multiple_in_its_direction(x, step, direction):
    got = F(round_to_step(x, float(step), direction))
    s = F(step)
    assert (got / s).denominator == 1  # an exact multiple of the step, no float residue
    if direction == "down":
        assert got <= F(x) < got + s
    else:
        assert got - s < F(x) <= got


def reference(rules: SymbolRules, style: str, side: str, qty: float, price: float | None, ref: float | None):
    """Brute force with exact fractions: (filter or None, qty, price)."""
    market = style == "take"
    px = None if price is None else F(price)
    if not market and px is not None and rules.tick_size > 0:
        t = F(rules.tick_size)
        n = px / t
        k = n.numerator // n.denominator
        if side == "sell" and k * t != px:
            k += 1
        px = k * t
    if not market and px is not None:
        if px <= 0 or (rules.min_price and px < F(rules.min_price)) or (rules.max_price and px > F(rules.max_price)):
            return "PRICE_FILTER", None, px
    q = F(qty)
    for step in ([rules.step_size] + ([rules.market_step_size] if market else [])):
        if step > 0:
            n = q / F(step)
            q = (n.numerator // n.denominator) * F(step)
    lots = [("LOT_SIZE", rules.min_qty, rules.max_qty)]
    if market:
        lots.append(("MARKET_LOT_SIZE", rules.market_min_qty, rules.market_max_qty))
    for name, lo, hi in lots:
        if q <= 0 or (lo and q < F(lo)) or (hi and q > F(hi)):
            return name, q, px
    r = F(ref) if market else px
    if r:
        notional = q * r
        if (rules.apply_min_to_market or not market) and rules.min_notional and notional < F(rules.min_notional):
            return rules.notional_filter, q, px
        if (rules.apply_max_to_market or not market) and rules.max_notional and notional > F(rules.max_notional):
            return rules.notional_filter, q, px
    return None, q, px


rule_sets = st.builds(
    SymbolRules, symbol=st.just("XUSDT"),
    tick_size=st.sampled_from([0.01, 0.1, 0.5, 1.0]), min_price=st.sampled_from([0.0, 0.01, 100.0]),
    max_price=st.sampled_from([0.0, 1000000.0, 500.0]),
    step_size=st.sampled_from([0.0, 0.00001, 0.001, 0.1]), min_qty=st.sampled_from([0.0, 0.00001, 0.001, 1.0]),
    max_qty=st.sampled_from([0.0, 9000.0, 2.0]), market_step_size=st.sampled_from([0.0, 0.001]),
    market_min_qty=st.sampled_from([0.0, 0.001]), market_max_qty=st.sampled_from([0.0, 120.0, 1.0]),
    min_notional=st.sampled_from([0.0, 5.0, 100.0]), max_notional=st.sampled_from([0.0, 9000000.0, 1000.0]),
    notional_filter=st.sampled_from(["NOTIONAL", "MIN_NOTIONAL"]),
    apply_min_to_market=st.booleans(), apply_max_to_market=st.booleans())


@given(rule_sets, st.sampled_from(["take", "passive"]), st.sampled_from(["buy", "sell"]),
       st.decimals(min_value="0.0000001", max_value="50", places=7).map(float),
       st.decimals(min_value="1", max_value="100000", places=3).map(float))
@settings(max_examples=400)
def test_check_order_agrees_with_a_brute_force_reference(rules, style, side, qty, price):
    limit = price if style == "passive" else None
    got = check_order(rules, style, side, qty, limit, price)
    want_filter, want_qty, want_px = reference(rules, style, side, qty, limit, price)
    assert got.filter == want_filter, (got, want_filter)
    if want_qty is not None:
        assert F(got.qty) == want_qty
    if style == "passive" and want_px is not None:
        assert F(got.price) == want_px
    if got.filter is None:
        assert got.detail == ""
    else:
        assert got.detail  # says why


def test_the_shipped_files_carry_binances_values_for_the_shipped_symbols():
    spot, usdm = load_rules(shipped_file("spot"), "spot"), load_rules(shipped_file("usdm"), "usdm")
    assert set(spot) == set(usdm) == {"BTCUSDT", "ETHUSDT"}
    b = spot["BTCUSDT"]
    assert (b.tick_size, b.step_size, b.min_qty, b.max_qty, b.min_notional, b.notional_filter) == \
        (0.01, 0.00001, 0.00001, 9000.0, 5.0, "NOTIONAL")
    assert (spot["ETHUSDT"].step_size, spot["ETHUSDT"].min_notional) == (0.0001, 5.0)
    f = usdm["BTCUSDT"]
    assert (f.tick_size, f.step_size, f.market_max_qty, f.min_notional, f.notional_filter, f.market) == \
        (0.1, 0.001, 120.0, 100.0, "MIN_NOTIONAL", "usdm")
    assert (usdm["ETHUSDT"].tick_size, usdm["ETHUSDT"].min_notional) == (0.01, 20.0)
    # the files are Binance's exchangeInfo format: the top-level keys of the REST answers
    for name, keys in (("spot", {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"}),
                       ("usdm", {"timezone", "serverTime", "futuresType", "rateLimits", "exchangeFilters", "assets", "symbols"})):
        assert set(json.loads(shipped_file(name).read_text())) == keys


def test_a_broken_exchange_info_file_is_reported_with_its_name(tmp_path):
    p = tmp_path / "info.json"
    p.write_text('{"symbols": [{"symbol": "BTCUSDT", "filters": [{"filterType": "LOT_SIZE", "stepSize": "x"}]}]}')
    with pytest.raises(SpecErrors) as exc:
        load_rules(p)
    assert "info.json" in str(exc.value) and "stepSize" in str(exc.value) and "expected" in str(exc.value)
    with pytest.raises(SpecErrors):
        parse_exchange_info("not json", "x.json")


# --------------------------------------------------------------------------------------------
# in the engine


def spot_quote(ts, bid=61800.0, ask=61800.01, qty=2.0, sym="BTCUSDT", futures=False):
    return Quote(ts_ns=ts, symbol=sym, bid=bid, bid_qty=qty, ask=ask, ask_qty=qty, update_id=ts,
                 event_time_ms=ts // MS if futures else 0)


def test_orders_are_rounded_to_the_lot_step_and_the_tick_on_spot():
    e, recs = engine(exchange_rules={"enabled": True})
    e.on_quote(spot_quote(1))
    e.submit(intent("buy", 500.0, "take"), 1, {})
    e.submit(intent("sell", 500.0, "passive", limit_offset_bps=0.37), 1, {})
    e.on_tick(100 * MS)
    take, passive = kinds(recs, "order")
    assert take["qty_requested"] == pytest.approx(500 / 61800.005)
    assert take["qty"] == 0.00809  # 0.0080906... rounded down to the 0.00001 step
    assert F(passive["limit_price"]) / F("0.01") == int(F(passive["limit_price"]) / F("0.01"))
    assert passive["limit_price"] >= 61800.01  # a sell rounds up: never more aggressive
    assert take["rules"].startswith("exchangeinfo-spot.json")
    assert kinds(recs, "fill")[0]["qty"] == 0.00809


def test_an_order_below_the_minimum_notional_is_rejected_naming_the_filter():
    e, recs = engine(exchange_rules={"enabled": True})
    e.on_quote(spot_quote(1))
    oid = e.submit(intent("buy", 4.0, "take"), 1, {})
    e.on_tick(100 * MS)
    (rej,) = kinds(recs, "reject")
    assert (rej["order_id"], rej["reason"], rej["filter"], rej["stage"]) == (oid, "filter_failure", "NOTIONAL", "exchange")
    assert "minNotional 5" in rej["detail"]
    assert not kinds(recs, "ack") and not kinds(recs, "fill")
    assert e.summary()["rejects"] == {"filter_failure": 1}


def test_usdm_rules_come_from_the_quotes_when_the_market_is_auto():
    e, recs = engine(exchange_rules={"enabled": True})
    t0 = 1_723_161_600_000 * MS
    e.on_quote(spot_quote(t0, bid=61800.0, ask=61800.1, futures=True))
    e.submit(intent("buy", 50.0, "take"), t0, {})  # 0.0008 BTC: below USD-M's 0.001 minimum
    e.submit(intent("buy", 150.0, "passive"), t0, {})
    e.on_tick(t0 + 100 * MS)
    rej = kinds(recs, "reject")
    assert [r["filter"] for r in rej] == ["LOT_SIZE"]
    order = kinds(recs, "order")[1]
    assert order["qty"] == 0.002 and order["rules"].startswith("exchangeinfo-usdm.json")


def test_a_symbol_the_file_does_not_list_runs_on_assumed_rules_that_say_so():
    recs: list[dict] = []
    e = PaperEngine("FOOUSDT", cfg(exchange_rules={"enabled": True, "assume": {"step_size": 0.1, "min_notional": 1}}),
                    recs.append, 7)
    e.on_quote(spot_quote(1, bid=2.0, ask=2.01, sym="FOOUSDT"))
    e.submit(intent("buy", 10.0, "take"), 1, {})
    (order,) = kinds(recs, "order")
    assert order["rules"].startswith("assumed (FOOUSDT not in exchangeinfo-spot.json)")
    assert "step_size 0.1" in order["rules"] and order["qty"] == 4.9


def test_a_configured_file_that_cannot_be_read_stops_the_engine_at_its_start(tmp_path):
    with pytest.raises(SpecErrors) as exc:
        engine(exchange_rules={"enabled": True, "file": str(tmp_path / "missing.json")})
    assert "missing.json" in str(exc.value) and "cannot read exchange rules" in str(exc.value)


def test_rules_off_leaves_quantities_unrounded():
    e, recs = engine(exchange_rules={"enabled": False})
    e.on_quote(spot_quote(1))
    e.submit(intent("buy", 500.0, "take"), 1, {})
    (order,) = kinds(recs, "order")
    assert order["qty"] == order["qty_requested"] == 500 / ((61800.0 + 61800.01) * 0.5) and order["rules"] is None


# --------------------------------------------------------------------------------------------
# the refresh command, against real loopback servers


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_exchange_info_offline_exits_2_and_leaves_the_file(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "info.json"
    out.write_text("{}")
    r = _cli("exchange-info", "--market", "spot", "--symbols", "BTCUSDT", "--out", str(out),
             "--base-url", f"http://127.0.0.1:{port}", "--timeout", "5", cwd=tmp_path)
    assert r.returncode == 2 and "cannot reach" in r.stderr and "unchanged" in r.stderr
    assert out.read_text() == "{}"


def test_exchange_info_writes_the_exchanges_answer(tmp_path):
    body = shipped_file("usdm").read_bytes()
    seen: list[str] = []

    def answer() -> bytes:
        return body

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer())

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "data" / "exchangeinfo-usdm.json"
        r = _cli("exchange-info", "--market", "usdm", "--symbols", "ETHUSDT", "--out", str(out),
                 "--base-url", f"http://127.0.0.1:{srv.server_address[1]}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert seen == ["/fapi/v1/exchangeInfo"]
        assert "ETHUSDT: tick 0.01, step 0.001" in r.stdout
        assert set(load_rules(out, "usdm")) == {"ETHUSDT"}  # only the symbols asked for are kept
        r = _cli("exchange-info", "--market", "usdm", "--symbols", "NOPEUSDT", "--out", str(out),
                 "--base-url", f"http://127.0.0.1:{srv.server_address[1]}", cwd=tmp_path)
        assert r.returncode == 2 and "NOPEUSDT not listed" in r.stderr
        assert set(load_rules(out, "usdm")) == {"ETHUSDT"}  # a refused answer leaves the file as it was
        body = shipped_file("spot").read_bytes()
        r = _cli("exchange-info", "--market", "spot", "--symbols", "BTCUSDT,ETHUSDT", "--out", str(tmp_path / "s.json"),
                 "--base-url", f"http://127.0.0.1:{srv.server_address[1]}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert seen[-1] == "/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D"  # Binance's symbols=[...]
    finally:
        srv.shutdown()
