"""Order-path latency: separate entry and acknowledgement paths, heavy tails, bursts, seeds;
feed latency and clock offset measured from the exchange's stamps."""

import json
import math
import random
import subprocess
import sys

import pytest
from exec_helpers import MS, engine, intent, kinds, quote
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.execution import ExecutionConfig
from framework.execution.feed_latency import measure, measure_file, quantile
from framework.execution.latency import LatencyModel
from tests.support import REPO

SPOT = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"


def _model(seed="s", **latency):
    return LatencyModel(ExecutionConfig.from_dict({"latency": latency}).latency, random.Random(seed))


def _legacy_ns(rng, lat, fixed_ms):
    """The engine's original single-distribution latency, written out again: the default
    configuration must draw the same numbers in the same order."""
    j = 0.0
    if lat["jitter"] == "uniform" and lat["jitter_ms"] > 0:
        j = rng.uniform(0.0, lat["jitter_ms"])
    elif lat["jitter"] == "lognormal" and lat["jitter_ms"] > 0:
        j = rng.lognormvariate(math.log(lat["jitter_ms"]), lat["jitter_sigma"])
    j = min(j, lat["jitter_cap_ms"])
    return int(round((fixed_ms + j) * MS))


@given(jitter=st.sampled_from(["none", "uniform", "lognormal"]), jitter_ms=st.floats(0, 50),
       sigma=st.floats(0, 2), fixed=st.floats(0, 100), ack=st.floats(0, 100), seed=st.integers(0, 99))
@settings(max_examples=60, deadline=None)
def test_configs_without_the_new_keys_draw_exactly_what_they_drew_before(jitter, jitter_ms, sigma, fixed, ack, seed):
    lat = {"fixed_ms": fixed, "jitter": jitter, "jitter_ms": jitter_ms, "jitter_sigma": sigma,
           "jitter_cap_ms": 250.0, "ack_fixed_ms": ack}
    model = _model(seed, **lat)
    ref = random.Random(seed)
    for t in range(5):
        assert model.order(t) == (_legacy_ns(ref, lat, fixed), _legacy_ns(ref, lat, ack))
        assert model.cancel(t) == _legacy_ns(ref, lat, fixed)


def test_pareto_jitter_has_the_configured_median_and_a_heavy_tail():
    m = _model(fixed_ms=0, jitter="pareto", jitter_ms=4.0, jitter_alpha=1.5, jitter_cap_ms=1e6, ack_fixed_ms=0)
    entry = sorted(m.order(0)[0] / MS for _ in range(20_000))
    assert quantile(entry, 0.5) == pytest.approx(4.0, rel=0.05)
    assert min(entry) >= 4.0 / 2 ** (1 / 1.5) - 1e-6  # the Pareto scale
    # tail: P(J > x) = (scale / x)^alpha; at 10x the median that is about 1.6 %
    share = sum(v > 40.0 for v in entry) / len(entry)
    assert share == pytest.approx((4.0 / 2 ** (1 / 1.5) / 40.0) ** 1.5, rel=0.25)
    logn = _model(fixed_ms=0, jitter="lognormal", jitter_ms=4.0, jitter_sigma=0.5, jitter_cap_ms=1e6)
    assert sum(logn.order(0)[0] / MS > 40.0 for _ in range(20_000)) < share * len(entry) / 10


def test_the_acknowledgement_path_has_its_own_distribution():
    m = _model(fixed_ms=10, jitter="none", ack_fixed_ms=99,
               ack={"fixed_ms": 3, "jitter": "uniform", "jitter_ms": 2})
    acks = [m.order(0)[1] / MS for _ in range(500)]
    entries = {m.order(0)[0] / MS for _ in range(50)}
    assert entries == {10.0}
    assert all(3.0 <= a <= 5.0 for a in acks) and len(set(acks)) > 100


def test_bursts_of_our_own_messages_are_slower():
    m = _model(fixed_ms=10, jitter="none", ack_fixed_ms=5, burst_slowdown=0.5, burst_window_ms=100)
    assert m.order(0) == (10 * MS, 5 * MS)
    assert m.order(10 * MS) == (15 * MS, 7_500_000)  # one message in the window
    assert m.cancel(20 * MS) == 20 * MS  # two
    assert m.order(110 * MS + 1) == (15 * MS, 7_500_000)  # only the cancel at 20 ms is still in the window
    assert m.order(10_000 * MS) == (10 * MS, 5 * MS)  # quiet again


def test_the_engine_records_entry_and_acknowledgement_latencies_separately():
    e, recs = engine(latency={"fixed_ms": 10, "jitter": "none", "ack_fixed_ms": 10, "ack": {"fixed_ms": 40}})
    e.on_quote(quote(0, 100.0, 1.0, 100.1, 1.0))
    e.submit(intent("buy", 10.0), 0)
    e.on_tick(20 * MS)
    (ack,) = kinds(recs, "ack")
    assert (ack["latency_ms"], ack["ack_latency_ms"], ack["ack_ts_ns"]) == (10.0, 40.0, 50 * MS)


def test_same_seed_same_latencies_other_seed_others():
    def draws(seed):
        m = _model(seed, jitter="pareto", jitter_ms=5, ack={"jitter": "lognormal"})
        return [m.order(t) for t in range(50)]
    assert draws("a") == draws("a") and draws("a") != draws("b")


# ------------------------------------------------------------------ feed latency


def _frame(recv_ns, E, T=None, stream="btcusdt@trade"):
    data = {"e": "trade", "E": E}
    if T is not None:
        data["T"] = T
    return recv_ns, json.dumps({"stream": stream, "data": data})


@given(offset_ms=st.integers(-5000, 5000), delays=st.lists(st.integers(0, 300), min_size=1, max_size=200))
@settings(max_examples=50, deadline=None)
def test_the_offset_is_what_every_frame_pays_at_least(offset_ms, delays):
    """Frames sent at E arrive after a delay >= 0, stamped by a clock offset_ms off: the offset
    estimate is offset + the smallest delay, and the latencies above it are the delays above the
    smallest one (one window)."""
    base = 1_723_161_255_000
    frames = [_frame((base + i + d + offset_ms) * MS, base + i, base + i - 1) for i, d in enumerate(delays)]
    rep = measure(frames, window_s=3600)
    assert rep.offset_ms == offset_ms + min(delays)
    above = rep.streams["trade"]["latency_above_offset_ms"]
    assert above["max"] == max(delays) - min(delays) and above["n"] == len(delays)
    assert rep.streams["trade"]["E_minus_T_ms"]["p50"] == 1.0


def test_frames_without_an_event_time_are_counted_apart():
    frames = [_frame(10**18, 10**12 - 5), (10**18, '{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"1"}}'),
              (10**18, "not json"), (None, "bad line")]
    rep = measure(frames)
    assert rep.frames == 3 and rep.stamped == 1 and rep.unstamped == {"bookTicker": 1}


def test_the_shipped_spot_recording_has_the_recorder_1_27_s_behind():
    rep = measure_file(SPOT)
    assert -1300 < rep.offset_ms < -1250  # recv - E: the receive clock behind the exchange's
    assert set(rep.streams) == {"depth", "trade"}
    assert rep.unstamped == {"bookTicker": 28040, "other": 1}  # spot tickers, and the REST snapshot
    trades = rep.streams["trade"]
    assert trades["frames"] == 9757 and trades["latency_above_offset_ms"]["p50"] >= 0


def test_the_command_prints_the_offset_and_refuses_what_it_cannot_measure(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "framework.cli", "latency", *map(str, args)],
                              capture_output=True, text=True, cwd=REPO)
    r = run(SPOT, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert -1300 < out["offset_ms"] < -1250 and out["streams"]["trade"]["frames"] == 9757
    r = run(SPOT)
    assert r.returncode == 0 and "clock offset" in r.stdout and "trade" in r.stdout
    r = run(tmp_path / "missing.frames.gz")
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    empty = tmp_path / "tickers.frames"
    empty.write_text('1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}\n')
    r = run(empty)
    assert r.returncode == 2 and "no frame carries an exchange event time" in r.stderr
    r = run(SPOT, "--quantile", "1.5")
    assert r.returncode == 2 and "--quantile" in r.stderr
