"""execlab sweep: the file, the trials, resume, failures, the table, the report, and the same
results from the local pool and from a real Dask cluster on the loopback address."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from framework.cli import main
from framework.sweep.backends import DaskCluster, LocalPool, Serial
from framework.sweep.figures import run_figures, summary_figures
from framework.sweep.results import same_tables
from framework.sweep.runner import collect, run_sweep
from framework.sweep.spec import load_sweep
from tests.support import REPO

from .conftest import write_sweep

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _table(path):
    return pq.read_table(path)


def test_sweep_file_errors_name_file_line_col(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"sweep: bad\nbase: {REPO / 'configs' / 'default.yaml'}\nrecordings:\n  - path: nope.frames.gz\n"
        "params:\n  permission.cooldwn_s: {values: [5, 30]}\n"
        "objective: {maximize: decision.tradable_shar}\n"
        "constraints: [exec.fills + 1]\nsearch: {method: random}\n", encoding="utf-8")
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4:5: recording" in err
    assert f"{bad}:6:3: 'permission.cooldwn_s': permission has no param 'cooldwn_s'" in err
    assert f"{bad}:7:23: objective: unknown input 'decision.tradable_shar'" in err
    assert f"{bad}:8:15: constraint 'exec.fills + 1' is a num; expected a condition" in err
    assert f"{bad}:9:9: search method random needs a number of points" in err
    assert "Traceback" not in err


def test_schema_errors_and_no_eval(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"sweep: bad\nbase: {REPO / 'configs' / 'default.yaml'}\nparams: {{}}\n"
                   "objective: {maximize: \"__import__('os').system('true')\"}\nbogus: 1\n", encoding="utf-8")
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5:1: Additional properties are not allowed ('bogus' was unexpected)" in err
    assert f"{bad}:3:9:" in err  # params: {} has too few properties


def test_unknown_namespaces_are_figures_summary_json_will_carry(tmp_path, short_recordings):
    path = write_sweep(tmp_path, short_recordings[:1],
                       objective="objective: {maximize: scorecard.tradable_share_after_warmup}")
    sweep = load_sweep(path)
    assert sweep.figure_reads()[0] == "scorecard.tradable_share_after_warmup"
    summary = {"wall": {"wall_s": 3.0}, "symbols": {"BTCUSDT": {"scorecard": {"tradable_share_after_warmup": 0.5,
                                                                               "flaps": {"regime": 2}}}}}
    assert summary_figures(summary) == {"scorecard.tradable_share_after_warmup": 0.5, "scorecard.flaps_regime": 2.0}


def test_serial_sweep_resumes_reuses_and_records_failures(tmp_path, short_recordings):
    # One real recording, and a copy of it asked for a symbol it does not hold: that trial fails
    # with its error and the others go on.
    wrong = tmp_path / "binance-spot-ethusdt-copy.frames.gz"
    shutil.copyfile(short_recordings[0], wrong)
    path = write_sweep(tmp_path, [short_recordings[0], wrong], params="  permission.cooldown_s: {values: [5, 30]}")
    sweep = load_sweep(path)
    first = run_sweep(sweep, Serial())
    assert (first.ran, first.reused, first.failed) == (4, 0, 2)
    failed = [r for r in first.records if r["status"] != "ok"]
    assert {r["symbols"][0] for r in failed} == {"ETHUSDT"}
    assert all("ETHUSDT" in r["error"] and "copy.frames.gz" in r["error"] for r in failed), failed
    ok = [r for r in first.records if r["status"] == "ok"]
    assert all(r["figures"]["run.events"] > 0 for r in ok)
    # Every finished trial is a normal run directory: verify re-runs it byte for byte.
    trial_dir = sweep.out / "trials" / ok[0]["key"][:16]
    assert main(["verify", str(trial_dir)]) == 0
    # Run again: the finished trials are reused, the failed ones are tried again.
    again = run_sweep(load_sweep(path), Serial())
    assert (again.ran, again.reused, again.failed) == (2, 2, 2)
    assert [r["key"] for r in again.records] == [r["key"] for r in first.records]
    # An interrupted sweep leaves partial folders; the next run clears them and keeps the rest.
    (sweep.out / "trials" / ".partial-deadbeef").mkdir()
    run_sweep(load_sweep(path), Serial())
    assert not (sweep.out / "trials" / ".partial-deadbeef").exists()


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory, short_recordings):
    """A 2 x 2 sweep over one recording, run in this process."""
    path = write_sweep(tmp_path_factory.mktemp("serial"), short_recordings[:1])
    sweep = load_sweep(path)
    return path, sweep, run_sweep(sweep, Serial())


def test_figures_of_a_trial_match_its_summary(serial_sweep):
    _, sweep, res = serial_sweep
    rec = res.records[0]
    run = sweep.out / "trials" / rec["key"][:16]
    summary = json.loads((run / "summary.json").read_text())
    sym = summary["symbols"]["BTCUSDT"]
    f = rec["figures"]
    for machine, states in sym["time_in_state_s"].items():
        assert f[f"{machine}.transitions"] == sym["transitions"][machine]
        for state, seconds in states.items():
            assert f[f"{machine}.time_{state}_s"] == pytest.approx(seconds, abs=1e-3)
        shares = [v for k, v in f.items() if k.startswith(f"{machine}.share_")]
        assert sum(shares) == pytest.approx(1.0)
    assert f["exec.orders"] == sym["execution"]["all"]["orders"]
    assert f["exec.net_pnl_usd"] == sym["execution"]["net_pnl_usd"]
    assert 0.0 <= f["decision.tradable_share"] <= 1.0
    # A labels sidecar: orders inside a window are counted.
    orders = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    orders = [r for r in orders if r["kind"] == "order"]
    if orders:
        t = orders[0]["ts_ns"]
        g = run_figures(run, labels={"windows": [{"start_ns": t, "end_ns": t + 1}]})
        assert g["labels.orders_inside"] == 1.0 and g["labels.windows"] == 1.0


def test_local_pool_and_loopback_cluster_give_the_same_table(tmp_path, short_recordings, dask_cluster):
    duckdb = pytest.importorskip("duckdb")
    from framework.market.inject import inject

    # The shipped recordings and one with trouble injected (a shock and a gap, labelled in its
    # sidecar) as `execlab scenario inject` writes it.
    injected = short_recordings[0].parent / "binance-spot-btcusdt-20240808-injected.frames.gz"
    inject(short_recordings[0], injected, shocks=[(2.0, 1.0)], gaps=[(5.0, 1.5)])
    labels = injected.with_name(injected.name + ".labels.json")
    try:
        path = write_sweep(tmp_path, [injected, *short_recordings])
        sweep = load_sweep(path)
        assert sweep.recordings[0].labels == labels
        pool = run_sweep(sweep, LocalPool(2))
        assert pool.failed == 0 and len(pool.records) == 4 * (len(short_recordings) + 1)

        sweep_c = load_sweep(path)
        sweep_c.out = tmp_path / "out-cluster"
        cluster = run_sweep(sweep_c, DaskCluster(dask_cluster))  # recordings shipped with the tasks
        assert cluster.failed == 0 and cluster.ran == len(pool.records)
        assert {r["worker"] for r in collect(sweep_c)} != {r["worker"] for r in collect(sweep)}
        assert _table(pool.table).column_names == _table(cluster.table).column_names
        assert _table(pool.table).column("trial").to_pylist() == _table(cluster.table).column("trial").to_pylist()
        assert same_tables(pool.table, cluster.table)

        # Each cluster trial ran on a worker's copy of the recording and came home relocated:
        # the same log byte for byte as the pool's, and verify agrees.
        for rec in pool.records[:3]:
            a = sweep.out / "trials" / rec["key"][:16]
            b = sweep_c.out / "trials" / rec["key"][:16]
            assert (a / "log.jsonl").read_bytes() == (b / "log.jsonl").read_bytes()
            assert json.loads((a / "session.json").read_text()) == json.loads((b / "session.json").read_text())
        assert main(["verify", str(sweep_c.out / "trials" / pool.records[0]["key"][:16])]) == 0

        # The table answers questions with DuckDB.
        q = duckdb.sql(f"SELECT count(*), count(DISTINCT point), count(*) FILTER (WHERE \"labels.windows\" = 2) FROM '{cluster.table}'").fetchall()[0]
        assert q == (len(pool.records), 4, 4)  # 4 points on the injected recording, with its 2 windows

        # Shared inputs: the workers read the recordings at the same paths; the trials are reused.
        again = run_sweep(load_sweep(path), DaskCluster(dask_cluster, shared=True))
        assert (again.ran, again.reused) == (0, len(pool.records))
    finally:
        injected.unlink()
        labels.unlink()


def test_report_is_self_contained(serial_sweep):
    path, sweep, _ = serial_sweep
    assert main(["sweep", "report", str(path), "--best", "1"]) == 0
    page = (sweep.out / "report.html").read_text()
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "Pareto front" in page and "permission.cooldown_s" in page and "regime.fast_move_x" in page
    # The best point's trial has its run report, linked from the page; the others link their folder.
    best = [d for d in (sweep.out / "trials").iterdir() if (d / "report.html").is_file()]
    assert len(best) == 1 and f"trials/{best[0].name}/report.html" in page


def test_same_tables_notices_one_changed_figure(serial_sweep, tmp_path):
    _, sweep, res = serial_sweep
    table = pq.read_table(res.table)
    assert same_tables(res.table, res.table)
    rows = table.to_pylist()
    rows[-1]["exec.orders"] = rows[-1]["exec.orders"] + 1
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), tmp_path / "changed.parquet")
    assert not same_tables(res.table, tmp_path / "changed.parquet")


def test_ctrl_c_stops_and_keeps_finished_trials(tmp_path, short_recordings):
    """SIGINT to a running sweep on the local pool: exit 130, finished trials kept, no partial
    folder counted; the next run reuses them and runs only the rest."""
    path = write_sweep(tmp_path, short_recordings[:1], params="  permission.cooldown_s: {values: [5, 10, 20, 30, 45, 60]}")
    sweep = load_sweep(path)
    proc = subprocess.Popen([sys.executable, "-m", "framework.cli", "sweep", str(path), "--workers", "2", "--no-progress"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    trials = sweep.out / "trials"
    deadline = time.monotonic() + 120
    while not any(trials.glob("*/trial.json")) if trials.is_dir() else True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.05)  # polling for the first finished trial's file
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    kept = [d for d in trials.iterdir() if (d / "trial.json").is_file() and not d.name.startswith(".")]
    assert 1 <= len(kept) < 6  # the stop came long before the last of six trials
    # The table written at the stop holds the finished trials.
    assert sorted(k[:16] for k in pq.read_table(sweep.out / "results.parquet").column("trial").to_pylist()) == \
        sorted(d.name for d in kept)
    again = run_sweep(load_sweep(path), Serial())
    assert again.reused >= len(kept) and again.ran + again.reused == 6 and again.failed == 0


def test_a_folder_of_recordings_runs_each_on_its_own_symbols(tmp_path, short_recordings):
    folder = short_recordings[0].parent
    path = tmp_path / "folder.yaml"
    path.write_text(f"sweep: folder\nbase: {REPO / 'configs' / 'default.yaml'}\nrecordings: [{folder}]\n"
                    "params:\n  permission.cooldown_s: {values: [5]}\nobjective: {maximize: exec.orders}\n",
                    encoding="utf-8")
    sweep = load_sweep(path)
    assert [(r.path.name, r.symbols) for r in sweep.recordings] == [
        ("binance-spot-btcusdt-20240808.frames.gz", ("BTCUSDT",)),
        ("binance-spot-ethusdt-20240808.frames.gz", ("ETHUSDT",)),
        ("binance-usdm-btcusdt-20240808.frames.gz", ("BTCUSDT",)),
        ("binance-usdm-ethusdt-20240808.frames.gz", ("ETHUSDT",))]


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_random_and_optuna_ask_the_same_points_again(tmp_path, short_recordings, method):
    pytest.importorskip("optuna")
    path = write_sweep(tmp_path, short_recordings[:1], name=method,
                       params="  permission.cooldown_s: {low: 2, high: 60, log: true}\n"
                              "  regime.fast_move_x: {low: 2, high: 6, step: 0.5}",
                       extra=f"search: {{method: {method}, trials: 3, seed: 11, batch: 2}}\n")
    first = run_sweep(load_sweep(path), Serial())
    assert first.ran == 3 and first.failed == 0
    points = [r["point"] for r in first.records]
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 3
    for p in points:
        assert 2 <= p["permission.cooldown_s"] <= 60 and (p["regime.fast_move_x"] * 2) % 1 == 0
    # Same seed, same results told: the same points, so every trial is reused.
    again = run_sweep(load_sweep(path), Serial())
    assert (again.ran, again.reused) == (0, 3)
    assert [r["point"] for r in again.records] == points


def test_a_worker_running_other_code_refuses_the_trial(serial_sweep):
    from dataclasses import replace

    from framework.sweep.runner import job_of, plan_trials
    from framework.sweep.trials import run_trial, sha256_file

    _, sweep, _ = serial_sweep
    job = job_of(sweep)
    rec = sweep.recordings[0]
    trial = plan_trials(sweep, job, {"permission.cooldown_s": 5, "regime.fast_move_x": 2.0},
                        {rec.path: sha256_file(rec.path)})[0]
    other = replace(job, code="0" * 64)
    outcome = run_trial(other, trial, None)
    assert outcome.status == "error" and "other code than the planner" in outcome.error
    # The engine's code is part of the trial's identity.
    assert plan_trials(sweep, other, trial.point, {rec.path: trial.recording_sha256})[0].key != trial.key
