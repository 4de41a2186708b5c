"""No silent no-op on replay input: symbols missing from the input, files the session would
skip, trades without quotes, and a CSV dump whose name does not say its symbol."""

import gzip
import shutil

from framework.cli import main
from tests.support import REPO, read_records

DATA = REPO / "data"
BTC = DATA / "binance-spot-btcusdt-20240808.frames.gz"
ETH = DATA / "binance-spot-ethusdt-20240808.frames.gz"
TRADES_CSV = DATA / "BTCUSDT-trades-2021-05-19.excerpt.csv"


def _run(tmp_path, *args):
    return main(["run", "--no-progress", "--out", str(tmp_path / "run"), *args])


def test_a_symbol_absent_from_the_input_is_an_error(tmp_path, capsys):
    assert _run(tmp_path, "--replay", str(BTC), "--symbols", "BTCUSDT,XRPUSDT") == 2
    err = capsys.readouterr().err
    assert "symbol XRPUSDT is not in the input (it holds BTCUSDT)" in err
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot happen


def test_an_input_without_any_session_symbol_is_an_error(tmp_path, capsys):
    assert _run(tmp_path, "--replay", str(ETH)) == 2  # the default session trades BTCUSDT
    assert "none of the session's symbols (BTCUSDT); expected --symbols ETHUSDT" in capsys.readouterr().err


def test_an_extra_file_the_session_would_skip_is_an_error(tmp_path, capsys):
    assert _run(tmp_path, "--replay", str(BTC), str(ETH)) == 2
    err = capsys.readouterr().err
    assert f"{ETH}:0:0: holds ETHUSDT, which the session does not trade" in err
    assert "--symbols BTCUSDT,ETHUSDT" in err


def test_a_file_with_extra_symbols_warns_which_are_skipped(tmp_path, capsys):
    mixed = tmp_path / "mixed.frames.gz"
    with gzip.open(mixed, "wb") as out:
        for src in (BTC, ETH):
            with gzip.open(src, "rb") as f:
                out.writelines(line for _, line in zip(range(3000), f, strict=False))
    assert _run(tmp_path, "--replay", str(mixed), "--scalar") == 0
    err = capsys.readouterr().err
    assert "also holds ETHUSDT, which the session does not trade: those events are skipped" in err
    assert {r["symbol"] for r in read_records(tmp_path / "run") if r["symbol"]} == {"BTCUSDT"}


def test_trades_without_quotes_warn_what_the_machines_will_do(tmp_path, capsys):
    assert _run(tmp_path, "--replay", str(TRADES_CSV)) == 0
    err = capsys.readouterr().err
    assert "BTCUSDT: the input has trades but no quotes (bookTicker)" in err
    assert "read the market as unstable" in err


def test_a_renamed_csv_needs_its_symbol(tmp_path, capsys):
    renamed = tmp_path / "dump.csv"
    shutil.copy(TRADES_CSV, renamed)
    assert _run(tmp_path, "--replay", str(renamed)) == 2
    assert "whose name does not say its symbol; expected --symbol SYMBOL" in capsys.readouterr().err
    assert _run(tmp_path, "--replay", str(renamed), "--symbol", "btcusdt") == 0
    trades = [r for r in read_records(tmp_path / "run") if r["kind"] == "session_end"]
    assert trades and trades[0]["events"] > 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "run")]) == 0, capsys.readouterr()  # the run keeps --symbol


def _decoded_counts(path):
    """The reference: every event decoded, trades and quotes counted per symbol."""
    from framework.market.events import Quote, Trade
    from framework.market.replay import open_replay

    trades, quotes = {}, {}
    for ev in open_replay(path):
        if type(ev) is Trade:
            trades[ev.symbol] = trades.get(ev.symbol, 0) + 1
        elif type(ev) is Quote:
            quotes[ev.symbol] = quotes.get(ev.symbol, 0) + 1
    return trades, quotes


def test_the_survey_counts_what_decoding_counts(tmp_path):
    from framework.runtime.sources import survey

    for path in sorted(DATA.glob("*.frames.gz")):
        s = survey(path)  # read from the stream names, nothing decoded
        assert s.complete and (s.trades, s.quotes) == _decoded_counts(path), path.name
    # frames recorded without the combined-stream envelope: the survey decodes them instead
    raw = tmp_path / "raw.frames.gz"
    with gzip.open(BTC, "rt") as src, gzip.open(raw, "wt") as out:
        for _, line in zip(range(4000), src, strict=False):
            stamp, frame = line.split(" ", 1)
            if '"data":' not in frame:  # not a stream frame (a snapshot, an answer): leave it out
                continue
            data = frame[frame.index('"data":') + 7:].rstrip().removesuffix("}")
            out.write(f"{stamp} {data}\n")
    s = survey(raw)
    assert s.trades and s.quotes and (s.trades, s.quotes) == _decoded_counts(raw)
