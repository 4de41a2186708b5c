"""``execlab bench``: the whole pipeline's throughput, latency, memory and guard cost."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

QUICK_EVENTS = 100_000  # frames of a --quick run


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark the whole pipeline (throughput, latency, memory, guard cost)",
        description="Benchmark the whole pipeline on a long synthetic stream of raw frames: "
                    "throughput of the pipeline and of each stage, per-event latency, peak memory, "
                    "and the same machines driven through transitions on every event.")
    p.add_argument("config", nargs="?", default=None, help="session config (default: configs/default.yaml)")
    p.add_argument("--events", type=int, default=None, help="frames in the stream (default: 1,000,000)")
    p.add_argument("--quick", action="store_true", help=f"a short run ({QUICK_EVENTS:,} frames unless --events is given)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="MACHINE.PARAM=VALUE",
                   help="override a param of the config (repeatable), as for execlab run")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs (two fresh processes)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    e = p.add_argument_group("end to end (--e2e)")
    e.add_argument("--e2e", action="store_true",
                   help="time `execlab run` of a recording from its gzip file as a whole process, next to "
                        "nautilus_trader and hftbacktest on the same frames (benchmarks/peers.py; optional "
                        "extra `peers`)")
    e.add_argument("--recording", type=Path, metavar="FILE",
                   help="frames file to replay (default: the config's recording)")
    e.add_argument("--repeat", type=int, default=9,
                   help="copies of the recording back to back, stamps shifted (default: 9, about 370,000 "
                        "frames of the default recording; 1: the file as it is)")
    e.add_argument("--runs", type=int, default=3, help="timed runs of each process after a warm-up (default: 3)")
    e.add_argument("--no-startup", action="store_true",
                   help="skip the start-up figures (execlab --help, a warm execlab run of the default session)")
    e.add_argument("--peers-python", metavar="PYTHON",
                   help="interpreter that has the peers installed (default: this one)")
    p.set_defaults(func=handler)


def e2e_handler(args) -> int:
    from .e2e import format_e2e, run_e2e

    if args.repeat < 1 or args.runs < 1:
        print(f"--repeat {args.repeat} --runs {args.runs}: expected at least 1 each", file=sys.stderr)
        return 2
    if args.recording is not None and not args.recording.is_file():
        print(f"{args.recording}: no such file; expected a frames recording", file=sys.stderr)
        return 2
    say = (lambda s: print(s, file=sys.stderr)) if sys.stderr.isatty() and not args.json else (lambda s: None)
    try:
        res = run_e2e(args.config, args.recording, args.repeat, args.runs, args.peers_python, say,
                      startup=not args.no_startup)
    except (ValueError, FileNotFoundError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(_jsonable(res), sort_keys=True) if args.json else format_e2e(res))
    return 0


def handler(args) -> int:
    if args.e2e:
        return e2e_handler(args)
    from .suite import run_bench  # the whole pipeline and the compiled kernel: not for --help

    n = args.events if args.events is not None else QUICK_EVENTS if args.quick else 1_000_000
    if n < 1000:
        print(f"--events {n}: expected at least 1000", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()
    say = (lambda s: print(s, file=sys.stderr)) if tty and not args.json else (lambda s: None)
    res = run_bench(n, args.config, sets=args.sets, progress=tty, memory=not args.no_memory, say=say)
    if args.json:
        print(json.dumps(_jsonable(res), sort_keys=True))
    else:
        print(format_report(res))
    return 0


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _k(x: float) -> str:
    return f"{x:,.0f}"


def format_report(r: dict[str, Any]) -> str:
    m = r["machine"]
    bk = r["blocks"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['implementation']} {m['python']} (one core used)",
        f"stream: {r['events']:,} synthetic frames (calm/fast/shock cycles, {r['event_time_s']:,.0f} s of "
        f"event time, {r['ticks']:,} clock ticks), config {r['config']}"
        + (f" with {' '.join(r['sets'])}" if r["sets"] else ""),
        "",
        "whole pipeline (decode -> metrics -> machines -> decision -> paper execution -> audit log file)",
        "  replay fast path, a block at a time (what `execlab run` uses for a replay)",
        f"    throughput       {_k(r['pipeline_events_per_s']):>12} events/s   ({r['pipeline_us_per_event']:.2f} µs/event)",
        f"    blocks           {bk['blocks']:>12,} of {bk['block_rows']:,} events; a decision waits for its block: "
        f"{bk['block_ms_p50']:.1f} ms p50, {bk['block_ms_p99']:.1f} ms p99",
        f"    rows             {bk['rows']:>12,} (events and clock ticks): {bk['rows_full']:,} through every layer, "
        f"{bk['rows_engine']:,} through the paper engine only, {bk['screens']:,} screens",
        f"    same log as event by event: {'yes' if r['blocks_same_records'] and r['blocks_same_transitions'] else 'NO'}",
        f"    two symbols      {_k(r['multi_symbol']['events_per_s']):>12} events/s   "
        f"({r['multi_symbol']['of_one_symbol']:.0%} of one symbol's; {' and '.join(r['multi_symbol']['symbols'])})",
        "  event by event (the live path: one frame in, its decision out)",
        f"    throughput       {_k(r['pipeline_scalar_events_per_s']):>12} events/s   "
        f"({r['pipeline_scalar_us_per_event']:.2f} µs/event)",
        f"    latency p50      {r['latency_us_p50']:>12.2f} µs   (frame text in hand -> decision available,",
        f"    latency p99      {r['latency_us_p99']:>12.2f} µs    every 10th frame timed: "
        f"{r['latency_samples']:,} samples)",
        f"    latency p99.9    {r['latency_us_p999']:>12.2f} µs",
        f"    latency max      {r['latency_us_max']:>12.2f} µs",
        f"    metrics          {r['pipeline_scalar_metrics_engine']} (one event at a time)",
        f"  audit records      {r['records']:>12,}   (paper orders {r['paper_orders']:,}, fills {r['paper_fills']:,})",
        "",
        "stages alone                events/s   µs/event",
    ]
    su = r["stage_us_per_event"]
    for name, key, skey in (("decode", "decode_events_per_s", "decode"),
                            ("metrics", "metrics_events_per_s", "metrics"),
                            ("machines + decision", "machines_events_per_s", "machines_decision"),
                            ("paper engine", "engine_events_per_s", "engine"),
                            ("log writing", "log_events_per_s", "log")):
        lines.append(f"  {name:<22} {_k(r[key]):>12} {su[skey]:>10.3f}")
    lines.append(f"  (metrics: the live path's {r['metrics_engine']}; the reference engine "
                 f"{r['metrics_reference_us_per_event']:.3f} µs/event)")
    lines.append(f"  (machines: {r['machines_us_per_evaluation']:.3f} µs per evaluation of all three and the "
                 f"decision; log: {r['log_records']:,} records at {_k(r['log_records_per_s'])} records/s)")
    lines += [
        "",
        f"baseline: transitions' trigger on every event (conditions callbacks), first {r['baseline_events']:,} events,",
        "against ours event by event",
        f"  whole pipeline     ours {_k(r['ours_same_events_per_s']):>10} events/s   baseline "
        f"{_k(r['baseline_events_per_s']):>10} events/s   ({r['ours_same_events_per_s'] / r['baseline_events_per_s']:.1f}x)",
        f"  machines+decision  ours {r['machines_us_per_evaluation']:>10.3f} µs/eval    baseline "
        f"{r['baseline_machines_us_per_evaluation']:>10.3f} µs/eval",
        f"  same transitions   {'yes' if r['baseline_same_transitions'] else 'NO'}",
        "",
        "guard evaluation, µs per evaluate() (median)   quiet (no transition)   firing",
    ]
    for name, g in r["guard_us"].items():
        b = r["baseline_guard_us"].get(name, {})
        lines.append(f"  {name:<12} ours      {g['quiet_us_p50']:>10.3f} {g['fired_us_p50']:>20.3f}   "
                     f"({g['transitions']} transitions)")
        lines.append(f"  {'':<12} baseline  {b.get('quiet_us_p50', math.nan):>10.3f} "
                     f"{b.get('fired_us_p50', math.nan):>20.3f}   ({b.get('transitions', 0)} transitions)")
    if "peak_rss_mb_short" in r:
        lines += ["",
                  f"peak RSS (fresh process, whole pipeline), {r['memory_events_short']:,} and "
                  f"{r['memory_events_long']:,} events:",
                  f"  replay fast path   {r['peak_rss_mb_short']:.1f} MB, {r['peak_rss_mb_long']:.1f} MB",
                  f"  event by event     {r['scalar_peak_rss_mb_short']:.1f} MB, {r['scalar_peak_rss_mb_long']:.1f} MB"]
    lines.append(f"(bench took {r['bench_wall_s']:.0f} s)")
    return "\n".join(lines)
