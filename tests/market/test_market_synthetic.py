"""Synthetic scenarios: reproducible by seed, shaped as declared, valid wire frames."""

from __future__ import annotations

import itertools
import textwrap

import pytest
from conftest import SCENARIOS

from framework.market.decode import FrameDecoder
from framework.market.events import Quote, Trade
from framework.market.synthetic import load_scenario, phase_bounds, scenario_events, scenario_frames
from framework.spec.errors import SpecErrors


@pytest.mark.parametrize("name", ["calm", "fast", "shock", "sequence"])
def test_shipped_scenarios_validate_and_decode_cleanly(name):
    spec = load_scenario(SCENARIOS / f"{name}.yaml")
    assert all(ph["doc"] for ph in spec["phases"])
    dec = FrameDecoder()
    evs = list(itertools.islice(scenario_events(spec, decoder=dec), 20_000))
    assert dec.counters.malformed == {} and len(evs) == 20_000 or name == "shock"
    stamps = [e.ts_ns for e in evs]
    assert stamps == sorted(stamps)
    assert all(e.bid < e.ask for e in evs if type(e) is Quote)


def test_same_seed_same_frames_different_seed_differs():
    a = list(itertools.islice(scenario_frames("shock", seed=11), 3000))
    b = list(itertools.islice(scenario_frames("shock", seed=11), 3000))
    c = list(itertools.islice(scenario_frames("shock", seed=12), 3000))
    assert a == b and a != c


def test_shock_has_spread_blowout_quote_gap_and_fast_mid_move():
    bounds = {n: (s, e) for n, s, e in phase_bounds("shock")}
    evs = list(scenario_events("shock"))
    quotes = [e for e in evs if type(e) is Quote]

    def in_phase(e, name, lat_ms=50):
        s, end = bounds[name]
        return s <= e.ts_ns - lat_ms * 10**6 // 10 < end

    calm = [(q.ask - q.bid) / q.mid * 1e4 for q in quotes if in_phase(q, "lead_in")]
    sweep = [(q.ask - q.bid) / q.mid * 1e4 for q in quotes if in_phase(q, "sweep")]
    assert max(calm) < 0.1 and sum(sweep) / len(sweep) > 5
    gaps = max(b.ts_ns - a.ts_ns for a, b in itertools.pairwise(quotes))
    assert gaps >= 2.9e9  # the declared 3 s window without quotes
    before = [q.mid for q in quotes if in_phase(q, "lead_in")][-1]
    after = [q.mid for q in quotes if in_phase(q, "sweep")][-1]
    assert (after - before) / before * 1e4 < -30
    trades = [t for t in evs if type(t) is Trade and in_phase(t, "sweep")]
    assert sum(t.buyer_is_maker for t in trades) / len(trades) > 0.7  # sells dominate


def test_sequence_has_long_calm_on_both_sides_of_the_shock():
    (n0, s0, e0), *_, (n4, s4, e4) = phase_bounds("sequence")
    assert (e0 - s0) / 1e9 >= 180 and (e4 - s4) / 1e9 >= 300


def test_usdm_scenario_frames_carry_futures_fields():
    spec = {"name": "f", "doc": "d", "symbol": "ETHUSDT", "market": "usdm",
            "phases": [{"name": "p", "doc": "d", "duration_s": 5, "quote_rate_hz": 20,
                        "trade_rate_hz": 20}]}
    evs = list(scenario_events(spec, seed=1))
    q = next(e for e in evs if type(e) is Quote)
    t = next(e for e in evs if type(e) is Trade)
    assert q.event_time_ms > 0 and t.aggregated and q.symbol == "ETHUSDT"


def test_invalid_scenario_reports_file_line_col(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(textwrap.dedent("""\
        name: bad
        doc: broken on purpose
        symbol: BTCUSDT
        phases:
          - name: one
            doc: a phase
            duration_s: 10
            spread_pips: 3
          - name: one
            doc: same name
            duration_s: 5
            quote_gaps:
              - {at_s: 7, duration_s: 1}
        """))
    with pytest.raises(SpecErrors) as exc:
        load_scenario(p)
    text = str(exc.value)
    assert f"{p}:8:5:" in text and "spread_pips" in text
    with pytest.raises(SpecErrors):
        load_scenario(p)
    p.write_text(p.read_text().replace("    spread_pips: 3\n", ""))
    with pytest.raises(SpecErrors) as exc:
        load_scenario(p)
    msgs = [str(e) for e in exc.value.errors]
    assert any(":8:" in m and "repeated" in m for m in msgs)
    assert any(":12:" in m and "quote gap" in m for m in msgs)
