"""Queue-position models: the arithmetic against brute-force references, and the engine running
one model as the acting one and the others as shadows on the same passive orders."""

import itertools
import math
from fractions import Fraction

import pytest
from exec_helpers import MS, S, engine, intent, kinds, quote, trade
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.execution import ExecutionConfig
from framework.execution.queue import (
    BUILTIN_MODELS,
    QueueModelSpec,
    ahead_share,
    prob_front_after_decrease,
)
from framework.spec.errors import SpecErrors

LINEAR = QueueModelSpec("linear", "power", n=1.0)
EPS = 1e-5

# ------------------------------------------------------------------ the arithmetic, one step


@given(front=st.integers(0, 7), back=st.integers(0, 7), data=st.data())
@settings(max_examples=150, deadline=None)
def test_linear_model_is_the_mean_of_every_way_to_cancel_units_at_random(front, back, data):
    """Brute force: with f(x) = x, the part ahead of a decrease of d units is the mean over every
    choice of d units of the level (each unit as likely to be cancelled as any other)."""
    level = front + back
    d = data.draw(st.integers(0, level))
    units = ["front"] * front + ["back"] * back
    combos = list(itertools.combinations(range(level), d))
    mean_front_after = Fraction(sum(front - sum(units[i] == "front" for i in c) for c in combos), len(combos))
    got = prob_front_after_decrease(LINEAR, float(front), float(level), float(level - d), 0.0)
    assert got == pytest.approx(float(mean_front_after), abs=1e-9)


def _reference_front(n: int | None, front: Fraction, before: Fraction, after: Fraction, traded: Fraction) -> Fraction:
    """Exact rational reference: split the unexplained decrease between ahead and behind in the
    ratio f(front) : f(back); what the back cannot hold comes from the front; clamp to [0, after]."""
    change = before - after - traded
    if change <= 0:
        return max(min(front, after), Fraction(0))
    back = max(before - front, Fraction(0))
    if n is None:  # log: irrational; compared in floats by the caller
        raise NotImplementedError
    ff, fb = front ** n, back ** n
    ahead = change * ff / (ff + fb) if ff + fb > 0 else Fraction(0)
    behind = change - ahead
    if behind > back:
        ahead += behind - back
    return max(min(front - ahead, after), Fraction(0))


quantities = st.fractions(min_value=0, max_value=50, max_denominator=1000)


@given(n=st.sampled_from([1, 2, 3]), front=quantities, back=quantities, after=quantities, traded=quantities)
@settings(max_examples=300, deadline=None)
def test_power_models_against_exact_rational_arithmetic(n, front, back, after, traded):
    spec = QueueModelSpec("p", "power", n=float(n))
    before = front + back
    want = _reference_front(n, front, before, after, traded)
    got = prob_front_after_decrease(spec, float(front), float(before), float(after), float(traded))
    assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9)


@given(front=st.floats(0, 100), back=st.floats(0, 100))
def test_log_share_is_the_documented_ratio(front, back):
    share = ahead_share(BUILTIN_MODELS["log"], front, back)
    if front == 0 and back == 0:
        assert share == 0.0
    else:
        assert share == pytest.approx(math.log1p(front) / (math.log1p(front) + math.log1p(back)))


def test_a_large_front_draws_the_cancellations_and_more_so_with_a_higher_power():
    shares = [ahead_share(BUILTIN_MODELS[m], 9.0, 1.0) for m in ("log", "linear", "power2", "power3")]
    assert shares == sorted(shares) and shares[0] > 0.5 and shares[-1] > 0.99


def test_huge_levels_do_not_overflow_the_power():
    spec = QueueModelSpec("p", "power", n=90.0)
    assert ahead_share(spec, 1e300, 1.0) == 1.0
    assert ahead_share(spec, 1.0, 1e300) == 0.0


# ------------------------------------------------------------------ sequences of events


events = st.lists(st.one_of(
    st.tuples(st.just("trade"), st.integers(1, 6)),  # a print at our price, other-side aggressor
    st.tuples(st.just("cancel_back"), st.integers(1, 6)),  # someone behind us cancels
    st.tuples(st.just("cancel_front"), st.integers(1, 6)),  # someone ahead of us cancels
    st.tuples(st.just("join"), st.integers(1, 6)),  # someone joins behind us
), max_size=40)


def _run(spec: QueueModelSpec, ahead: int, qty: int, seq):
    """Feed a queue position the level and prints of an explicit FIFO queue of unit lots
    (brute force: the truth of who is ahead); returns (filled, fronts seen, true fronts)."""
    pos = spec.position("buy", 100.0, EPS)
    lots = ["x"] * ahead + ["us"]  # the FIFO at our price, ours included
    pos.place(float(ahead), 0.0)
    filled = 0
    fronts, truth = [], []
    for kind, k in seq:
        others = [i for i, v in enumerate(lots) if v != "us"]
        us = lots.index("us") if "us" in lots else len(lots)
        if kind == "trade":
            got, how = pos.on_trade(100.0, float(k), "sell")
            take = min(got, qty - filled)
            filled += take
            n = 0
            while lots and n < k:  # the print takes from the head of the queue
                v = lots.pop(0)
                if v == "us":
                    lots.insert(0, "us")
                    break
                n += 1
        elif kind == "cancel_back":
            behind = [i for i in others if i > us]
            for i in reversed(behind[-k:]):
                lots.pop(i)
        elif kind == "cancel_front":
            ahead_idx = [i for i in others if i < us]
            for i in reversed(ahead_idx[:k]):
                lots.pop(i)
        else:
            lots.extend(["x"] * k)
        level = sum(1 for v in lots if v != "us")
        pos.on_level(float(level))
        fronts.append(pos.front)
        truth.append(lots.index("us") if "us" in lots else 0)
    return filled, fronts, truth


@given(ahead=st.integers(0, 10), qty=st.integers(1, 5), seq=events)
@settings(max_examples=200, deadline=None)
def test_conservative_front_is_the_true_front_when_cancellations_are_behind(ahead, qty, seq):
    """Against the brute-force FIFO: with every cancellation behind us the conservative model
    knows the exact queue ahead, and fills exactly what the prints left after it."""
    seq = [(k, n) for k, n in seq if k != "cancel_front"]
    filled, fronts, truth = _run(BUILTIN_MODELS["conservative"], ahead, qty, seq)
    assert fronts == [float(t) for t in truth]
    traded = sum(n for k, n in seq if k == "trade")
    assert filled == min(qty, max(traded - ahead, 0))


@given(ahead=st.integers(0, 10), qty=st.integers(1, 5), seq=events)
@settings(max_examples=200, deadline=None)
def test_probabilistic_fronts_stay_within_the_level_and_never_behind_the_conservative_one(ahead, qty, seq):
    cons_filled, cons_fronts, truth = _run(BUILTIN_MODELS["conservative"], ahead, qty, seq)
    for name in ("linear", "power2", "power3", "log"):
        filled, fronts, _ = _run(BUILTIN_MODELS[name], ahead, qty, seq)
        assert filled >= cons_filled
        prev = float(ahead)
        for f, c in zip(fronts, cons_fronts, strict=True):
            assert 0.0 <= f <= prev + 1e-12  # the front never moves back
            assert f <= c + 1e-9  # a cancellation can only help
            prev = f


# ------------------------------------------------------------------ the engine

BID, ASK = 100.0, 100.1
SHADOWS = {"passive": {"queue": {"model": "conservative", "shadows": ["linear", "power2", "log", "quote_through"]}}}


def resting_buy(qty=1.0, bid_qty=3.0, **sections):
    e, recs = engine(**sections)
    e.on_quote(quote(0, BID, bid_qty, ASK, 2.0))
    e.submit(intent("buy", qty * (BID + ASK) / 2, "passive"), 0, {"regime": "NORMAL"})
    e.on_tick(11 * MS)
    return e, recs


def test_a_cancellation_ahead_fills_the_probabilistic_model_and_not_the_conservative_one():
    e, recs = resting_buy(qty=1.0, bid_qty=3.0, passive={"queue": {"model": "power2"}})
    e.on_quote(quote(20 * MS, BID, 0.5, ASK, 2.0))  # 2.5 gone at our price with no print
    assert e.open_orders[0]["queue_ahead"] == pytest.approx(0.5, abs=0.01)  # most of it from ahead
    e.on_trade(trade(30 * MS, BID, 1.5, "sell"))
    (fill,) = kinds(recs, "fill")
    assert fill["how"] == "queue_consumed" and fill["qty"] == pytest.approx(1.0)
    assert fill["plausible"] is False  # it relies on the cancellation assumption, and says so

    c, crecs = resting_buy(qty=1.0, bid_qty=3.0)
    c.on_quote(quote(20 * MS, BID, 0.5, ASK, 2.0))
    c.on_trade(trade(30 * MS, BID, 1.5, "sell"))
    assert not kinds(crecs, "fill") and c.open_orders[0]["queue_ahead"] == 1.5


def test_the_level_emptied_under_us_puts_the_probabilistic_front_at_zero():
    e, recs = resting_buy(qty=1.0, bid_qty=3.0, passive={"queue": {"model": "log"}})
    e.on_quote(quote(20 * MS, 99.9, 4.0, 100.1, 2.0))  # best bid below ours: nobody else at 100.0
    assert e.open_orders[0]["queue_ahead"] == 0.0
    e.on_trade(trade(30 * MS, BID, 0.25, "sell"))
    assert kinds(recs, "fill")[0]["qty"] == pytest.approx(0.25)


def test_a_quote_reaching_our_price_fills_the_rest_with_the_option_and_only_with_it():
    e, recs = resting_buy(qty=1.0, bid_qty=3.0, passive={"queue": {"model": "quote_through"}})
    e.on_quote(quote(20 * MS, 99.9, 1.0, 100.0, 2.0))  # a resting seller at our bid
    (fill,) = kinds(recs, "fill")
    assert fill["how"] == "quote_through" and fill["price"] == BID and fill["done"]
    assert fill["ts_ns"] == 20 * MS and fill["liquidity"] == "maker"
    c, crecs = resting_buy(qty=1.0, bid_qty=3.0)
    c.on_quote(quote(20 * MS, 99.9, 1.0, 100.0, 2.0))
    assert not kinds(crecs, "fill")


def test_depth_levels_replace_the_top_of_book_once_given():
    e, recs = resting_buy(qty=1.0, bid_qty=3.0, passive={"queue": {"model": "linear"}})
    e.on_quote(quote(15 * MS, 100.05, 1.0, ASK, 2.0))  # someone improved: our level is not visible
    e.on_level("bid", 100.0, 3.0)  # ... but the book shows it
    e.on_level("bid", 100.0, 1.5)  # half of it cancelled, nobody behind us: all from ahead
    assert e.open_orders[0]["queue_ahead"] == pytest.approx(1.5)
    e.on_level("bid", 100.0, 5.0)  # 3.5 joined behind us
    e.on_level("bid", 100.0, 4.0)  # 1.0 cancelled: linear share ahead 1.5 / (1.5 + 3.5)
    assert e.open_orders[0]["queue_ahead"] == pytest.approx(1.5 - 0.3)
    e.on_level("ask", 100.0, 0.0)  # the other side: no effect
    e.on_quote(quote(30 * MS, 100.0, 9.0, ASK, 2.0))  # quotes no longer feed the queue
    assert e.open_orders[0]["queue_ahead"] == pytest.approx(1.2)


def test_the_level_at_placement_can_come_from_the_book():
    book = {("bid", 99.99): 2.0}
    e, recs = engine(passive={"queue": {"model": "power2"}})
    e.set_level_source(lambda side, price: book.get((side, round(price, 2))))
    e.on_quote(quote(0, BID, 3.0, ASK, 2.0))
    e.submit(intent("buy", 100.0, "passive", limit_offset_ticks=1), 0)  # behind the touch, at 99.99
    e.on_tick(11 * MS)
    (ack,) = kinds(recs, "ack")
    assert (ack["placement"], ack["queue_ahead"]) == ("behind", 2.0)  # known from the book, not unknown
    e.on_quote(quote(20 * MS, 99.99, 7.0, 100.0, 1.0))  # quotes no longer feed the levels
    assert e.open_orders[0]["queue_ahead"] == 2.0


def _shadow_run(sections):
    e, recs = resting_buy(qty=1.0, bid_qty=3.0, **sections)
    e.on_quote(quote(20 * MS, BID, 1.0, ASK, 2.0))  # 2.0 left the level without a print
    e.on_trade(trade(30 * MS, BID, 1.5, "sell"))
    e.on_quote(quote(40 * MS, 99.9, 1.0, 100.0, 2.0))  # then a seller rests at our price
    e.on_trade(trade(50 * MS, 99.9, 1.0, "sell"))
    e.on_tick(60 * S)
    e.close(61 * S)
    return e, recs


def test_shadows_change_nothing_the_acting_model_writes_and_report_their_own_fills():
    e, recs = _shadow_run(SHADOWS)
    plain, plain_recs = _shadow_run({})
    def strip(rs):
        return [{k: v for k, v in r.items() if k != "queue_models"} for r in rs]
    assert strip(recs) == strip(plain_recs)  # the acting model's records, to the byte
    assert [r["queue_models"] for r in kinds(plain_recs, "order_result")] == [None]
    (res,) = kinds(recs, "order_result")
    assert [m["model"] for m in res["queue_models"]] == ["conservative", "linear", "power2", "log", "quote_through"]
    qm = {m["model"]: m for m in res["queue_models"]}
    assert qm["conservative"]["filled_qty"] == res["filled_qty"]
    assert qm["conservative"]["markout_bps"] == res["markout_bps"]
    # conservative: 1.5 printed against 3.0 ahead, then a print through our price fills 1.0
    assert res["filled_qty"] == pytest.approx(1.0) and res["filled_qty_by_how"] == {"trade_through": 1.0}
    # the probabilistic models moved up on the 2.0 cancelled: part of the 1.5 print was ours
    for name in ("linear", "power2", "log"):
        assert qm[name]["n_fills"] == 2 and qm[name]["filled_qty"] == pytest.approx(1.0)
    assert qm["quote_through"]["n_fills"] == 1  # the seller quoted at our price filled it at 40 ms
    assert all(m["fill_ratio"] == pytest.approx(1.0) for m in qm.values())
    assert kinds(plain_recs, "order_result")[0]["queue_models"] is None


def test_a_shadow_rests_on_after_the_acting_model_filled_until_the_ttl():
    sections = {"passive": {"ttl_s": 5, "queue": {"model": "quote_through", "shadows": ["conservative"]}}}
    e, recs = resting_buy(qty=1.0, bid_qty=3.0, **sections)
    e.on_quote(quote(20 * MS, 99.9, 1.0, 100.0, 2.0))  # acting: filled at once
    assert kinds(recs, "fill") and not kinds(recs, "order_result") and not e.idle
    assert e.next_wakeup_ns() is None  # the shadow still needs every event
    e.on_trade(trade(2 * S, 99.8, 0.3, "sell"))  # through our price: the shadow fills 0.3
    e.on_tick(40 * S)
    (res,) = kinds(recs, "order_result")
    acting, shadow = res["queue_models"]
    assert (acting["model"], acting["filled_qty"]) == ("quote_through", pytest.approx(1.0))
    assert (shadow["model"], shadow["filled_qty"]) == ("conservative", pytest.approx(0.3))
    assert e.idle


def test_unknown_or_repeated_queue_models_are_refused():
    with pytest.raises(SpecErrors, match="unknown queue model 'pow2'"):
        ExecutionConfig.from_dict({"passive": {"queue": {"model": "pow2"}}})
    with pytest.raises(SpecErrors, match="is the acting model"):
        ExecutionConfig.from_dict({"passive": {"queue": {"model": "log", "shadows": ["log"]}}})
    with pytest.raises(SpecErrors):
        ExecutionConfig.from_dict({"passive": {"queue": {"models": {"x": {"kind": "cubic"}}}}})
    cfg = ExecutionConfig.from_dict({"passive": {"cancel_ahead_fraction": 0.25, "queue": {
        "model": "mine", "shadows": ["conservative"], "models": {"mine": {"kind": "power", "n": 1.5}}}}})
    acting, shadow = cfg.passive.queue_models()
    assert (acting.kind, acting.n, shadow.cancel_ahead_fraction) == ("power", 1.5, 0.25)


def test_the_schema_lists_the_built_in_models():
    from framework.spec.schema import schema

    listed = schema("execution")["properties"]["passive"]["properties"]["queue"]["x-builtin-models"]
    assert listed == list(BUILTIN_MODELS)


def test_a_session_naming_an_unknown_queue_model_fails_at_its_line(tmp_path):
    import subprocess
    import sys

    from tests.support import REPO

    text = (REPO / "configs" / "queue-models.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("../data/", f"{REPO}/data/").replace(
        "shadows: [linear, power2, power3, log, quote_through]", "shadows: [linear, powr2, conservative]"))
    lines = bad.read_text().splitlines()
    row = next(i for i, line in enumerate(lines, 1) if "powr2" in line)
    for cmd in ("validate", "run"):
        r = subprocess.run([sys.executable, "-m", "framework.cli", cmd, str(bad)], capture_output=True, text=True,
                           cwd=tmp_path)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert f"{bad}:{row}:" in r.stderr + r.stdout and "unknown queue model 'powr2'" in r.stderr + r.stdout
        assert "'conservative' is the acting model" in r.stderr + r.stdout
        assert "Traceback" not in r.stderr
