"""Recorder and the record / fake-binance commands: record then replay gives the same events."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools

from conftest import SCENARIOS, SPOT_BTC
from market_helpers import next_event, run

from framework.market import commands
from framework.market.binance import BinanceSource
from framework.market.events import Quote, Trade
from framework.market.fake_server import FakeBinance
from framework.market.recorder import Recorder, part_path
from framework.market.replay import detect_format, open_replay, read_frames


def test_live_events_equal_replay_of_the_recording(tmp_path):
    frames = list(itertools.islice(read_frames(SPOT_BTC), 1500))
    out = tmp_path / "live.frames.gz"
    expected_market = sum(1 for e in open_replay(SPOT_BTC) if type(e) in (Trade, Quote)
                          and e.ts_ns <= frames[-1][0])

    async def go():
        rec = Recorder(out)
        live = []
        async with FakeBinance(frames) as srv, \
                BinanceSource(["BTCUSDT"], base_url=srv.url, on_frame=rec) as src:
            while len(live) < expected_market:
                live.append(await next_event(src, lambda e: type(e) in (Trade, Quote)))
        rec.close()
        return live

    live = run(go())
    replayed = list(open_replay(out))
    assert replayed == live  # same frames, same stamps, same decoder: identical events


def test_flushed_but_unclosed_recording_reads_up_to_the_last_line(tmp_path):
    out = tmp_path / "cut.frames.gz"
    rec = Recorder(out, flush_s=0.0)
    frames = list(itertools.islice(read_frames(SPOT_BTC), 200))
    for ns, raw in frames:
        rec.write(ns, raw)
    rec.flush()  # then "killed": never closed
    rec.flush_s = 1e9
    rec.write(frames[0][0], frames[0][1])  # not flushed: still in the compressor's buffer
    cut = tmp_path / "cut2.frames.gz"
    cut.write_bytes(out.read_bytes())  # what a reader sees after a kill: no gzip trailer
    assert list(read_frames(cut)) == frames
    rec.close()


def test_a_short_recording_cut_short_replays_up_to_the_last_line(tmp_path):
    """Less than the 64 KB the format is told from, with no gzip trailer: what a re-run of a
    live session killed in its first seconds reads."""
    out = tmp_path / "cut.frames.gz"
    rec = Recorder(out, flush_s=0.0)
    frames = list(itertools.islice(read_frames(SPOT_BTC), 5))
    for ns, raw in frames:
        rec.write(ns, raw)
    rec.flush()
    cut = tmp_path / "cut2.frames.gz"
    cut.write_bytes(out.read_bytes())
    rec.close()
    assert cut.stat().st_size < out.stat().st_size  # no trailer
    assert detect_format(cut) == "frames"
    events = [(type(e), e.ts_ns) for e in open_replay(out)]
    assert events and [(type(e), e.ts_ns) for e in open_replay(cut)] == events


def test_rotation_by_time_and_size_names_parts(tmp_path):
    now = [0.0]
    rec = Recorder(tmp_path / "r.frames.gz", rotate_s=10, clock=lambda: now[0])
    t = 1_723_161_253_937_085_768
    rec.write(t + 1, '{"a":1}')
    now[0] = 11.0
    rec.write(t + 2, '{"a":2}')  # written, then the file rotates
    rec.write(t + 3, '{"a":3}')
    rec.close()
    assert [p.name for p in rec.files] == ["r.frames.gz", "r.0001.frames.gz"]
    assert [ns for f in rec.files for ns, _ in read_frames(f)] == [t + 1, t + 2, t + 3]
    big = Recorder(tmp_path / "s.frames.gz", rotate_bytes=1, flush_s=0.0)
    for i in range(3):
        big.write(i, f'{{"x":{i}}}')
    big.close()
    assert len(big.files) == 4 and part_path(tmp_path / "x.gz", 2).name == "x.0002.gz"


def test_record_command_records_from_a_fake_server(tmp_path):
    frames = list(itertools.islice(read_frames(SPOT_BTC), 300))
    out = tmp_path / "cmd.frames.gz"

    async def go():
        async with FakeBinance(frames) as srv:
            rec = Recorder(out)
            task = asyncio.create_task(commands.record(["BTCUSDT"], rec, url=srv.url,
                                                       log=lambda m: None))
            await srv.wait_connections(1)
            while rec.lines < 250:  # bounded by run()'s timeout
                await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            rec.close()
            return rec.lines

    lines = run(go())
    assert lines >= 250
    with gzip.open(out, "rt") as f:
        first = f.readline()
    assert first.split(" ", 1)[1].startswith('{"stream":"btcusdt@')


def _parse(argv):
    ap = argparse.ArgumentParser(prog="execlab")
    commands.register(ap.add_subparsers(dest="command"))
    return ap.parse_args(argv)


def test_commands_refuse_bad_input_with_exit_code_2(tmp_path, capsys):
    args = _parse(["record", "--symbols", "BTC-USDT", "--out", str(tmp_path / "x.gz")])
    assert args.func(args) == 2
    args = _parse(["record", "--symbols", "BTCUSDT", "--out", str(tmp_path / "x.gz"),
                   "--url", "http://nope"])
    assert args.func(args) == 2
    args = _parse(["record", "--symbols", "BTCUSDT", "--out", str(tmp_path / "x.gz"),
                   "--duration", "-1"])
    assert args.func(args) == 2
    args = _parse(["fake-binance", "--replay", str(tmp_path / "missing.frames.gz")])
    assert args.func(args) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    args = _parse(["fake-binance", "--replay", str(bad)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "BTC-USDT" in err and f"{bad}:1:1:" in err


def test_fake_server_plays_a_scenario_honouring_streams():
    frames = list(itertools.islice(commands.load_frames(SCENARIOS / "calm.yaml"), 400))

    async def go():
        async with FakeBinance(frames) as srv, \
                BinanceSource(["BTCUSDT"], streams=("bookTicker",), base_url=srv.url) as src:
            return [await next_event(src, lambda e: type(e) in (Trade, Quote)) for _ in range(50)]

    got = run(go())
    assert all(type(e) is Quote for e in got)  # trades were not subscribed
