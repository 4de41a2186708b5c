"""Same seed, same inputs: the same records. Latency jitter follows its configured model."""

from exec_helpers import MS, S, engine, intent, kinds, quote, trade


def run(seed: int, jitter: str = "lognormal") -> list[dict]:
    e, recs = engine(seed=seed, latency={"fixed_ms": 20, "jitter": jitter, "jitter_ms": 10})
    for i in range(200):
        ts = i * 50 * MS
        px = 100.0 + (i % 7) * 0.01
        e.on_quote(quote(ts, px, 1.0 + i % 3, px + 0.01, 1.0))
        e.on_trade(trade(ts + MS, px, 0.7, "sell" if i % 2 else "buy"))
        if i % 10 == 0:
            e.submit(intent("buy" if i % 20 else "sell", 50.0, "passive" if i % 30 else "take"), ts + MS, {"regime": "NORMAL"})
    e.on_tick(60 * S)
    recs.append(e.summary())
    return recs


def test_same_seed_gives_identical_records():
    assert run(3) == run(3)


def test_different_seed_gives_different_latencies():
    lat = lambda recs: [a["latency_ms"] for a in kinds(recs, "ack")]  # noqa: E731
    assert lat(run(3)) != lat(run(4))


def test_uniform_jitter_stays_within_its_bounds():
    lats = [a["latency_ms"] for a in kinds(run(5, "uniform"), "ack")]
    assert lats and all(20.0 <= x <= 30.0 for x in lats) and len(set(lats)) > 1


def test_no_jitter_gives_the_fixed_latency():
    assert {a["latency_ms"] for a in kinds(run(5, "none"), "ack")} == {20.0}


def test_records_are_json_native():
    import json
    for r in run(1):
        assert json.loads(json.dumps(r)) == r
