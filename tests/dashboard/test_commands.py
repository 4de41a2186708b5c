"""`execlab dashboard` and `execlab run --dashboard` on bad input: a clear message, exit 2."""

from __future__ import annotations

import pytest

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
