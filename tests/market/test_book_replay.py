"""replay_book on hand-built recordings: gaps, time in sync, snapshot attribution."""

from __future__ import annotations

import gzip
import json

from framework.cli import main
from framework.market.book_replay import replay_book

S = 1_000_000_000
T0 = 1723161254 * S


def depth(sym, U, u, bids=(), asks=(), pu=None) -> str:
    data = {"e": "depthUpdate", "E": 1, "s": sym, "U": U, "u": u,
            "b": [[str(p), str(q)] for p, q in bids], "a": [[str(p), str(q)] for p, q in asks]}
    if pu is not None:
        data["pu"] = pu
    return json.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": data})


def ticker(sym, u, b, bq, a, aq) -> str:
    return json.dumps({"stream": f"{sym.lower()}@bookTicker",
                       "data": {"u": u, "s": sym, "b": str(b), "B": str(bq), "a": str(a), "A": str(aq)}})


def snapshot(L, bids, asks) -> str:
    return json.dumps({"lastUpdateId": L, "bids": [[str(p), str(q)] for p, q in bids],
                       "asks": [[str(p), str(q)] for p, q in asks]})


def write(tmp_path, frames) -> str:
    p = tmp_path / "rec.frames.gz"
    with gzip.open(p, "wt") as f:
        for i, raw in enumerate(frames):
            f.write(f"{T0 + i * S} {raw}\n")
    return str(p)


def test_gap_rebuild_and_time_in_sync(tmp_path):
    path = write(tmp_path, [
        depth("BTCUSDT", 1, 5, [(10.0, 1.0)], [(11.0, 1.0)]),  # t0: partial book from diffs
        snapshot(6, [(10.0, 2.0), (9.0, 1.0)], [(11.0, 1.0)]),  # t1: complete
        depth("BTCUSDT", 7, 8, [(10.0, 3.0)]),  # t2: bridges 7
        ticker("BTCUSDT", 8, 10.0, 3.0, 11.0, 1.0),  # t3
        depth("BTCUSDT", 12, 13, [(10.5, 1.0)]),  # t4: 9..11 missing -> gap, rebuilt from diffs
        depth("BTCUSDT", 14, 14, [(10.6, 1.0)]),  # t5
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT"}}',  # t6: malformed
    ])
    book, rep = replay_book(path)
    c = book.counters
    assert (c.gaps, c.resyncs, c.rebuilds, c.snapshots_used) == (1, 1, 2, 1)
    assert book.state == "partial" and book.levels("bid", None) == [(10.6, 1.0), (10.5, 1.0)]
    assert rep.errors == {"missing field": 1}
    assert rep.gaps[0][0] == T0 + 4 * S and "12" in rep.gaps[0][1]
    assert rep.ticker.by_id_compared == 1 and rep.ticker.by_id_all_agree == 1
    # in sync all along: partial, complete, then partial again right after the gap
    assert rep.in_sync_ns == 6 * S and rep.in_sync_fraction == 1.0
    # without rebuilding from diffs, the book waits for a snapshot after the gap
    book, rep = replay_book(path, rebuild_from_diffs=False)
    assert book.state == "awaiting_snapshot" and not book.in_sync
    assert rep.in_sync_ns == 3 * S  # from the snapshot (t1) to the gap (t4)


def test_bare_snapshot_with_several_symbols_is_not_used(tmp_path, capsys):
    path = write(tmp_path, [
        depth("BTCUSDT", 1, 5, [(10.0, 1.0)], [(11.0, 1.0)]),
        depth("ETHUSDT", 1, 5, [(1.0, 1.0)], [(1.1, 1.0)]),
        snapshot(6, [(10.0, 2.0)], [(11.0, 1.0)]),
        depth("BTCUSDT", 6, 7, [(10.0, 3.0)]),
    ])
    book, rep = replay_book(path, "BTCUSDT")
    assert rep.snapshots_unattributed == 1 and book.counters.snapshots == 0
    assert book.state == "partial" and rep.other_symbols == ["ETHUSDT"]
    assert main(["book", path]) == 2
    assert "several symbols" in capsys.readouterr().err
    assert main(["book", path, "--symbol", "ethusdt"]) == 0
    assert "ETHUSDT spot book" in capsys.readouterr().out


def test_usdm_recording_without_snapshot_is_partial(tmp_path):
    path = write(tmp_path, [
        depth("BTCUSDT", 100, 110, [(10.0, 1.0)], [(11.0, 1.0)], pu=90),
        depth("BTCUSDT", 120, 130, [(10.0, 2.0)], pu=110),
        depth("BTCUSDT", 140, 150, [(10.0, 0.0), (9.0, 1.0)], pu=131),  # pu breaks the chain
    ])
    book, rep = replay_book(path)
    assert rep.futures and book.futures
    assert book.counters.gaps == 1 and "pu 131" in rep.gaps[0][1]
    assert book.levels("bid", None) == [(9.0, 1.0)] and book.walk("sell", 0.5).unknown
