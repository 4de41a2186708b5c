"""execlab scenario inject: labelled shocks, gaps and garbage written into a real recording."""

from __future__ import annotations

import json
from pathlib import Path

from framework.market.decode import FrameDecoder
from framework.market.events import FeedEvent, Quote, Trade
from framework.market.inject import inject
from framework.market.replay import read_frames
from tests.support import REPO

BASE = REPO / "data" / "binance-usdm-ethusdt-20240808.frames.gz"
NS = 1_000_000_000


def decoded(path: Path) -> list:
    dec = FrameDecoder()
    return [ev for ev in (dec.decode(raw, ns) for ns, raw in read_frames(path)) if ev is not None]


def test_shocks_gaps_and_garbage_are_where_the_labels_say(tmp_path):
    out = tmp_path / "x.frames.gz"
    labels = inject(BASE, out, shocks=[(30, 2)], gaps=[(60, 3)], repeat=2, every_s=100,
                    garbage_rate=0.01, jump_bps=40, spread_bps=20)
    side = json.loads(Path(str(out) + ".labels.json").read_text())
    assert side["windows"] == labels["windows"]
    assert [w["kind"] for w in side["windows"]] == ["shock", "gap", "shock", "gap"]
    base = decoded(BASE)
    events = decoded(out)
    t0 = next(read_frames(BASE))[0]
    assert side["windows"][0]["start_ns"] == t0 + 30 * NS
    for w in side["windows"]:
        a, b = w["start_ns"], w["end_ns"]
        inside = [ev for ev in events if a <= ev.ts_ns < b and not isinstance(ev, FeedEvent)]
        if w["kind"] == "gap":
            assert inside == []  # nothing received
            continue
        quotes = [ev for ev in inside if isinstance(ev, Quote)]
        sells = [ev for ev in inside if isinstance(ev, Trade) and ev.buyer_is_maker]
        assert quotes[0].ts_ns == a  # the shock starts with a book ticker at its start
        before = [ev for ev in base if isinstance(ev, Quote) and ev.ts_ns < a][-1]
        mid0 = (before.bid + before.ask) / 2
        for q in quotes:
            mid = (q.bid + q.ask) / 2
            assert 35 <= (mid0 - mid) / mid0 * 1e4 <= 45  # the jump
            assert 18 <= (q.ask - q.bid) / mid * 1e4 <= 22  # the blow-out
        assert len(sells) >= (b - a) / NS * 150  # a burst: one print every 5 ms
    # after the last window the real frames resume unchanged
    last = side["windows"][-1]["end_ns"]
    real = [e for e in events if e.ts_ns > last and not isinstance(e, FeedEvent)]
    assert real == [e for e in base if e.ts_ns > last and not isinstance(e, FeedEvent)]
    malformed = [ev for ev in events if isinstance(ev, FeedEvent) and ev.kind == "malformed"]
    assert len(malformed) >= side["garbage_frames"] > 0


def test_the_same_arguments_write_the_same_file(tmp_path):
    a, b = tmp_path / "a.frames.gz", tmp_path / "b.frames.gz"
    for p in (a, b):
        inject(BASE, p, shocks=[(10, 1)], garbage_rate=0.05, seed=5)
    assert list(read_frames(a)) == list(read_frames(b))
