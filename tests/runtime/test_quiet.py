"""The interval evaluation that lets the clock jump over a gap, against brute force: whatever
it claims for a span of ticks (a constant, bounds, or a boolean that cannot change) must hold at
every tick of the span, computed by the engine's own compiled expressions."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from framework.runtime.quiet import _BOTH, _UNKNOWN, SpanEval, _Iv, last_quiet_tick
from framework.spec.expr import NUM, STR, Binding, Env, ExprError, InputType, compile_expr

NS = 1_000_000_000
TICK = 100_000_000

numbers = st.sampled_from(["0", "1", "2.5", "-3", "1000", "2000", "0.001", "1e6"])
leaves = st.one_of(numbers, st.sampled_from(["metrics.quote_age_ms", "metrics.spread_bps", "time_in_state()",
                                             "params.k"]))
states = st.sampled_from(["regime.state in ['FAST', 'UNSTABLE']", "regime.state not in ['FAST']",
                          "regime.state == 'NORMAL'", "regime.state != 'NORMAL'"])


def num_expr(depth: int = 3):
    if depth == 0:
        return leaves
    sub = num_expr(depth - 1)  # the num_expr(2) and bool_expr(2) used below keep examples small
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "%"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["abs", "sqrt", "log", "exp"]), sub).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sub, numbers, numbers).map(lambda t: f"clip({t[0]}, {t[1]}, {t[2]})"),
        sub.map(lambda s: f"-{s}"),
    )


def bool_expr(depth: int = 2):
    ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    cmp = st.one_of(
        st.tuples(num_expr(2), ops, num_expr(2)).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(num_expr(1), ops, num_expr(1), ops, num_expr(1)).map(lambda t: f"({' '.join(t)})"),  # chained
        states)
    if depth == 0:
        return cmp
    sub = bool_expr(depth - 1)
    return st.one_of(cmp, st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
                     sub.map(lambda s: f"(not {s})"),
                     st.tuples(sub, sub, sub).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"))


ENV = Env(inputs={"metrics.quote_age_ms": InputType(NUM), "metrics.spread_bps": InputType(NUM),
                  "regime.state": InputType(STR, frozenset({"NORMAL", "FAST", "UNSTABLE"}))},
          params={"k": 2.5}, timers=True)


def _same(a, b) -> bool:
    return (a != a and b != b) or (a == b and type(a) is type(b)) or (a == b and not isinstance(a, bool))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(num_expr(2), bool_expr(1)), qts_ago=st.integers(0, 5000 * 10**6),
       entered_ago=st.integers(0, 50 * NS), ticks=st.integers(0, 40), spread=st.sampled_from([1.5, math.nan, 0.0]))
def test_what_the_span_evaluation_claims_holds_at_every_tick(text, qts_ago, entered_ago, ticks, spread):
    try:
        expr = compile_expr(text, ENV)
    except ExprError:  # a constant the checker refuses (log(0) folds to -inf)
        assume(False)
    t0 = 1_723_161_254_000_000_000
    t1 = t0 + ticks * TICK
    qts, entered = t0 - qts_ago, t0 - entered_ago
    values = {"quote_age_ms": 0.0, "spread_bps": spread}
    regime = {"state": "FAST"}
    clock = {"now": t0}
    fn = expr.bind(Binding({"metrics": values, "regime": regime}, time_in_state=lambda: (clock["now"] - entered) / NS))

    def lookup(name):
        if name == "metrics.quote_age_ms":
            return _Iv((t0 - qts) * 1e-6, (t1 - qts) * 1e-6) if t1 > t0 else (t0 - qts) * 1e-6
        if name == "regime.state":
            return regime["state"]
        return spread

    def call(name, args):
        return _Iv((t0 - entered) / NS, (t1 - entered) / NS) if t1 > t0 else (t0 - entered) / NS

    claim = SpanEval(lookup, call).run(expr)
    for t in range(t0, t1 + 1, TICK):
        clock["now"] = t
        values["quote_age_ms"] = (t - qts) * 1e-6
        v = fn()
        if claim is _BOTH or claim is _UNKNOWN:
            continue
        if type(claim) is _Iv:
            assert v == v and claim.lo <= v <= claim.hi, (text, t, v, claim.lo, claim.hi)
        else:
            assert _same(claim, v), (text, t, v, claim)


@given(change_at=st.integers(0, 10_000), end=st.integers(0, 10_000))
def test_bisection_finds_the_last_tick_before_a_change(change_at, end):
    calls = []

    def prove(a, b):
        calls.append((a, b))
        return b < change_at

    last = last_quiet_tick(prove, 0, end, 1)
    assert last == min(end, change_at - 1)
    assert len(calls) <= 2 + math.ceil(math.log2(end + 2))  # O(log gap) proofs
