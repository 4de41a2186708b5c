"""Event time in a whole session: absurd stamps in a recording are quarantined on every path,
a real gap is kept, and both replay paths write the same log."""

from __future__ import annotations

import gzip
import itertools
import json

from framework.market.replay import read_frames
from framework.runtime.run import run_session
from framework.runtime.rundir import read_log
from framework.spec.session import load_session
from tests.support import REPO

S = 1_000_000_000
DATA = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"


def frames(n: int) -> list[tuple[int, str]]:
    return list(itertools.islice(read_frames(DATA), n))


def write_frames(path, lines) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for stamp, raw in lines:
            f.write(f"{stamp} {raw}\n")


def run_both(tmp_path, recording, **extra):
    session = load_session(REPO / "configs" / "default.yaml")
    out = {}
    for name, scalar in (("events", True), ("blocks", False)):
        out[name] = run_session(session, tmp_path / name, replay=[str(recording)], scalar=scalar, **extra).summary
    assert (tmp_path / "events" / "log.jsonl").read_bytes() == (tmp_path / "blocks" / "log.jsonl").read_bytes()
    assert out["blocks"]["wall"]["path"] == "blocks"
    return out["events"]


def test_absurd_stamps_are_quarantined_counted_and_logged_and_both_paths_agree(tmp_path):
    lines = frames(3000)
    bookticker = next(raw for _, raw in lines if "bookTicker" in raw)
    t_mid = lines[1500][0]
    bad = [(t_mid + 365 * 86_400 * S, bookticker),  # a year ahead
           ("10000000000000000000", bookticker),  # 1e19 ns: beyond int64
           (str(2**63), bookticker),
           ("-5", bookticker),
           (t_mid - 3600 * S, bookticker)]  # an hour behind
    for k, line in enumerate(bad):
        lines.insert(1500 + 100 * k, line)
    lines.insert(2400, ("1e19", bookticker))  # not an integer stamp: a malformed line
    recording = tmp_path / "bad.frames.gz"
    write_frames(recording, lines)
    summary = run_both(tmp_path, recording)
    assert summary["feed"]["quarantined"] == 5
    assert summary["feed"]["malformed"] == 1
    assert summary["duration_s"] < 600  # the clock never jumped to a bad stamp
    feed = [r for r in read_log(tmp_path / "events") if r["kind"] == "feed"]
    quarantined = [r for r in feed if r["event"] == "quarantined"]
    assert len(quarantined) == 5
    assert {r["detail"].split(":")[0] for r in quarantined} == {
        "stamp jumps ahead and is not confirmed", "stamp out of range", "stamp far behind"}
    assert any(str(2**63) in r["detail"] for r in quarantined)
    assert any(r["event"] == "malformed" and r["detail"].startswith("bad stamp: 1e19 ") for r in feed)


def test_a_real_gap_in_a_recording_is_kept_on_both_paths(tmp_path):
    lines = frames(4000)
    gap = 2 * 3600 * S  # the recorder was offline two hours
    lines = lines[:2000] + [(ts + gap, raw) for ts, raw in lines[2000:]]
    recording = tmp_path / "gap.frames.gz"
    write_frames(recording, lines)
    summary = run_both(tmp_path, recording)
    assert "quarantined" not in summary["feed"]
    assert summary["duration_s"] > 2 * 3600
    assert json.loads((tmp_path / "events" / "summary.json").read_text())["events"] == summary["events"]
