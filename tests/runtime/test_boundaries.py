"""Comparisons at their exact boundary, on both replay paths.

Each test puts a value exactly on the boundary of one comparison the machines, the risk guard
or the fast path's screens make (``>`` versus ``>=``, ``<`` versus ``<=``) and asserts what must
happen there: a timer fires at exactly its time, a guard trips at exactly its limit (or not, for
a strict one). Every stream is fed event by event and through the block fast path; the two logs
must be identical and both must show the boundary outcome. Event times sit on the clock grid
(ticks every 100 ms) and prices are binary fractions, so every boundary is hit exactly.

Checked by flipping each operator by hand: these tests fail for a one-character change of the
hold and timer checks in machine.py (``for:``, constant and computed ``after:``, ``entries()``
window edge), every limit of risk.py (order notional, projected position and exposure, order
rate and its window edge, stale, loss limit, drawdown, position watch, kill-switch reset) and,
in blocks.py, the risk screen's loss, drawdown and position mirrors and the ``for:``/``after:``
screens. What no outcome can show: a screen made wider (it only sends more rows to the scalar
layers), the timer caches' 1 µs safety margins, and comparisons whose equal case cannot occur
(an order stamped after now, a new PnL high equal to the old one).
"""

from __future__ import annotations

import json

import pytest

from framework.market.events import Quote, Trade
from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import Runtime, run_events
from framework.spec.session import load_session
from tests.support import REPO

MS = 1_000_000
S = 1_000_000_000
T0 = 1_723_161_600 * S  # on the clock grid
SYMBOL = "BTCUSDT"

IDLE = """\
machine: {name}
doc: Does nothing (a slot in the pipeline).
initial: IDLE
states:
  IDLE: {{doc: Idle.}}
  DONE: {{doc: Never reached., terminal: true}}
transitions:
  - from: IDLE
    to: DONE
    when: false
"""

TIMERS = """\
machine: probe
doc: A hold and a timer, for boundary tests.
reads: [metrics]
params:
  wide_bps: {{value: 50, doc: Wide.}}
  hold_s: {{value: {hold_s}, doc: Hold.}}
  wait_s: {{value: {wait_s}, doc: Wait.}}
initial: CALM
states:
  CALM: {{doc: Calm.}}
  WIDE: {{doc: Wide.}}
transitions:
  - from: CALM
    to: WIDE
    when: metrics.spread_bps > params.wide_bps
    for: {hold}
  - from: WIDE
    to: CALM
    after: {after}
"""

DECISION = """\
table: decision
doc: Always trade.
rules:
  - name: go
    doc: Everything is allowed; the risk guard decides.
    when: true
    then: {eligible: true, aggressiveness: take, risk_budget: 1}
"""


def session_for(tmp_path, *, machine: str = TIMERS.format(hold_s=0.5, wait_s=0.3, hold="params.hold_s",
                                                          after="params.wait_s"),
                risk: str = "{}", intents: str = "{generator: none}"):
    (tmp_path / "probe.yaml").write_text(machine)
    (tmp_path / "idle_a.yaml").write_text(IDLE.format(name="idle_a"))
    (tmp_path / "idle_b.yaml").write_text(IDLE.format(name="idle_b"))
    (tmp_path / "decision.yaml").write_text(DECISION)
    cfg = tmp_path / "session.yaml"
    cfg.write_text(f"""\
session: boundaries
doc: Boundary tests.
symbols: [{SYMBOL}]
source: {{kind: replay, path: {REPO}/data/binance-spot-btcusdt-20240808.frames.gz}}
machines:
  regime: probe.yaml
  permission: idle_a.yaml
  health: idle_b.yaml
  decision: decision.yaml
clock: {{tick_ms: 100}}
intents: {intents}
execution:
  latency: {{fixed_ms: 0, jitter: none, ack_fixed_ms: 0}}
  fees: {{maker_bps: 0, taker_bps: 0}}
risk: {risk}
""")
    return load_session(cfg)


def quote(ts: int, bid: float, ask: float, uid: int = 0) -> Quote:
    return Quote(ts_ns=ts, symbol=SYMBOL, bid=bid, bid_qty=1000.0, ask=ask, ask_qty=1000.0, update_id=uid or ts // MS)


def trade(ts: int, price: float) -> Trade:
    return Trade(ts_ns=ts, symbol=SYMBOL, price=price, qty=0.001, buyer_is_maker=False, trade_id=ts // MS,
                 trade_time_ms=ts // MS, event_time_ms=ts // MS)


def both_paths(session, events) -> list[dict]:
    """The log event by event and through the block fast path: identical, returned once."""
    logs = []
    for blocks in (False, True):
        records: list[dict] = []
        runtime = Runtime(session, records.append)
        if blocks:
            assert runtime.can_run_blocks()
            BlockRunner(runtime, block_rows=64).run(events)
        else:
            run_events(runtime, events)
        runtime.finish()
        logs.append([json.dumps(r, sort_keys=True, default=str) for r in records])
    assert logs[0] == logs[1]
    return [json.loads(r) for r in logs[0]]


def transitions(records, machine="probe"):
    return [(r["ts_ns"], r["from"], r["to"]) for r in records if r["kind"] == "transition" and r["machine"] == machine]


def alerts(records, guard):
    return [(r["ts_ns"], r["state"]) for r in records if r["kind"] == "alert" and r.get("guard") == guard]


def tight_then_wide(until_s: float = 6.0) -> list:
    """A tight book from T0, a wide one (about 200 bps) from exactly T0 + 1 s, quotes every 250 ms."""
    events = []
    t = T0 + 50 * MS
    while t < T0 + int(until_s * S):
        wide = t >= T0 + S
        events.append(quote(t, 99.0 if wide else 99.96875, 101.0 if wide else 100.03125))
        t = T0 + S if t < T0 + S <= t + 250 * MS else t + 250 * MS
    return events


# --- machines: for: holds and after: timers (machine.py, blocks.py screens) ---------------

@pytest.mark.parametrize("after", [
    "params.wait_s",  # a constant timer
    "params.wait_s + 0 * entries('WIDE', 60)",  # a cached timer (entries)
    "params.wait_s + 0 * time_in_state()",  # a timer read on every event
])
def test_hold_and_timer_fire_at_exactly_their_time(tmp_path, after):
    session = session_for(tmp_path, machine=TIMERS.format(hold_s=0.5, wait_s=0.3, hold="params.hold_s", after=after))
    records = both_paths(session, tight_then_wide())
    first = transitions(records)[:2]
    # the guard turns true with the quote at T0 + 1 s; held 0.5 s it fires on the tick at
    # exactly T0 + 1.5 s (not 100 ms later); 0.3 s after that the timer fires, exactly
    assert first == [(T0 + 1500 * MS, "CALM", "WIDE"), (T0 + 1800 * MS, "WIDE", "CALM")]


@pytest.mark.parametrize("hold", ["0.5", "params.hold_s + 0 * metrics.spread_bps"])
def test_hold_of_a_constant_or_varying_length_fires_at_exactly_its_time(tmp_path, hold):
    session = session_for(tmp_path, machine=TIMERS.format(hold_s=0.5, wait_s=0.3, hold=hold, after="params.wait_s"))
    records = both_paths(session, tight_then_wide())
    assert transitions(records)[0] == (T0 + 1500 * MS, "CALM", "WIDE")


def test_a_hold_that_breaks_one_tick_before_its_time_starts_again(tmp_path):
    session = session_for(tmp_path)
    events = [e for e in tight_then_wide(4.0) if not (T0 + 1400 * MS <= e.ts_ns < T0 + 1500 * MS)]
    events.append(quote(T0 + 1400 * MS, 99.96875, 100.03125))  # tight for one tick: the hold resets
    events.append(quote(T0 + 1450 * MS, 99.0, 101.0))  # wide again: the hold restarts here
    events.sort(key=lambda e: e.ts_ns)
    records = both_paths(session, events)
    assert transitions(records)[0] == (T0 + 2000 * MS, "CALM", "WIDE")  # the first tick >= 1.45 + 0.5 s


# --- risk guard: stale quotes (risk.py update, blocks.py risk screen) ----------------------

def test_a_quote_exactly_stale_quote_ms_old_is_not_stale(tmp_path):
    session = session_for(tmp_path, risk="{stale_quote_ms: 1000}")
    events = [quote(T0 + 100 * MS, 99.0, 101.0), quote(T0 + 500 * MS, 99.0, 101.0), trade(T0 + 3 * S, 100.0)]
    records = both_paths(session, events)
    # fresh from the first quote; 1000 ms old at T0 + 1.5 s is not stale; 1100 ms old is
    assert alerts(records, "stale_data")[-1] == (T0 + 1600 * MS, "trip")


# --- risk guard: limits checked before an order (risk.py check) ---------------------------

def probe_run(tmp_path, risk: str, notional: float = 100.0, seconds: int = 8):
    session = session_for(tmp_path, risk=risk,
                          intents=f"{{generator: probe, probe: {{period_s: 1, notional_usd: {notional}, style: take}}}}")
    events = []
    t = T0 + 50 * MS
    while t < T0 + seconds * S:
        events.append(quote(t, 99.5, 100.5))
        t += 200 * MS
    return both_paths(session, events)


def rejects(records, reason=None):
    return [r["ts_ns"] for r in records if r["kind"] == "reject" and (reason is None or r["rule"] == reason
                                                                       or r.get("reason") == reason)]


def orders(records):
    return [r["ts_ns"] for r in records if r["kind"] == "order"]


def test_an_order_of_exactly_the_maximum_notional_is_allowed(tmp_path):
    records = probe_run(tmp_path, "{max_order_notional_usd: 100}", notional=100.0, seconds=4)
    assert orders(records) and not rejects(records)
    records = probe_run(tmp_path, "{max_order_notional_usd: 99.99}", notional=100.0, seconds=4)
    assert not orders(records) and rejects(records)


def test_order_rate_counts_orders_inside_the_window_only(tmp_path):
    # one order a second; the window (ts - 3 s, ts] holds the two before: never three
    records = probe_run(tmp_path, "{max_orders: 3, order_window_s: 3, kill_switch_on: []}")
    assert len(orders(records)) == 7 and not rejects(records)


def test_order_rate_refuses_at_exactly_max_orders(tmp_path):
    # a 3.5 s window holds three orders before the fourth: refused (>= max_orders), then the next
    records = probe_run(tmp_path, "{max_orders: 3, order_window_s: 3.5, kill_switch_on: []}")
    assert [t // S - T0 // S for t in orders(records)] == [1, 2, 3, 5, 6, 7]
    assert [t // S - T0 // S for t in rejects(records)] == [4]
    # the watched guard trips at the first event that sees three orders in the window (the quote
    # after the 3 s tick's order), and clears at exactly 4.5 s, when the order of 1 s leaves it
    assert alerts(records, "order_rate")[:2] == [(T0 + 3050 * MS, "trip"), (T0 + 4500 * MS, "clear")]


# --- risk guard: PnL and position limits watched on every event (risk.py, blocks.py screen) -

QUIET = IDLE.format(name="probe")  # no transitions: rows go through the layers only for risk


def one_order_run(tmp_path, risk: str, books: list[tuple[int, float, float]]):
    """One take buy of 512 USD at mid 64 (8 units filled at the ask, 64.5) at T0 + 2 s; the book
    is (bid, ask) from each (ms after T0, bid, ask) on, quotes every 100 ms. No fees, no latency."""
    session = session_for(tmp_path, machine=QUIET, risk=risk,
                          intents="{generator: probe, probe: {period_s: 2, notional_usd: 512, style: take}}")
    events = []
    for t in range(100, 3900, 100):
        _, bid, ask = [b for b in books if b[0] <= t][-1]
        events.append(quote(T0 + t * MS, bid, ask))
    records = both_paths(session, events)
    assert len(orders(records)) == 1
    assert [(r["price"], r["qty"]) for r in records if r["kind"] == "fill"] == [(64.5, 8.0)]
    return records


@pytest.mark.parametrize("guard", ["loss_limit", "max_drawdown"])
def test_loss_limit_and_drawdown_trip_at_exactly_their_limits(tmp_path, guard):
    # at mid 60: PnL = 8 * (60 - 64.5) = -36, drawdown from the 0 high-water mark = 36. One
    # guard at a time: the other's flip on the same row would hide a screen that missed it.
    limits = {"loss_limit": 1000, "max_drawdown": 1000, guard: 36}
    records = one_order_run(tmp_path, f"{{loss_limit_usd: {limits['loss_limit']}, max_drawdown_usd: "
                                      f"{limits['max_drawdown']}, kill_switch_on: []}}",
                            [(0, 63.5, 64.5), (2500, 59.5, 60.5)])
    assert alerts(records, guard) == [(T0 + 2500 * MS, "trip")]


def test_loss_limit_and_drawdown_clear_just_inside_their_limits(tmp_path):
    # at mid 58 both trip (PnL -52); back at mid 60 the PnL is -36 and the drawdown 36, both just
    # inside limits of 36.5: both clear
    records = one_order_run(tmp_path, "{loss_limit_usd: 36.5, max_drawdown_usd: 36.5, kill_switch_on: []}",
                            [(0, 63.5, 64.5), (2500, 57.5, 58.5), (3000, 59.5, 60.5)])
    assert alerts(records, "loss_limit") == [(T0 + 2500 * MS, "trip"), (T0 + 3000 * MS, "clear")]
    assert alerts(records, "max_drawdown") == [(T0 + 2500 * MS, "trip"), (T0 + 3000 * MS, "clear")]


def test_position_exactly_at_its_limit_is_allowed_and_not_tripped(tmp_path):
    # the order takes the projected position to exactly 512 (allowed); held at mid 64 it is
    # exactly 512 (not tripped); at mid 64.25 it is 514 (tripped); back at 64, 512 (cleared)
    records = one_order_run(tmp_path, "{max_position_notional_usd: 512, kill_switch_on: []}",
                            [(0, 63.5, 64.5), (2500, 63.75, 64.75), (3000, 63.5, 64.5)])
    assert not rejects(records)
    assert alerts(records, "max_position_notional") == [(T0 + 2500 * MS, "trip"), (T0 + 3000 * MS, "clear")]


def test_an_entry_exactly_one_window_old_is_no_longer_counted(tmp_path):
    # entered WIDE at T0 + 1.5 s: entries('WIDE', 0.5) is 1 until exactly T0 + 2 s, then 0,
    # which drops the timer from 10.2 s to 0.2 s: it fires at exactly T0 + 2 s
    machine = TIMERS.format(hold_s=0.5, wait_s=0.2, hold="params.hold_s",
                            after="params.wait_s + 10 * entries('WIDE', 0.5)")
    records = both_paths(session_for(tmp_path, machine=machine), tight_then_wide())
    assert transitions(records)[:2] == [(T0 + 1500 * MS, "CALM", "WIDE"), (T0 + 2000 * MS, "WIDE", "CALM")]


def test_kill_switch_resets_after_exactly_kill_switch_reset_s_clear(tmp_path):
    session = session_for(tmp_path, risk="{stale_quote_ms: 1000, kill_switch_on: [stale_data], kill_switch_reset_s: 1}")
    events = [quote(T0 + 100 * MS, 99.0, 101.0), quote(T0 + 500 * MS, 99.0, 101.0)]
    events += [quote(T0 + t * MS, 99.0, 101.0) for t in range(3000, 6000, 200)]
    records = both_paths(session, events)
    # stale from T0 + 1.6 s (the quote is then 1100 ms old), fresh again at T0 + 3 s, and the
    # kill switch clears once it has been clear for exactly 1 s
    assert alerts(records, "kill_switch")[-2:] == [(T0 + 1600 * MS, "trip"), (T0 + 4000 * MS, "clear")]


def test_an_intent_that_leaves_the_exposure_exactly_as_large_is_allowed_above_the_limit(tmp_path):
    # buy 256 USD at mid 64 (4 units, exactly the limit); the mid rises to 72, so the position
    # (288) is above the limit; selling 576 USD flips it to -288: no larger, so allowed
    intents = tmp_path / "intents.csv"
    intents.write_text(f"ts_ns,side,notional_usd,style\n{T0 + 2 * S},buy,256,take\n{T0 + 3 * S},sell,576,take\n")
    session = session_for(tmp_path, machine=QUIET, risk="{max_position_notional_usd: 256, kill_switch_on: []}",
                          intents=f"{{generator: file, file: {{path: {intents}}}}}")
    events = [quote(T0 + t * MS, *((63.5, 64.5) if t < 2500 else (71.5, 72.5))) for t in range(100, 3900, 100)]
    records = both_paths(session, events)
    assert not rejects(records)
    assert [(r["side"], r["qty"]) for r in records if r["kind"] == "fill"] == [("buy", 4.0), ("sell", 8.0)]
