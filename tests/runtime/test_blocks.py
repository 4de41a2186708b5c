"""The replay fast path (framework/runtime/blocks.py) against the scalar reference path.

Skipping rows is only allowed where the scalar pipeline would change nothing, so both paths
must write the same audit log byte for byte: on the shipped recording, on scenarios, on a long
synthetic stream, with tiny blocks, and with settings that make every layer busy (risk guards
flipping, a kill switch resetting on a timer, long holds, many orders).
"""

import json
from itertools import islice

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.bench.stream import bench_frames
from framework.market.decode import FrameDecoder
from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import NS, Runtime, run_events
from framework.runtime.run import run_session
from framework.spec.session import load_session
from tests.support import REPO, read_records


def _session(config: str = "default.yaml", **overrides):
    """A shipped config with sections replaced (deep-merged one level)."""
    path = REPO / "configs" / config
    data = yaml.safe_load(path.read_text())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return load_session(path, text=yaml.safe_dump(data, sort_keys=False))


def _records(session, events, *, blocks: bool, block_rows: int = 4096):
    records = []
    runtime = Runtime(session, records.append)
    if blocks:
        runner = BlockRunner(runtime, block_rows=block_rows)
        runner.run(events)
    else:
        run_events(runtime, events)
    records.append({"summary": runtime.finish()})
    return records, runtime


def _events(session, limit=None):
    from framework.runtime.sources import replay_events, scenario_source

    kind = session.source["kind"]
    events, _ = replay_events(session) if kind == "replay" else scenario_source(session)
    events = list(events)
    return events[:limit] if limit else events


def _same(session, events, block_rows=4096):
    scalar, _ = _records(session, events, blocks=False)
    fast, runtime = _records(session, events, blocks=True, block_rows=block_rows)
    assert len(fast) == len(scalar)
    for a, b in zip(scalar, fast, strict=True):
        assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    return scalar


@pytest.mark.parametrize("config", ["default.yaml", "scenario-shock.yaml"])
def test_shipped_sessions_write_the_same_log_on_both_paths(tmp_path, config):
    a = run_session(load_session(REPO / "configs" / config), tmp_path / "scalar", scalar=True)
    b = run_session(load_session(REPO / "configs" / config), tmp_path / "blocks")
    assert (tmp_path / "scalar" / "log.jsonl").read_bytes() == (tmp_path / "blocks" / "log.jsonl").read_bytes()
    assert a.summary["log_digest"] == b.summary["log_digest"]
    transitions = a.summary["symbols"]["BTCUSDT"]["transitions"]
    assert sum(transitions.values()) > 10  # the run exercised the machines


def test_the_command_line_scalar_flag_gives_the_same_log(tmp_path):
    import subprocess
    import sys

    for name, extra in (("blocks", []), ("scalar", ["--scalar"])):
        proc = subprocess.run([sys.executable, "-m", "framework.cli", "run", "configs/scenario-shock.yaml",
                               "--no-progress", "--out", str(tmp_path / name), *extra],
                              capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        assert json.loads((tmp_path / name / "summary.json").read_text())["wall"]["path"] == \
            ("events" if extra else "blocks")
    assert (tmp_path / "blocks" / "log.jsonl").read_bytes() == (tmp_path / "scalar" / "log.jsonl").read_bytes()


def test_tiny_blocks_carry_every_state_across_block_boundaries():
    session = _session()
    records = _same(session, _events(session), block_rows=13)
    assert any(r.get("kind") == "fill" for r in records)


def test_a_long_synthetic_stream_with_shocks():
    session = _session()
    decode = FrameDecoder().decode
    events = [e for e in (decode(raw, ns) for ns, raw in bench_frames(60_000)) if e is not None]
    records = _same(session, events)
    kinds = {r.get("kind") for r in records}
    assert {"transition", "fill", "alert", "decision", "metrics"} <= kinds


def test_busy_risk_guards_and_a_kill_switch_on_a_timer():
    session = _session(risk={"max_orders": 2, "order_window_s": 30, "loss_limit_usd": 1, "max_drawdown_usd": 0.5,
                             "max_position_notional_usd": 600, "kill_switch_on": ["max_drawdown", "order_rate"],
                             "kill_switch_reset_s": 5},
                       intents={"generator": "probe", "probe": {"period_s": 1, "notional_usd": 400,
                                                                "style": "alternate", "ttl_s": 3}})
    records = _same(session, _events(session, 15000))
    alerts = [r for r in records if r.get("kind") == "alert"]
    assert any(a["guard"] == "kill_switch" and a["state"] == "clear" for a in alerts)


def test_other_symbols_late_stamps_and_feed_events_mid_stream():
    """What a single-symbol pipeline must ignore or clamp, as the runtime does event by event."""
    import msgspec

    from framework.market.events import FeedEvent

    out = []
    for i, ev in enumerate(_events(_session(), 20000)):
        out.append(ev)
        if i % 97 == 0:
            out.append(msgspec.structs.replace(ev, symbol="ETHUSDT"))  # another symbol's quote or trade
        if i % 501 == 0:
            out.append(msgspec.structs.replace(ev, ts_ns=ev.ts_ns - 5_000_000))  # late by 5 ms
        if i % 1999 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns, kind="malformed", symbol="", detail="bad json: {"))
        if i % 4001 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns, kind="gap", symbol="BTCUSDT", detail="sequence gap", gap_ms=300.0))
        if i % 3001 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns, kind="disconnect", symbol="ETHUSDT", detail="closed"))
    records = _same(_session(), out, block_rows=1000)
    assert {"feed", "transition"} <= {r.get("kind") for r in records}
    assert records[-1]["summary"]["symbols"]["BTCUSDT"]["metrics"]["late_events"] > 0


def test_quotes_and_trades_without_a_symbol_belong_to_no_pipeline_on_either_path():
    """Only a feed event may name no symbol (a whole connection); a quote or trade of symbol ""
    is nobody's, event by event and a block at a time alike."""
    import msgspec

    out = []
    for i, ev in enumerate(_events(_session(), 8000)):
        out.append(ev)
        if i % 53 == 0:
            out.append(msgspec.structs.replace(ev, symbol="", ts_ns=ev.ts_ns + 1))
    scalar = _same(_session(), out, block_rows=500)
    assert scalar[-1]["summary"]["events"] == len(out)


@pytest.mark.parametrize("gap_s", [30, 90, 3600, 86_400, 365 * 86_400])
def test_a_gap_in_the_data_costs_the_same_small_log_on_both_paths(gap_s):
    """A gap of an hour, a day or a year: both paths write the same log, and what the gap
    costs in records does not grow with its length (no intents, no samples once settled; the
    clock jumps over ticks that provably change nothing)."""
    import msgspec

    events = _events(_session(), 6000)
    cut = 3000
    gap = gap_s * 1_000_000_000
    shifted = events[:cut] + [msgspec.structs.replace(e, ts_ns=e.ts_ns + gap) for e in events[cut:]]
    records = _same(_session(), shifted, block_rows=700)
    assert records[-1]["summary"]["duration_s"] > gap_s
    inside = [r for r in records[:-1] if events[cut - 1].ts_ns < r["ts_ns"] < shifted[cut].ts_ns]
    _, runtime = _records(_session(), shifted, blocks=False)
    # While the metric windows drain (the longest: a 30-minute baseline) a sample a second and
    # the probe's intents are written; after that nothing until the data returns.
    settle_s = runtime.clock.settle_ns / 1e9
    assert len(inside) < 1.5 * min(gap_s, settle_s) + 150, len(inside)
    assert any(r["kind"] == "transition" for r in inside) == (gap_s > 5)  # the gap is noticed
    # and the work: ticks through the layers are those of the data and of the drain, not of the gap
    ticks = runtime.pipelines["BTCUSDT"].events - len(shifted)
    data_s = (events[-1].ts_ns - events[0].ts_ns) / 1e9
    assert ticks < (data_s + 2 * runtime.clock.settle_ns / 1e9) * 10 + 100, ticks


def test_intents_from_a_file_fire_on_the_same_ticks(tmp_path):
    events = _events(_session(), 30000)
    t0 = events[0].ts_ns
    rows = [f"{t0 + k * 1_700_000_000 + 13},{'buy' if k % 2 else 'sell'},300,{'passive' if k % 3 else 'take'},"
            f"{'ETHUSDT' if k % 5 == 0 else 'BTCUSDT'}" for k in range(1, 150)]
    path = tmp_path / "intents.csv"
    path.write_text("ts_ns,side,notional_usd,style,symbol\n" + "\n".join(rows) + "\n")
    session = _session(intents={"generator": "file", "file": {"path": str(path)}})
    records = _same(session, events)
    assert sum(r.get("kind") == "intent" for r in records) > 50


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), recover_s=st.sampled_from([0.0, 0.3, 3.0, 20.0]),
       cooldown_s=st.sampled_from([1, 30, 120]), fast_enter_s=st.sampled_from([0, 0.25, 2]),
       period_s=st.sampled_from([0.5, 1, 5]), style=st.sampled_from(["take", "passive", "alternate"]),
       risk=st.fixed_dictionaries({
           "max_orders": st.sampled_from([2, 30]), "order_window_s": st.sampled_from([10, 60]),
           "loss_limit_usd": st.sampled_from([0.5, 200]), "max_drawdown_usd": st.sampled_from([0.2, 150]),
           "max_position_notional_usd": st.sampled_from([300, 5000]),
           "kill_switch_on": st.lists(st.sampled_from(["loss_limit", "max_drawdown", "order_rate",
                                                       "max_position_notional", "stale_data"]), max_size=3, unique=True),
           "kill_switch_reset_s": st.sampled_from([None, 1, 10])}),
       block_rows=st.sampled_from([50, 700, 4096]))
def test_random_scenarios_params_and_risk_limits_give_the_same_log(seed, recover_s, cooldown_s, fast_enter_s,
                                                                  period_s, style, risk, block_rows):
    path = REPO / "configs" / "scenario-shock.yaml"
    data = yaml.safe_load(path.read_text())
    data["source"]["seed"] = seed
    data["intents"]["probe"].update(period_s=period_s, style=style)
    data["risk"] = risk
    session = load_session(path, [f"health.recover_s={recover_s}", f"permission.cooldown_s={cooldown_s}",
                                  f"regime.fast_enter_s={fast_enter_s}"],
                           text=yaml.safe_dump(data, sort_keys=False))
    _same(session, _events(session, 15000), block_rows=block_rows)


def test_a_screen_made_ahead_does_not_count_mids_to_come_in_the_pnl_high_water_mark():
    # Found by the random test above: screening past an order's arrival folded later mids into
    # the drawdown's high-water mark, so the fast path tripped max_drawdown with a larger value.
    path = REPO / "configs" / "scenario-shock.yaml"
    data = yaml.safe_load(path.read_text())
    data["source"]["seed"] = 202
    data["intents"]["probe"].update(period_s=5, style="take")
    data["risk"] = {"max_orders": 2, "order_window_s": 60, "loss_limit_usd": 0.5, "max_drawdown_usd": 0.2,
                    "max_position_notional_usd": 5000, "kill_switch_on": ["order_rate", "max_drawdown"],
                    "kill_switch_reset_s": 1}
    session = load_session(path, ["health.recover_s=0.0", "permission.cooldown_s=30", "regime.fast_enter_s=0"],
                           text=yaml.safe_dump(data, sort_keys=False))
    records = _same(session, _events(session, 15000))
    assert any(r.get("kind") == "alert" and r.get("guard") == "max_drawdown" for r in records)


def test_sessions_the_fast_path_does_not_serve_run_on_the_reference_path():
    """A hook that must see every event (hot reload) keeps a session on the reference path."""
    runtime = Runtime(_session(symbols=["BTCUSDT", "ETHUSDT"]), lambda r: None)
    assert runtime.can_run_blocks()
    runtime.before_event = lambda ts: None
    assert not runtime.can_run_blocks()
    with pytest.raises(ValueError):
        BlockRunner(runtime)


# -- sessions of several symbols: one lane per symbol, merged in the runtime's order ---------------

SPOT = ["binance-spot-btcusdt-20240808.frames.gz", "binance-spot-ethusdt-20240808.frames.gz"]
USDM = ["binance-usdm-btcusdt-20240808.frames.gz", "binance-usdm-ethusdt-20240808.frames.gz"]
PAIR = ["BTCUSDT", "ETHUSDT"]


def _pair_session(files: list[str], **overrides):
    return _session(symbols=PAIR, source={"kind": "replay", "paths": [str(REPO / "data" / f) for f in files],
                                          "seed": 7}, **overrides)


def test_two_spot_recordings_interleaved_by_receive_time_write_the_same_log(tmp_path):
    session = load_session(REPO / "configs" / "default.yaml", text=(REPO / "configs" / "default.yaml").read_text()
                           .replace("symbols: [BTCUSDT]", "symbols: [BTCUSDT, ETHUSDT]"))
    replay = [str(REPO / "data" / f) for f in SPOT]
    a = run_session(session, tmp_path / "scalar", replay=replay, scalar=True)
    b = run_session(session, tmp_path / "blocks", replay=replay)
    assert (a.summary["wall"]["path"], b.summary["wall"]["path"]) == ("events", "blocks")
    assert (tmp_path / "scalar" / "log.jsonl").read_bytes() == (tmp_path / "blocks" / "log.jsonl").read_bytes()
    for symbol in PAIR:  # both symbols were exercised: transitions and fills
        assert sum(a.summary["symbols"][symbol]["transitions"].values()) > 5
    assert {r["symbol"] for r in read_records(tmp_path / "scalar") if r["kind"] == "fill"} == set(PAIR)


@pytest.mark.parametrize("files", [USDM, SPOT + USDM], ids=["usdm-pair", "all-four"])
def test_the_usdm_pair_and_all_four_recordings_combined(files):
    session = _pair_session(files)
    records = _same(session, _events(session, 40_000), block_rows=1500)
    symbols = {r.get("symbol") for r in records if r.get("kind") in ("transition", "fill")}
    assert set(PAIR) <= symbols


def test_several_symbols_in_tiny_blocks():
    session = _pair_session(SPOT)
    _same(session, _events(session, 12_000), block_rows=13)


def _synthetic(symbol: str, mid: float, seed: int, n: int) -> list:
    from framework.bench.stream import bench_spec
    from framework.market.synthetic import scenario_frames

    spec = {**bench_spec(n), "symbol": symbol, "initial_mid": mid, "seed": seed}
    decode = FrameDecoder().decode
    return [e for e in (decode(raw, ns) for ns, raw in islice(scenario_frames(spec), n)) if e is not None]


def test_synthetic_symbols_with_gaps_of_one_symbol_and_of_both():
    """Quote gaps inside each stream; one symbol silent for two minutes while the other trades;
    then both silent for an hour (the quiet part of a gap is crossed for every lane at once)."""
    import msgspec

    btc = _synthetic("BTCUSDT", 61_800.0, 1, 30_000)
    eth = _synthetic("ETHUSDT", 2_600.0, 2, 24_000)
    t0 = btc[0].ts_ns
    eth = [msgspec.structs.replace(e, ts_ns=e.ts_ns + 1_700_003) for e in eth  # its own receive clock
           if not t0 + 60 * NS <= e.ts_ns < t0 + 180 * NS]
    cut = t0 + 240 * NS
    merged = sorted(btc + eth, key=lambda e: e.ts_ns)
    merged = [e if e.ts_ns < cut else msgspec.structs.replace(e, ts_ns=e.ts_ns + 3600 * NS) for e in merged]
    records = _same(_session(symbols=PAIR), merged, block_rows=2000)
    assert {"transition", "fill", "metrics"} <= {r.get("kind") for r in records}
    assert {r["symbol"] for r in records if r.get("kind") == "transition"} >= set(PAIR)


def test_malformed_frames_feed_events_late_stamps_and_other_symbols_across_lanes():
    """What each lane must take, share, clamp or ignore, as the runtime does event by event: feed
    events naming one symbol, every symbol (""), or a symbol not in the session (every pipeline
    then sees it); quotes and trades of a third symbol; stamps late within and across symbols."""
    import msgspec

    from framework.market.events import FeedEvent

    session = _pair_session(SPOT)
    out = []
    for i, ev in enumerate(_events(session, 24_000)):
        out.append(ev)
        if i % 89 == 0:
            out.append(msgspec.structs.replace(ev, symbol="SOLUSDT"))
        if i % 433 == 0:
            out.append(msgspec.structs.replace(ev, ts_ns=ev.ts_ns - 7_000_000))  # late by 7 ms
        if i % 1777 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns, kind="malformed", symbol="", detail="bad json: {"))
        if i % 2999 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns, kind="gap", symbol=PAIR[i % 2], detail="sequence gap",
                                 gap_ms=250.0))
        if i % 4001 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns, kind="disconnect", symbol="", detail="closed"))
        if i % 5003 == 0:
            out.append(FeedEvent(ts_ns=ev.ts_ns + 1, kind="stall", symbol="XRPUSDT", detail="no data"))
    records = _same(session, out, block_rows=900)
    feeds = [r for r in records if r.get("kind") == "feed"]
    assert {f["symbol"] for f in feeds} == {"", "BTCUSDT", "ETHUSDT", "XRPUSDT"}
    summary = records[-1]["summary"]
    assert all(summary["symbols"][s]["metrics"]["late_events"] > 0 for s in PAIR)
    assert summary["events"] == len(out)


def test_trouble_injected_into_both_recordings(tmp_path):
    """Shocks, gaps and garbage frames injected into the first two minutes of each recording."""
    import gzip

    from framework.market.inject import inject
    from framework.market.replay import read_frames

    replay = []
    for k, name in enumerate(SPOT):
        frames = list(read_frames(REPO / "data" / name))
        base = tmp_path / f"base-{k}.frames.gz"
        with gzip.open(base, "wt", encoding="utf-8") as f:
            f.writelines(f"{ns} {raw}\n" for ns, raw in frames if ns < frames[0][0] + 120 * NS)
        out = tmp_path / f"injected-{k}.frames.gz"
        inject(base, out, shocks=[(20 + 7 * k, 2)], gaps=[(45 + 11 * k, 4)], repeat=3, every_s=40,
               garbage_rate=0.003, seed=k)
        replay.append(str(out))
    session = _pair_session(SPOT)
    a = run_session(session, tmp_path / "scalar", replay=replay, scalar=True)
    b = run_session(session, tmp_path / "blocks", replay=replay)
    assert b.summary["wall"]["path"] == "blocks"
    assert (tmp_path / "scalar" / "log.jsonl").read_bytes() == (tmp_path / "blocks" / "log.jsonl").read_bytes()
    assert a.summary["feed"].get("malformed", 0) > 0
    for symbol in PAIR:
        assert sum(a.summary["symbols"][symbol]["transitions"].values()) > 5


def test_a_trading_session_of_two_symbols_with_busy_risk_guards():
    session = _pair_session(SPOT, risk={"max_orders": 3, "order_window_s": 20, "loss_limit_usd": 1,
                                        "max_drawdown_usd": 0.5, "max_position_notional_usd": 700,
                                        "kill_switch_on": ["max_drawdown", "order_rate"], "kill_switch_reset_s": 4},
                            intents={"generator": "probe", "probe": {"period_s": 1, "notional_usd": 400,
                                                                     "style": "alternate", "ttl_s": 3}})
    records = _same(session, _events(session, 30_000), block_rows=2500)
    fills = {r["symbol"] for r in records if r.get("kind") == "fill"}
    assert fills == set(PAIR)
    alerts = [r for r in records if r.get("kind") == "alert"]
    assert {a["symbol"] for a in alerts} == set(PAIR)
    assert any(a["guard"] == "kill_switch" and a["state"] == "clear" for a in alerts)


_HEADS: dict[str, list] = {}


def _heads(files: list[str]) -> list[list]:
    """The first events of each symbol in two shipped recordings (read once per test run)."""
    key = ",".join(files)
    if key not in _HEADS:
        events = _events(_pair_session(files), 16_000)
        _HEADS[key] = [[e for e in events if e.symbol == s] for s in PAIR]
    return _HEADS[key]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.booleans(), min_size=200, max_size=6000), period_s=st.sampled_from([0.5, 2, 5]),
       kill=st.booleans(), block_rows=st.sampled_from([9, 333, 4096]),
       usdm=st.booleans(), order=st.sampled_from([PAIR, PAIR[::-1]]))
def test_random_interleavings_of_two_symbols_give_the_same_log(picks, period_s, kill, block_rows, usdm, order):
    """Two recordings' events interleaved in any order (stamps then jump back and forth between
    symbols: late events, ticks placed by the latest stamp seen), with the session's symbols in
    either order."""
    streams = [iter(head) for head in _heads(USDM if usdm else SPOT)]
    events = []
    for pick in picks:
        ev = next(streams[pick], None)
        if ev is not None:
            events.append(ev)
    risk = {"max_drawdown_usd": 0.3, "kill_switch_on": ["max_drawdown"], "kill_switch_reset_s": 2} if kill else {}
    session = _session(symbols=list(order), risk=risk,
                       intents={"generator": "probe", "probe": {"period_s": period_s, "notional_usd": 300,
                                                                "style": "alternate", "ttl_s": 2}})
    _same(session, events, block_rows=block_rows)
