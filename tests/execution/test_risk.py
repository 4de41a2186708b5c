"""Risk guardrails: pre-trade checks, alerts on trip and clear, the latching kill switch."""

from exec_helpers import MS, S, engine, intent, kinds, quote

from framework.execution import RiskConfig, RiskGuard


def guard(**kw) -> RiskGuard:
    return RiskGuard(RiskConfig.from_dict(kw), metrics={"quote_age_ms": 0.0})


def update(g: RiskGuard, ts: int, e, mid: float, quote_age_ms: float) -> list[dict]:
    """One update of the guard, with the quote age its stale guard reads."""
    g.metrics["quote_age_ms"] = quote_age_ms
    return g.update(ts, e, mid)


def fresh(e):
    e.on_quote(quote(0, 99.9, 100.0, 100.1, 100.0))
    return e


def test_values_is_one_dict_updated_in_place():
    g = guard()
    e, _ = engine()
    fresh(e)
    v = g.values
    update(g, 0, e, 100.0, 0.0)
    assert g.values is v and v["stale"] is False and v["kill_switch"] is False
    for k in ("kill_switch", "position_notional_usd", "pnl_usd", "drawdown_usd", "orders_in_window", "stale", "tripped"):
        assert k in v


def test_max_order_notional_refuses_a_large_intent():
    g = guard(max_order_notional_usd=500)
    e, _ = engine()
    fresh(e)
    update(g, 0, e, 100.0, 0.0)
    assert g.check(intent("buy", 600), e, 0, 100.0) == "max_order_notional"
    assert g.check(intent("buy", 400), e, 0, 100.0) is None


def test_max_position_counts_open_orders_and_allows_reducing():
    g = guard(max_position_notional_usd=1000, max_order_notional_usd=1000)
    e, _ = engine()
    fresh(e)
    update(g, 0, e, 100.0, 0.0)
    e.submit(intent("buy", 700, "passive"), 0, {})
    assert g.check(intent("buy", 400), e, 1, 100.0) == "max_position_notional"
    assert g.check(intent("sell", 900), e, 1, 100.0) is None


def test_order_rate_throttles_within_the_window_and_frees_after_it():
    g = guard(max_orders=2, order_window_s=10)
    e, recs = engine()
    fresh(e)
    update(g, 0, e, 100.0, 0.0)
    e.submit(intent("buy", 10), 1 * S, {})
    e.submit(intent("sell", 10), 2 * S, {})
    assert g.check(intent("buy", 10), e, 3 * S, 100.0) == "order_rate"
    alerts = update(g, 3 * S, e, 100.0, 0.0)
    assert [(a["guard"], a["state"]) for a in alerts] == [("order_rate", "trip")]
    assert g.values["orders_in_window"] == 2 and g.values["tripped"] == "order_rate"
    assert g.check(intent("buy", 10), e, 11 * S + 1, 100.0) is None
    alerts = update(g, 12 * S, e, 100.0, 0.0)
    assert [(a["guard"], a["state"]) for a in alerts] == [("order_rate", "clear")]
    assert g.values["tripped"] == ""


def test_stale_data_trips_and_clears_with_one_alert_each():
    g = guard(stale_quote_ms=1000)
    e, _ = engine()
    fresh(e)
    assert update(g, 0, e, 100.0, 10.0) == []
    a1 = update(g, 1, e, 100.0, 1500.0)
    assert update(g, 2, e, 100.0, 1600.0) == []  # still stale: no new alert
    assert g.check(intent("buy", 10), e, 2, 100.0) == "stale_data"
    a2 = update(g, 3, e, 100.0, 5.0)
    assert [(a["guard"], a["state"]) for a in a1 + a2] == [("stale_data", "trip"), ("stale_data", "clear")]
    assert all(a["kind"] == "alert" and a["symbol"] == "BTCUSDT" for a in a1 + a2)


def losing_engine():
    """Long 10 @ 100.1 (taker, no fees) so the mark decides the PnL."""
    e, recs = engine(fees={"maker_bps": 0, "taker_bps": 0})
    fresh(e)
    e.submit(intent("buy", 1000.0), 0, {})
    e.on_tick(20 * MS)
    return e, recs


def test_loss_limit_trips_the_kill_switch_which_latches_for_the_session():
    g = guard(loss_limit_usd=50, max_drawdown_usd=1000, max_position_notional_usd=1e6)
    e, recs = losing_engine()
    e.submit(intent("sell", 100.0, "passive", ttl_s=100), 30 * MS, {})
    e.on_tick(50 * MS)
    assert update(g, S, e, 100.0, 0.0) == []
    alerts = update(g, 2 * S, e, 94.0, 0.0)  # 10 * (94 - 100.1) = -61
    assert [(a["guard"], a["state"]) for a in alerts] == [("loss_limit", "trip"), ("kill_switch", "trip")]
    assert g.values["kill_switch"] and g.values["pnl_usd"] < -50
    assert g.check(intent("sell", 10), e, 2 * S, 94.0) == "kill_switch"
    e.on_tick(3 * S)  # open orders were cancelled by the kill switch
    assert [c["reason"] for c in kinds(recs, "cancel")] == ["kill_switch"]
    alerts = update(g, 4 * S, e, 120.0, 0.0)  # PnL recovers: the guard clears, the switch stays
    assert [(a["guard"], a["state"]) for a in alerts] == [("loss_limit", "clear")]
    assert g.values["kill_switch"] is True
    assert update(g, 1000 * S, e, 120.0, 0.0) == []


def test_drawdown_from_the_high_water_mark_and_a_timed_reset():
    g = guard(max_drawdown_usd=30, loss_limit_usd=1000, kill_switch_reset_s=5, max_position_notional_usd=1e6)
    e, _ = losing_engine()
    update(g, 1 * S, e, 110.0, 0.0)  # +99: new high-water mark
    alerts = update(g, 2 * S, e, 106.0, 0.0)  # 59: drawdown 40
    assert [(a["guard"], a["state"]) for a in alerts] == [("max_drawdown", "trip"), ("kill_switch", "trip")]
    assert abs(g.values["drawdown_usd"] - 40.0) < 1e-6 and abs(g.values["peak_pnl_usd"] - 99.0) < 1e-6
    assert update(g, 3 * S, e, 110.0, 0.0)[0]["state"] == "clear"  # guard clears; switch waits 5 s
    assert update(g, 7 * S, e, 110.0, 0.0) == []
    alerts = update(g, 8 * S, e, 110.0, 0.0)
    assert [(a["guard"], a["state"]) for a in alerts] == [("kill_switch", "clear")]
    assert g.check(intent("sell", 10), e, 8 * S, 110.0) is None


def test_a_mark_raised_between_updates_moves_the_drawdown_at_an_unchanged_mid():
    """The replay fast path shows the guard the PnL of mids it skipped (``see_pnl``): the next
    update, at the same mid and money as the last, measures the drawdown from the new mark."""
    g = guard(max_drawdown_usd=1e6, loss_limit_usd=1e6, max_position_notional_usd=1e6)
    e, _ = losing_engine()
    update(g, 1 * S, e, 110.0, 0.0)
    pnl = g.values["pnl_usd"]
    assert g.values["drawdown_usd"] == 0.0
    g.see_pnl(pnl + 25.0)  # a higher mid, skipped
    update(g, 2 * S, e, 110.0, 0.0)
    assert g.values["peak_pnl_usd"] == pnl + 25.0 and g.values["drawdown_usd"] == (pnl + 25.0) - pnl


def test_a_manual_reset_clears_the_kill_switch():
    g = guard(loss_limit_usd=50)
    e, _ = losing_engine()
    update(g, 1 * S, e, 90.0, 0.0)
    assert g.values["kill_switch"]
    assert g.reset_kill_switch(2 * S)[0]["state"] == "clear"
    assert not g.values["kill_switch"]


def test_a_reload_keeps_the_kill_switch_and_the_flags_and_reads_the_new_metrics():
    from framework.execution.risk import default_risk_machine

    g = guard(loss_limit_usd=50)
    e, _ = losing_engine()
    assert [a["guard"] for a in update(g, 1 * S, e, 90.0, 0.0)] == ["loss_limit", "kill_switch"]
    metrics = {"quote_age_ms": 0.0}
    g.rebind(default_risk_machine(RiskConfig.from_dict({"loss_limit_usd": 60, "stale_quote_ms": 100})), metrics)
    assert g.values["kill_switch"] and g.machine.state == "TRIPPED" and g.tripped == {"loss_limit"}
    metrics["quote_age_ms"] = 150.0  # the new metric values and the new limit
    assert [(a["guard"], a["state"], a["limit"]) for a in g.update(2 * S, e, 90.0)] == [("stale_data", "trip", 100)]


def test_the_account_after_every_update_is_what_a_full_recompute_gives(tmp_path):
    """``update`` skips the PnL figures when neither money nor mid moved, and the order count
    until an order enters or leaves the window: after every update of a real session with
    orders and fills, the account is what computing everything afresh gives."""
    from framework.market.replay import open_replay
    from framework.runtime.pipeline import Runtime
    from framework.spec import workspace
    from framework.spec.session import load_session

    session = load_session(workspace.default_config())
    runtime = Runtime(session, lambda r: None)
    (pipeline,) = runtime.pipelines.values()
    risk, engine = pipeline.risk, pipeline.engine
    update = risk.update
    checked = {"updates": 0, "orders": 0}

    def checked_update(ts_ns, eng, mid):
        alerts = update(ts_ns, eng, mid)
        mid = eng.mid if mid is None else mid
        pnl = eng.realized_pnl + eng.unrealized_pnl(mid) - eng.fees_paid
        want = {"position": eng.position,
                "position_notional_usd": abs(eng.position) * mid if mid is not None else 0.0,
                "realized_pnl_usd": eng.realized_pnl, "unrealized_pnl_usd": eng.unrealized_pnl(mid),
                "fees_usd": eng.fees_paid, "pnl_usd": pnl, "peak_pnl_usd": risk.peak_pnl,
                "drawdown_usd": risk.peak_pnl - pnl,
                "orders_in_window": sum(ts_ns - risk.window_ns < t <= ts_ns for t in eng.submit_times)}
        assert risk.account == want and {k: risk.values[k] for k in want} == want, ts_ns
        checked["updates"] += 1
        checked["orders"] = max(checked["orders"], want["orders_in_window"])
        return alerts

    risk.update = checked_update
    for ev in open_replay(session.resolve(session.source["path"])):
        runtime.feed(ev)
    assert checked["updates"] > 30_000 and engine.orders_submitted > 10 and checked["orders"] >= 2
