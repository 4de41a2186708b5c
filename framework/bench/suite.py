"""Every measurement of ``execlab bench`` in one run, as one flat dict of figures."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from ..spec.session import load_session
from . import measure
from .baseline import TransitionsPerEventMachine
from .stream import bench_frames, pair_frames


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=" ev", unit_scale=True, desc=desc, file=sys.stderr, leave=False)


def run_bench(n_events: int, config: str | None = None, *, sets: list[str] = (), progress: bool = False,
              memory: bool = True, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    session = load_session(config, sets)
    symbol = session.symbols[0]
    started = time.perf_counter()

    def bar(total: int, desc: str):
        return _bar(progress, total, desc)

    def step(what: str) -> None:
        say(f"[{time.perf_counter() - started:6.1f} s] {what}")

    step(f"generating {n_events:,} frames")
    frames = bench_frames(n_events)
    step("decoding once for the stage inputs")
    events = measure.decode_all(frames)
    ticked = measure.with_ticks(events, session.tick_ns)

    step("whole pipeline, replay fast path (a block at a time)")
    b = bar(len(frames), "blocks")
    blocks = measure.run_blocks_pipeline(session, frames, bar=b)
    if b is not None:
        b.close()
    pair = (symbol, "BTCUSDC" if symbol != "BTCUSDC" else "BTCUSDT")
    step(f"whole pipeline, replay fast path, two symbols ({' and '.join(pair)}, the same market)")
    pair_session = load_session(config, sets)
    pair_session.data["symbols"] = list(pair)
    multi = measure.run_blocks_pipeline(pair_session, pair_frames(n_events, pair))
    step("whole pipeline, event by event (the live path), every 10th frame timed")
    b = bar(len(frames), "events")
    pipe = measure.run_pipeline(session, frames, bar=b)
    if b is not None:
        b.close()

    n_base = min(len(frames), max(20_000, len(frames) // 10))
    step(f"baseline: transitions on every event, first {n_base:,} events, and ours on the same")
    b = bar(2 * n_base, "baseline")
    ours_prefix = measure.run_pipeline(session, frames[:n_base], bar=b)
    base = measure.run_pipeline(session, frames[:n_base], machine_cls=TransitionsPerEventMachine, bar=b)
    if b is not None:
        b.close()

    step("stages alone: decode, metrics, paper engine")
    dec = measure.stage_decode(frames)
    met = measure.stage_metrics(session, ticked, len(events), symbol)
    met_ref = measure.stage_metrics(session, ticked, len(events), symbol, reference=True)
    eng = measure.stage_engine(session, ticked, len(events), symbol)

    step("capturing machine inputs and audit records")
    b = bar(len(ticked), "capture")
    cap = measure.capture(session, events, bar=b)
    if b is not None:
        b.close()
    step("stages alone: machines + decision, log writing")
    mach = measure.stage_machines(session, cap, len(events), symbol)
    n_snaps = len(cap["snaps"])
    base_limit = min(n_snaps, max(20_000, n_snaps // 10))
    mach_base = measure.stage_machines(session, cap, len(events), symbol, TransitionsPerEventMachine, base_limit)
    log = measure.stage_log(cap["records"], len(events))

    step("guard evaluation cost")
    guards = measure.guard_costs(session, cap, symbol)
    guards_base = measure.guard_costs(session, cap, symbol, TransitionsPerEventMachine, base_limit)

    out: dict[str, Any] = {
        "machine": measure.machine_info(),
        "config": str(session.path),
        "sets": list(sets),
        "events": len(frames),
        "ticks": pipe["ticks"],
        "event_time_s": (frames[-1][0] - frames[0][0]) / 1e9,
        "pipeline_events_per_s": blocks["events_per_s"],
        "pipeline_us_per_event": blocks["us_per_event"],
        "blocks": {k: blocks[k] for k in ("block_rows", "blocks", "block_ms_p50", "block_ms_p99", "rows",
                                          "rows_full", "rows_engine", "screens")},
        "paper_orders": blocks["orders"],
        "paper_fills": blocks["fills"],
        "blocks_same_transitions": blocks["transitions"] == pipe["transitions"],
        "blocks_same_records": blocks["records"] == pipe["records"],
        "multi_symbol": {"symbols": list(pair), "events_per_s": multi["events_per_s"],
                         "of_one_symbol": multi["events_per_s"] / blocks["events_per_s"]},
        "pipeline_scalar_events_per_s": pipe["events_per_s"],
        "pipeline_scalar_us_per_event": pipe["us_per_event"],
        "latency_us_p50": pipe["latency_us_p50"],
        "latency_us_p99": pipe["latency_us_p99"],
        "latency_us_p999": pipe["latency_us_p999"],
        "latency_us_max": pipe["latency_us_max"],
        "latency_samples": pipe["latency_samples"],
        "records": pipe["records"],
        "transitions": pipe["transitions"],
        "decode_events_per_s": dec["events_per_s"],
        "metrics_events_per_s": met["events_per_s"],
        "metrics_engine": met["engine"],  # what the live path runs: "compiled kernel" or "reference engine"
        "metrics_reference_us_per_event": met_ref["us_per_event"],
        "pipeline_scalar_metrics_engine": pipe["metrics_engine"],
        "machines_events_per_s": mach["events_per_s"],
        "machines_us_per_evaluation": mach["us_per_evaluation"],
        "engine_events_per_s": eng["events_per_s"],
        "engine_orders": eng["orders"],
        "log_events_per_s": log["events_per_s"],
        "log_records_per_s": log["records_per_s"],
        "log_records": log["records"],
        "stage_us_per_event": {"decode": dec["us_per_event"], "metrics": met["us_per_event"],
                               "machines_decision": mach["us_per_event"], "engine": eng["us_per_event"],
                               "log": log["us_per_event"]},
        "baseline_events": n_base,
        "baseline_events_per_s": base["events_per_s"],
        "ours_same_events_per_s": ours_prefix["events_per_s"],
        "baseline_latency_us_p50": base["latency_us_p50"],
        "baseline_latency_us_p99": base["latency_us_p99"],
        "baseline_same_transitions": base["transitions"] == ours_prefix["transitions"],
        "baseline_machines_events_per_s": mach_base["events_per_s"],
        "baseline_machines_us_per_evaluation": mach_base["us_per_evaluation"],
        "guard_us": guards,
        "baseline_guard_us": guards_base,
    }
    if memory:
        short = max(len(frames) // 10, 1000)
        step(f"peak RSS in fresh processes: {short:,} and {10 * short:,} events")
        out["memory_events_short"] = short
        out["memory_events_long"] = 10 * short
        out["peak_rss_mb_short"] = measure.peak_rss_mb(short, config, sets)
        out["peak_rss_mb_long"] = measure.peak_rss_mb(10 * short, config, sets)
        out["scalar_peak_rss_mb_short"] = measure.peak_rss_mb(short, config, sets, scalar=True)
        out["scalar_peak_rss_mb_long"] = measure.peak_rss_mb(10 * short, config, sets, scalar=True)
    out["bench_wall_s"] = time.perf_counter() - started
    return out
