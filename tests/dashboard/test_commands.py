"""`execlab dashboard` and `execlab run --dashboard` on bad input: a clear message, exit 2."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect

from framework.cli import build_parser, main
from framework.dashboard.commands import load_run_records


def test_no_such_run(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_a_log_that_is_not_an_audit_log(tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text('{"kind":"metrics","ts_ns":1}\n')
    assert main(["dashboard", str(tmp_path), "--port", "0"]) == 2
    assert "does not start with session_start" in capsys.readouterr().err
    (tmp_path / "log.jsonl").write_text('{"kind":"session_start","ts_ns":1}\n[1, 2]\n')
    assert main(["dashboard", str(tmp_path), "--port", "0"]) == 2
    assert "log.jsonl:2:1: not a JSON object" in capsys.readouterr().err


def test_a_torn_last_line_is_left_out(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"kind":"session_start","ts_ns":1}\n{"kind":"metr')
    assert load_run_records(tmp_path) == [{"kind": "session_start", "ts_ns": 1}]


@pytest.mark.parametrize("argv", [["dashboard", "RUN", "--port", "70000"], ["run", "--dashboard", "x"],
                                  ["run", "--dashboard", "-1"]])
def test_a_bad_port_is_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2 and "is not a port" in capsys.readouterr().err


def test_run_takes_the_dashboard_flags_with_a_default_port():
    args = build_parser().parse_args(["run", "configs/default.yaml", "--dashboard"])
    assert args.dashboard == 8765 and args.dashboard_host == "127.0.0.1" and args.dashboard_token is None
    assert build_parser().parse_args(["run"]).dashboard is None


def test_a_run_without_its_spec_snapshot(tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text('{"kind":"session_start","ts_ns":1,"symbols":[]}\n')
    assert main(["dashboard", str(tmp_path), "--port", "0"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_after_a_session_reaches_its_end_the_page_stays_until_ctrl_c(serve, tmp_path):
    served = serve(["run", "configs/scenario-shock.yaml", "--out", str(tmp_path / "run"), "--no-progress",
                    "--dashboard", "0"])
    url = served.address()
    assert served.lingering.wait(300), "".join(served.stderr)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200 and b"dashboard.js" in resp.read()

    async def page() -> dict:
        async with connect(url.replace("http://", "ws://") + "ws", max_size=None) as ws:
            await ws.recv()  # hello
            return json.loads(await ws.recv())

    snapshot = asyncio.run(page())
    assert snapshot["session"]["ended"] and snapshot["session"]["end_reason"] == "end of input"
    code, out = served.interrupt()
    assert code == 0 and "run directory:" in out  # the summary came first
