"""The fast path fed a recording's chunks as columns (``EventBlock``): one file holding two
symbols, odd lines and a small block size write the same log as event by event, and rows the
fast path does not visit are never built into events."""

from __future__ import annotations

import gzip

import pytest

from framework.market import columns
from framework.runtime.blocks import BlockRunner
from framework.runtime.pipeline import Runtime
from framework.runtime.run import run_session
from framework.runtime.sources import replay_events
from framework.spec.session import load_session
from tests.support import REPO

SPOT = ["binance-spot-btcusdt-20240808.frames.gz", "binance-spot-ethusdt-20240808.frames.gz"]
USDM = ["binance-usdm-btcusdt-20240808.frames.gz", "binance-usdm-ethusdt-20240808.frames.gz"]


def _one_file_of_two_symbols(tmp_path, files, odd: bool):
    """The recordings' lines in one file, in receive order, with odd lines among them."""
    lines = []
    for name in files:
        with gzip.open(REPO / "data" / name, "rb") as f:
            lines += [ln.rstrip(b"\n") for ln in f]
    lines.sort(key=lambda ln: int(ln.split(b" ", 1)[0]))
    if odd:
        mid = len(lines) // 2
        t = int(lines[mid].split(b" ", 1)[0])
        lines[mid:mid] = [b"%d {\"stream\":\"btcusdt@bookTicker\",\"data\":{\"u\":1,\"s\":\"BTCUSDT\"" % t,
                          b"no stamp here",
                          b'%d {"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"0",'
                          b'"q":"1","T":1,"m":true,"M":true}}' % (t + 1)]
    path = tmp_path / "pair.frames.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", 1))
    return path


def _pair_config():
    text = (REPO / "configs" / "default.yaml").read_text().replace("symbols: [BTCUSDT]", "symbols: [BTCUSDT, ETHUSDT]")
    return load_session(REPO / "configs" / "default.yaml", text=text)


@pytest.mark.parametrize("files,odd", [(SPOT, True), (USDM, False)], ids=["spot-odd-lines", "usdm"])
def test_one_recording_of_two_symbols_writes_the_same_log_on_both_paths(tmp_path, files, odd):
    path = _one_file_of_two_symbols(tmp_path, files, odd)
    session = _pair_config()
    a = run_session(session, tmp_path / "scalar", replay=[str(path)], scalar=True)
    b = run_session(session, tmp_path / "blocks", replay=[str(path)])
    assert (a.summary["wall"]["path"], b.summary["wall"]["path"]) == ("events", "blocks")
    assert (tmp_path / "scalar" / "log.jsonl").read_bytes() == (tmp_path / "blocks" / "log.jsonl").read_bytes()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert sum(a.summary["symbols"][symbol]["transitions"].values()) > 5


def test_small_blocks_of_columns_and_rows_built_only_where_visited(monkeypatch):
    session = load_session(REPO / "configs" / "default.yaml")
    built = []
    real = columns.EventBlock.__getitem__

    def counting(self, i):
        ev = real(self, i)
        if type(i) is not slice:
            built.append(id(ev))
        return ev

    monkeypatch.setattr(columns.EventBlock, "__getitem__", counting)
    events, _ = replay_events(session)
    records = []
    runner = BlockRunner(Runtime(session, records.append), block_rows=700)
    runner.run(events)
    assert runner.stats["rows"] > 37_000
    assert 0 < len(set(built)) < runner.stats["rows"] // 4  # most rows were never made into events

    monkeypatch.setattr(columns.EventBlock, "__getitem__", real)
    scalar = []
    from framework.runtime.pipeline import run_events

    rt = Runtime(session, scalar.append)
    run_events(rt, replay_events(session)[0])
    rt.finish()
    runner.rt.finish()
    assert records == scalar
