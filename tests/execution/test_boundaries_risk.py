"""The risk guard's order window at its exact edges: (ts - order_window_s, ts].

An order decided at exactly ``ts`` is in the window (two intents at the same event time: the
second sees the first); one decided exactly ``order_window_s`` before is out of it.
"""

from exec_helpers import S, engine, intent, quote

from framework.execution import RiskConfig, RiskGuard


def one_order_at(ts: int) -> tuple[RiskGuard, object]:
    """A guard allowing one order in 10 s, fresh quotes (not stale), one order decided at ``ts``."""
    g = RiskGuard(RiskConfig.from_dict({"max_orders": 1, "order_window_s": 10}), metrics={"quote_age_ms": 0.0})
    e, _ = engine()
    e.on_quote(quote(0, 99.9, 100.0, 100.1, 100.0))
    g.update(0, e, 100.0)
    e.submit(intent("buy", 10), ts, {})
    return g, e


def test_an_order_decided_at_exactly_now_is_in_the_window():
    g, e = one_order_at(5 * S)
    assert g.orders_in_window(e, 5 * S) == 1
    assert g.check(intent("buy", 10), e, 5 * S, 100.0) == "order_rate"


def test_an_order_decided_after_now_is_not_in_the_window():
    g, e = one_order_at(5 * S)
    assert g.orders_in_window(e, 5 * S - 1) == 0
    assert g.check(intent("buy", 10), e, 5 * S - 1, 100.0) is None


def test_an_order_exactly_one_window_old_is_out_of_it():
    g, e = one_order_at(5 * S)
    assert g.orders_in_window(e, 15 * S - 1) == 1
    assert g.orders_in_window(e, 15 * S) == 0
    assert g.check(intent("buy", 10), e, 15 * S, 100.0) is None
