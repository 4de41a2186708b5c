"""`execlab metrics` on the shipped recordings: the CSV agrees with the raw frames."""

from __future__ import annotations

import argparse
import csv
import gzip
import heapq
import json
import math
from bisect import bisect_right
from pathlib import Path

import pytest

from framework.spec.errors import SpecErrors
from framework.state import commands

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "binance-spot-btcusdt-20240808.frames.gz"
ETH = ROOT / "data" / "binance-spot-ethusdt-20240808.frames.gz"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="execlab")
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["metrics", *argv])
    return args.func(args)


def raw_book(path: Path) -> tuple[list[int], list[tuple[float, float]]]:
    """Every bookTicker of a frame file, read straight from the raw lines."""
    stamps, books = [], []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            stamp, _, frame = line.partition(" ")
            try:
                msg = json.loads(frame)
            except ValueError:
                continue
            if not isinstance(msg, dict) or not str(msg.get("stream", "")).endswith("@bookTicker"):
                continue
            d = msg["data"]
            stamps.append(int(stamp))
            books.append((float(d["b"]), float(d["a"])))
    return stamps, books


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("recording,every", [(BTC, "1s"), (BTC, "250ms"), (ETH, "1s")])
def test_csv_mid_and_spread_match_the_last_raw_book_ticker_at_every_sample(
        tmp_path, recording, every, capsys):
    out = tmp_path / "m.csv"
    assert run(str(recording), "--every", every, "--out", str(out)) == 0
    rows = read_csv(out)
    stamps, books = raw_book(recording)
    step = {"1s": 1_000_000_000, "250ms": 250_000_000}[every]
    assert len(rows) >= (stamps[-1] - stamps[0]) // step - 2
    assert "symbol" not in rows[0]
    prev = None
    for row in rows:
        ts = int(row["ts_ns"])
        assert ts % step == 0 and (prev is None or ts == prev + step)
        prev = ts
        i = bisect_right(stamps, ts) - 1
        mid, spread = float(row["mid"]), float(row["spread"])
        if i < 0:
            assert math.isnan(mid) and math.isnan(spread)
            continue
        bid, ask = books[i]
        assert mid == (bid + ask) / 2, row["time"]
        assert spread == ask - bid, row["time"]
        assert float(row["quote_age_ms"]) == pytest.approx((ts - stamps[i]) / 1e6)


def test_csv_has_iso_time_and_a_column_per_metric_in_yaml_order(tmp_path):
    out = tmp_path / "m.csv"
    assert run(str(BTC), "--out", str(out)) == 0
    with open(out, newline="") as f:
        header = next(csv.reader(f))
    from framework.state import default_metrics_path, load_metric_set

    assert header == ["time", "ts_ns", *load_metric_set(default_metrics_path()).names]
    first = read_csv(out)[0]
    assert first["time"] == "2024-08-08T23:54:15.000Z"
    assert first["ts_ns"] == "1723161255000000000"


def test_several_symbols_get_a_symbol_column_and_one_row_each_per_sample(tmp_path):
    merged = tmp_path / "both.frames.gz"
    with gzip.open(BTC, "rt") as a, gzip.open(ETH, "rt") as b, gzip.open(merged, "wt") as w:
        for line in heapq.merge(a, b, key=lambda s: int(s.split(" ", 1)[0])):
            w.write(line)
    out = tmp_path / "m.csv"
    assert run(str(merged), "--out", str(out)) == 0
    rows = read_csv(out)
    assert {r["symbol"] for r in rows} == {"BTCUSDT", "ETHUSDT"}
    eth_stamps, eth_books = raw_book(ETH)
    for r in rows:
        if r["symbol"] == "ETHUSDT":
            i = bisect_right(eth_stamps, int(r["ts_ns"])) - 1
            if i >= 0:
                assert float(r["mid"]) == sum(eth_books[i]) / 2
    only = tmp_path / "eth.csv"
    assert run(str(merged), "--symbol", "ethusdt", "--out", str(only)) == 0
    eth_rows = read_csv(only)
    assert "symbol" not in eth_rows[0]
    assert [r["mid"] for r in eth_rows] == [r["mid"] for r in rows if r["symbol"] == "ETHUSDT"]


def test_describe_prints_quantiles_of_every_metric(capsys):
    assert run(str(BTC), "--describe") == 0
    text = capsys.readouterr().out
    for word in ("p1", "p5", "p25", "p50", "p75", "p95", "p99", "max", "spread_to_median_60s",
                 "quote_age_ms"):
        assert word in text


def test_describe_json_gives_numbers_per_symbol_and_metric(capsys):
    assert run(str(BTC), "--every", "1s", "--describe", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    spread = doc["symbols"]["BTCUSDT"]["spread"]
    assert set(spread) == {"n", "nan", "inf", "p1", "p5", "p25", "p50", "p75", "p95", "p99",
                           "max"}
    assert spread["p50"] == pytest.approx(0.01, abs=1e-9)  # one tick
    # The 23:58:34 sweep (best bid -13 bps in 60 ms) stays 10 s in the 10 s window.
    assert doc["symbols"]["BTCUSDT"]["mid_move_bps_10s"]["max"] > 10
    assert doc["symbols"]["BTCUSDT"]["crossed_count_60s"]["max"] == 0


@pytest.mark.parametrize("argv,needle", [
    ((str(BTC),), "expected --out"),
    ((str(BTC), "--every", "soon", "--describe"), "not a duration"),
    ((str(BTC), "--every", "0.1ms", "--describe"), "below 1ms"),
    (("/nonexistent.frames.gz", "--describe"), "no such file"),
    ((str(BTC), "--json", "--out", "x.csv"), "--json goes with --describe"),
])
def test_user_mistakes_return_2_with_a_clear_message(argv, needle, capsys):
    assert run(*argv) == 2
    assert needle in capsys.readouterr().err


def test_a_bad_metrics_config_raises_spec_errors_with_the_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("metrics:\n  r:\n    kind: trade_rate\n    doc: x\n")
    with pytest.raises(SpecErrors) as exc:
        run(str(BTC), str(cfg), "--describe")
    assert str(exc.value).startswith(f"{cfg}:2:3: metric 'r'")


def test_a_custom_config_sets_the_columns(tmp_path):
    cfg = tmp_path / "m.yaml"
    cfg.write_text("metrics:\n  mid: {kind: mid, doc: m}\n"
                   "  mid_move_bps_5s: {kind: mid_move, window_s: 5, doc: r}\n")
    out = tmp_path / "m.csv"
    assert run(str(BTC), str(cfg), "--every", "5s", "--out", str(out)) == 0
    with open(out, newline="") as f:
        assert next(csv.reader(f)) == ["time", "ts_ns", "mid", "mid_move_bps_5s"]
