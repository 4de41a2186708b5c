"""``execlab bench --e2e``: a replay end to end, as a user runs it, next to the peers.

Each figure is one whole process timed from the outside: interpreter start-up, imports, reading
the recording from its gzip file, the run, the audit log, exit. Ours is ``execlab run`` of the
given config on the recording (``--replay``); the peers (nautilus_trader, hftbacktest) run from
``benchmarks/peers.py`` on the same frames, each converted beforehand to the peer's own input
format (conversion not timed). Each process runs ``runs`` times after one untimed warm-up (page
cache, numba's on-disk cache); the best time is kept, since load from other processes on the
machine only ever adds time.

The timed processes run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed from their
environment): an installed package has its modules compiled once, as the peers' are by pip, and
the warm-up writes ours. Start-up has its own figures: ``execlab --help`` and a warm ``execlab
run`` of the default session, each a whole process.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS_SCRIPT = ROOT / "benchmarks" / "peers.py"


def _execlab() -> str:
    """The installed ``execlab`` script: the command a user runs, start-up included."""
    beside = Path(sys.executable).with_name("execlab")
    found = str(beside) if beside.is_file() else shutil.which("execlab")
    if found is None:
        raise FileNotFoundError("the execlab command is not installed next to this Python nor on PATH")
    return found


def repeated_recording(src: Path, out: Path, repeat: int) -> int:
    """Write ``src`` ``repeat`` times (1: once, as it is) back to back into a gzip frame file, each copy's receive
    stamps shifted to start 1 s after the copy before ends (the frames' own exchange times are
    left as recorded). Returns the number of lines written."""
    with gzip.open(src, "rb") if src.read_bytes()[:2] == b"\x1f\x8b" else open(src, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    if repeat <= 1:
        out.write_bytes(gzip.compress(b"".join(ln + b"\n" for ln in lines), 6))
        return len(lines)
    parts = [ln.split(b" ", 1) for ln in lines]
    stamps = [int(p[0]) if len(p) == 2 and p[0].isdigit() else None for p in parts]
    known = [s for s in stamps if s is not None]
    span = (max(known) - min(known) if known else 0) + 1_000_000_000
    with gzip.open(out, "wb", compresslevel=6) as f:
        for k in range(repeat):
            shift = k * span
            f.write(b"".join(ln + b"\n" if s is None else b"%d %s\n" % (s + shift, p[1])
                             for s, p, ln in zip(stamps, parts, lines, strict=True)))
    return repeat * len(lines)


def _process_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_process(cmd: list[str], runs: int) -> tuple[dict, str]:
    """Wall and CPU (user + system) seconds of ``cmd``, best of ``runs`` after one untimed
    warm-up, and what its last run printed. Raises CalledProcessError when it fails."""
    env = _process_env()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    walls, cpus = [], []
    out = ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {"best_s": min(walls), "all_s": walls, "cpu_s": min(cpus)}, out


def run_e2e(config: str | None, recording: Path | None, repeat: int, runs: int, peers_python: str | None,
            say: Callable[[str], None], startup: bool = True) -> dict:
    from ..spec import workspace

    cfg = Path(config).resolve() if config else workspace.default_config()
    work = Path(tempfile.mkdtemp(prefix="execlab-e2e-"))
    src = recording or _config_recording(cfg)
    frames = work / "input.frames.gz"
    n_lines = repeated_recording(src, frames, repeat)
    what = f"{src.name} repeated {repeat} times (receive stamps shifted)" if repeat > 1 else src.name
    say(f"input: {what}, {n_lines:,} frames")
    res: dict = {"load_before": os.getloadavg()[0], "input": what, "frames": n_lines, "input_bytes": frames.stat().st_size, "runs": runs,
                 "config": str(cfg), "work_dir": str(work)}
    ours = [_execlab(), "run", str(cfg), "--replay", str(frames),
            "--out", str(work / "run"), "--force", "--no-progress", "--json"]
    if startup:
        say("timing start-up ...")
        res["startup"] = {"help": time_process([_execlab(), "--help"], runs)[0],
                          "default_run": time_process([_execlab(), "run", "--out", str(work / "default"), "--force",
                                                       "--no-progress", "--json"], runs)[0]}
    say("timing execlab run ...")
    res["ours"], out = time_process(ours, runs)
    summary = json.loads(out)
    res["ours"]["events"] = summary.get("events")
    res["ours"]["path"] = (summary.get("wall") or {}).get("path")
    if not PEERS_SCRIPT.is_file():
        res["peers"] = {"notes": [f"peers not run: {PEERS_SCRIPT} is not here (it comes with a checkout)"]}
        res["load_after"] = os.getloadavg()[0]
        return res
    python = peers_python or sys.executable
    say(f"peers with {python} ...")
    try:
        proc = subprocess.run([python, str(PEERS_SCRIPT), "bench", str(frames), "--runs", str(runs), "--json"],
                              capture_output=True, text=True)
    except OSError as exc:  # no such interpreter
        res["peers"] = {"notes": [f"peers not run: {python}: {exc.strerror}; expected an interpreter with the peers"]}
        res["load_after"] = os.getloadavg()[0]
        return res
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        res["peers"] = {"notes": [f"peers failed: {err}"]}
    else:
        res["peers"] = json.loads(proc.stdout)
    res["load_after"] = os.getloadavg()[0]
    return res


def _config_recording(cfg: Path) -> Path:
    from ..spec.session import load_session

    session = load_session(cfg)
    src = session.source
    if src.get("kind") != "replay" or not src.get("path"):
        raise ValueError(f"{cfg}: not a replay of one recording; expected --recording FILE")
    return session.resolve(src["path"])


def format_e2e(r: dict) -> str:
    ours, ours_cpu = r["ours"]["best_s"], r["ours"]["cpu_s"]
    lines = [
        f"replay end to end, whole process, from the gzip file: {r['input']}, {r['frames']:,} frames, "
        f"{r['input_bytes'] / 1e6:.1f} MB; best of {r['runs']} runs after a warm-up",
        f"load average {r['load_before']:.1f} before, {r.get('load_after', float('nan')):.1f} after "
        f"({os.cpu_count()} cores): with other work running, wall time grows, CPU time less so",
        f"  {'':<42} {'wall s':>7} {'frames/s':>10} {'ours faster':>11} {'CPU s':>7} {'ours faster':>11}",
        f"  {'execlab run (' + Path(r['config']).name + ')':<42} {ours:>7.2f} {r['frames'] / ours:>10,.0f} "
        f"{'':>11} {ours_cpu:>7.2f}",
    ]
    peers = r.get("peers", {})
    for name, label in (("nautilus_noop", "nautilus_trader, no-op strategy"),
                        ("nautilus_orders", "nautilus_trader, market order every 5 s"),
                        ("hftbacktest_noop", "hftbacktest, no-op strategy"),
                        ("hftbacktest_orders", "hftbacktest, market order every 5 s")):
        p = peers.get(name)
        if p is None:
            continue
        if "error" in p:
            lines.append(f"  {label:<42} {p['error']}")
            continue
        cpu = p.get("cpu_s", float("nan"))
        lines.append(f"  {label:<42} {p['best_s']:>7.2f} {r['frames'] / p['best_s']:>10,.0f} "
                     f"{p['best_s'] / ours:>10.1f}x {cpu:>7.2f} {cpu / ours_cpu:>10.1f}x")
    for note in peers.get("notes", []):
        lines.append(f"  {note}")
    lines.append("(each figure: interpreter start, imports, reading the input, the run, exit; the peers' "
                 "conversion of the frames to their input format is not timed)")
    start = r.get("startup")
    if start:
        lines.append("start-up, whole process, best of the runs after a warm-up   wall s   CPU s")
        for key, label in (("help", "execlab --help"), ("default_run", "execlab run (the default session)")):
            lines.append(f"  {label:<58} {start[key]['best_s']:>6.2f} {start[key]['cpu_s']:>7.2f}")
    return "\n".join(lines)
