"""The book on the shipped recordings (spot depth@100ms, USD-M depth@0ms), and `execlab book`."""

from __future__ import annotations

import json

import pytest
from conftest import SPOT_BTC, SPOT_ETH, USDM_BTC

from framework.cli import main
from framework.market.book_replay import replay_book

_REPLAYS: dict = {}


def replay(path):
    """Each recording is replayed once per test module (a few seconds each)."""
    if path not in _REPLAYS:
        _REPLAYS[path] = replay_book(path)
    return _REPLAYS[path]


@pytest.fixture(scope="module", params=[SPOT_BTC, SPOT_ETH, USDM_BTC], ids=lambda p: p.name[:22])
def replayed(request):
    return request.param, *replay(request.param)


def test_book_stays_in_sync(replayed):
    path, book, rep = replayed
    c = book.counters
    assert book.complete  # each recording carries a REST snapshot the diffs bridge to
    assert c.gaps == 0 and c.crossed == 0 and not rep.errors
    assert c.snapshots_used == 1 and rep.snapshots_unattributed == 0
    assert c.applied == c.diffs == rep.depth_updates > 3000
    assert rep.in_sync_fraction == 1.0
    assert rep.futures == ("usdm" in path.name)


def test_book_agrees_with_book_tickers(replayed):
    """After each diff, at final id u, the book's touch against the latest book ticker with an
    id <= u: a ticker is pushed on every change of the touch, so they must agree exactly once
    the book is built from a snapshot."""
    _, _, rep = replayed
    tk = rep.ticker
    assert tk.by_id_compared > 3000
    assert tk.by_id_all_agree == tk.by_id_prices_agree == tk.by_id_compared
    # Before the snapshot arrives the book is partial: those few states are counted apart.
    assert tk.by_id_partial < 10


def test_arrival_comparison_is_reported_not_assumed():
    """On arrival the spot ticker is always ahead of depth@100ms (depth is batched); on USD-M
    depth@0ms is sometimes newer than the ticker that arrives after it, and then the touch may
    have moved: agreement is partial and measured."""
    _, rep = replay(SPOT_BTC)
    assert rep.ticker.compared == 0 and rep.ticker.ticker_ahead == rep.ticker.tickers
    _, rep = replay(USDM_BTC)
    tk = rep.ticker
    assert 0 < tk.compared < tk.tickers
    assert tk.same_id_all_agree == tk.same_id > 0  # at the same update id they agree
    assert tk.all_agree < tk.compared  # a newer book differs from an older ticker


def test_book_at_a_moment_has_a_real_touch():
    at_ns = 1723161480_000_000_000  # 23:58:00 UTC by the recorder's clock
    book, rep = replay_book(SPOT_BTC, "btcusdt", at_ns=at_ns)
    assert rep.last_ns <= at_ns and book.in_sync
    bid, ask = book.best_bid(), book.best_ask()
    assert 0 < ask[0] - bid[0] < 1.0 and bid[1] > 0 and ask[1] > 0
    w = book.walk("buy", 1.0)
    assert w.filled == 1.0 and not w.unknown and w.avg_price >= ask[0]


def test_cli_book(capsys):
    assert main(["book", str(SPOT_BTC), "--at", "2024-08-08T23:58:00Z", "--levels", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["symbol"] == "BTCUSDT" and out["market"] == "spot" and out["in_sync"]
    assert len(out["bids"]) == 3 and out["bids"][0][0] < out["asks"][0][0]
    assert out["sequencing"]["gaps"] == 0 and out["sequencing"]["in_sync_fraction"] == 1.0
    assert [w["qty"] for w in out["walks"]] == [0.1, 0.1, 1.0, 1.0, 5.0, 5.0]
    assert main(["book", str(USDM_BTC), "--at", "+5"]) == 0
    text = capsys.readouterr().out
    assert "BTCUSDT usdm book" in text and "0 gaps" in text


@pytest.mark.parametrize("argv, message", [
    (["--at", "yesterday"], "is not a time"),
    (["--levels", "-1"], "--levels"),
    (["--walk", "1,x"], "--walk"),
    (["--symbol", "ETHUSDT"], "no depth frames for ETHUSDT"),
    (["--at", "2020-01-01T00:00:00Z"], "no depth frames"),
])
def test_cli_book_bad_input(argv, message, capsys):
    assert main(["book", str(SPOT_BTC), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_book_not_a_recording(tmp_path, capsys):
    assert main(["book", str(tmp_path / "missing.frames.gz")]) == 2
    assert "no such file" in capsys.readouterr().err
    p = tmp_path / "x.frames"
    p.write_text("1723161254036059768 {\"stream\":\"btcusdt@trade\",\"data\":{}}\n")
    assert main(["book", str(p)]) == 2
    assert "no depth frames" in capsys.readouterr().err
