"""Intent generators: the periodic probe's timing and alternation, intents from files."""

import json

import pytest

from framework.execution import FileIntents, IntentConfig, PeriodicProbe, make_generator
from framework.execution.config import ProbeConfig
from framework.spec.errors import SpecErrors

S = 1_000_000_000


def drive(gen, start, end, step, symbol="BTCUSDT"):
    out = []
    for ts in range(start, end, step):
        out += gen.due(ts, symbol)
    return out


def test_probe_fires_every_period_and_alternates_sides():
    p = PeriodicProbe(ProbeConfig(period_s=10, style="take"), seed=1)
    got = drive(p, 3 * S, 65 * S, S // 10)
    assert [i.ts_ns for i in got] == [k * 10 * S for k in range(1, 7)]
    assert [i.side for i in got] == ["buy", "sell"] * 3
    assert {i.style for i in got} == {"take"} and got[0].notional_usd == 100.0
    assert [i.intent_id for i in got][:2] == ["BTCUSDT-probe-1", "BTCUSDT-probe-2"]


def test_probe_alternate_style_gives_each_side_both_styles():
    p = PeriodicProbe(ProbeConfig(period_s=1, first_side="sell"), seed=1)
    got = drive(p, 0, 9 * S, S // 2)
    assert [(i.side, i.style) for i in got][:4] == [("sell", "take"), ("buy", "take"),
                                                      ("sell", "passive"), ("buy", "passive")]


def test_probe_after_a_gap_fires_once_not_in_a_burst():
    p = PeriodicProbe(ProbeConfig(period_s=10), seed=1)
    assert p.due(1 * S, "X") == []
    assert len(p.due(95 * S, "X")) == 1
    assert p.due(96 * S, "X") == [] and len(p.due(100 * S, "X")) == 1


def test_probe_jitter_is_seeded_and_bounded():
    def times(seed):
        p = PeriodicProbe(ProbeConfig(period_s=10, jitter_s=2), seed=seed)
        return [i.ts_ns for i in drive(p, 0, 100 * S, S // 100)]
    a, b = times(1), times(2)
    assert a == times(1) and a != b
    assert all(0 <= t % (10 * S) <= 2 * S for t in a)


def test_probe_symbols_are_independent():
    p = PeriodicProbe(ProbeConfig(period_s=10), seed=1)
    p.due(1 * S, "A")
    p.due(1 * S, "B")
    assert p.due(10 * S, "A")[0].side == "buy" and p.due(10 * S, "B")[0].side == "buy"


def test_file_intents_csv_fire_in_time_order_per_symbol(tmp_path):
    f = tmp_path / "intents.csv"
    f.write_text("ts_ns,side,notional_usd,style,symbol,ttl_s\n"
                 f"{5 * S},sell,50,passive,,10\n"
                 f"{2 * S},buy,100,take,BTCUSDT,\n"
                 f"{3 * S},buy,70,take,ETHUSDT,\n")
    g = FileIntents(f)
    assert g.due(1 * S, "BTCUSDT") == []
    (a,) = g.due(4 * S, "BTCUSDT")
    assert (a.side, a.notional_usd, a.style, a.ts_ns) == ("buy", 100.0, "take", 4 * S)
    (b,) = g.due(6 * S, "BTCUSDT")
    assert (b.side, b.style, b.ttl_s) == ("sell", "passive", 10.0)
    assert [i.notional_usd for i in g.due(6 * S, "ETHUSDT")] == [70.0, 50.0]


def test_next_due_never_skips_an_intent(tmp_path):
    """The replay fast path asks due() only from next_due_ns() on: nothing may be due before."""
    f = tmp_path / "intents.csv"
    f.write_text("ts_ns,side,notional_usd,style,symbol\n"
                 f"{2 * S},buy,100,take,BTCUSDT\n{3 * S},buy,70,take,ETHUSDT\n{7 * S},sell,50,take,\n")
    for gen in (PeriodicProbe(ProbeConfig(period_s=3, jitter_s=1), seed=4), FileIntents(f)):
        assert gen.next_due_ns("BTCUSDT") is None or gen.next_due_ns("BTCUSDT") <= 2 * S
        fired = []
        for ts in range(0, 30 * S, S // 10):
            nxt = gen.next_due_ns("BTCUSDT")
            got = gen.due(ts, "BTCUSDT")
            if nxt is not None and ts < nxt:
                assert got == []
            fired += got
        assert fired
    assert make_generator(IntentConfig.from_dict({"generator": "none"})).next_due_ns("X") > 10**18


def test_file_intents_jsonl_with_iso_times(tmp_path):
    f = tmp_path / "intents.jsonl"
    f.write_text(json.dumps({"ts": "1970-01-01T00:00:02Z", "side": "buy", "notional": 10, "style": "maker",
                             "limit_offset_bps": 1.5, "intent_id": "x1"}) + "\n")
    (a,) = make_generator(IntentConfig.from_dict({"generator": "file", "file": {"path": str(f)}})).due(2 * S, "X")
    assert (a.style, a.limit_offset_bps, a.intent_id) == ("passive", 1.5, "x1")


def test_a_bad_row_is_reported_with_its_line(tmp_path):
    f = tmp_path / "intents.csv"
    f.write_text("ts_ns,side,notional_usd,style\n1,buy,10,take\n2,hold,10,take\n")
    with pytest.raises(SpecErrors) as exc:
        FileIntents(f)
    (err,) = exc.value.errors
    assert err.line == 3 and "side" in err.message and "expected" in err.message
