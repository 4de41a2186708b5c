"""``execlab verify RUN``: re-run a session from its recorded input and its config snapshot, and
compare the two audit logs record by record.

A run is reproducible when the re-run writes a byte-identical log. When it does not, the first
divergence is reported: line (and seq), record kind, the first differing field (a dotted path),
and both values. A snapshot edited after the run shows up twice: as a changed config hash on
the first line, and as the first record whose behaviour differs.

The re-run follows what the run recorded beyond its snapshot (``runtime/retrace.py``): its
symbols, overrides and hot reloads, and its end. A run stopped early (a signal) is re-run to
the same event and must match to its last line. A run killed before its ``session_end`` is
checked up to its last complete line, and the result says so; a torn last line is left out.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runlog import fmt_ts, log_lines, read_lines, run_error

# Fields that differ whenever anything else differs (or the snapshot was edited); they are
# reported, but the divergence shown is the first difference in behaviour.
DERIVED_FIELDS = {("session_start", "config_hash"), ("session_end", "digest")}


@dataclass
class Divergence:
    line: int  # 1-based
    seq: int | None
    kind: str
    field: str
    recorded: Any
    rerun: Any
    ts_ns: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "seq": self.seq, "kind": self.kind, "field": self.field,
                "recorded": self.recorded, "rerun": self.rerun, "ts_ns": self.ts_ns,
                "time": fmt_ts(self.ts_ns) if self.ts_ns is not None else None}


@dataclass
class VerifyResult:
    identical: bool
    recorded_lines: int
    rerun_lines: int
    divergence: Divergence | None = None
    notes: list[str] = field(default_factory=list)
    rerun_dir: Path | None = None
    interrupted_at: int | None = None  # a run killed before session_end: its last complete line
    end_reason: str | None = None
    end_events: int | None = None
    torn_bytes: int = 0
    checked_lines: int | None = None  # fewer than recorded: only these could be re-created

    def as_dict(self) -> dict[str, Any]:
        return {"identical": self.identical, "recorded_lines": self.recorded_lines,
                "rerun_lines": self.rerun_lines, "notes": self.notes,
                "interrupted_at": self.interrupted_at, "end_reason": self.end_reason,
                "end_events": self.end_events, "torn_bytes": self.torn_bytes, "checked_lines": self.checked_lines,
                "divergence": self.divergence.as_dict() if self.divergence else None}


_MISSING = object()


def first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first (in sorted key order) dotted path where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            va, vb = a.get(k, _MISSING), b.get(k, _MISSING)
            d = first_difference(va, vb, f"{path}.{k}" if path else str(k))
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (va, vb) in enumerate(zip(a, b, strict=False)):
            d = first_difference(va, vb, f"{path}[{i}]")
            if d is not None:
                return d
        if len(a) != len(b):
            return (f"{path}.length", len(a), len(b))
        return None
    if a is _MISSING or b is _MISSING or type(a) is not type(b) or a != b:
        return (path or "(record)", None if a is _MISSING else a, None if b is _MISSING else b)
    return None


def compare_lines(recorded: list[bytes], rerun: list[bytes]) -> VerifyResult:
    """Compare two logs' raw lines; the first behavioural divergence wins."""
    res = VerifyResult(identical=recorded == rerun, recorded_lines=len(recorded), rerun_lines=len(rerun))
    if res.identical:
        return res
    for i, (ra, rb) in enumerate(zip(recorded, rerun, strict=False)):
        if ra == rb:
            continue
        a, b = json.loads(ra), json.loads(rb)
        kind = a.get("kind", "?")
        ignore = {f for k, f in DERIVED_FIELDS if k == kind}
        for f in sorted(ignore):
            if a.get(f) != b.get(f):
                note = f"{kind}.{f} differs: recorded {a.get(f)}, re-run {b.get(f)}"
                if (kind, f) == ("session_start", "config_hash"):
                    note += " (the snapshot differs from the one the run recorded)"
                res.notes.append(note)
        a2 = {k: v for k, v in a.items() if k not in ignore}
        b2 = {k: v for k, v in b.items() if k not in ignore}
        d = first_difference(a2, b2)
        if d is None:
            continue
        if a.get("kind") != b.get("kind"):
            d = ("kind", a, b)  # different records altogether: show both
        res.divergence = Divergence(i + 1, a.get("seq"), kind, d[0], d[1], d[2], a.get("ts_ns"))
        return res
    n = min(len(recorded), len(rerun))
    if len(recorded) != len(rerun):
        longer, who = (recorded, "recorded") if len(recorded) > len(rerun) else (rerun, "re-run")
        extra = json.loads(longer[n])
        res.divergence = Divergence(n + 1, extra.get("seq"), extra.get("kind", "?"), "(record)",
                                    extra if who == "recorded" else None, extra if who == "re-run" else None,
                                    extra.get("ts_ns"))
        res.notes.append(f"the {who} log is longer ({len(recorded)} vs {len(rerun)} lines)")
    elif res.divergence is None:
        # Only derived fields differ: same behaviour, but not the same snapshot.
        first = json.loads(next(ra for ra, rb in zip(recorded, rerun, strict=True) if ra != rb))
        res.divergence = Divergence(first.get("seq", 0) + 1, first.get("seq"), first.get("kind", "?"),
                                    "config_hash" if first.get("kind") == "session_start" else "digest",
                                    None, None, first.get("ts_ns"))
        res.notes.append("the behaviour is identical; only the snapshot hash and digest differ")
    return res


def rerun(run_dir: str | Path, out_dir: Path, sets: Iterable[str] = (), config_path: str | Path | None = None,
          retrace: Any = None, stop_after_records: int | None = None):
    """Re-create the run's session (plus overrides, or an edited config) and run it on the
    run's recorded input into ``out_dir``. ``retrace`` follows the run's reloads and early end;
    ``stop_after_records`` stops soon after that many records (the rest is not compared)."""
    from framework.runtime.run import StopFlag, run_session
    from framework.runtime.rundir import recorded_input, session_from_run

    session = session_from_run(Path(run_dir), sets=tuple(sets), config_path=config_path)
    replay = None if retrace is not None and retrace.live is not None else recorded_input(Path(run_dir))
    stop = StopFlag()
    count = [0]

    def observer(_record: dict) -> None:
        count[0] += 1
        if stop_after_records is not None and count[0] >= stop_after_records:
            stop.set = True

    if retrace is not None and retrace.live is not None:
        retrace.live.count_records = lambda: count[0]
    return run_session(session, out_dir, replay=replay or None, progress=False, retrace=retrace,
                       stop=stop, observer=observer)


def verify_run(run_dir: str | Path, keep: Path | None = None) -> VerifyResult:
    """Re-run and compare. ``keep``: write the re-run there (default: a temporary folder)."""
    from framework.runtime.retrace import Retrace
    from framework.runtime.rundir import holder_of, input_changes, read_meta

    run_dir = Path(run_dir)
    lines = log_lines(run_dir)  # a clear error before any work when this is not a run
    recorded = list(lines)
    if not recorded:
        raise run_error(run_dir, "the audit log has no complete line; expected at least session_start")
    changed = input_changes(run_dir)
    if changed:
        raise run_error(run_dir, "; ".join(changed))
    last = json.loads(recorded[-1])
    end = last if last.get("kind") == "session_end" else None
    running = holder_of(run_dir) if end is None else None
    retrace = Retrace.of_run(run_dir, end, live=read_meta(run_dir)["source"].get("kind") == "live")
    stop_after = None if end is not None else len(recorded)

    def compare(rerun_dir: Path) -> VerifyResult:
        again = read_lines(rerun_dir)
        mine = recorded
        live = retrace.live
        if live is not None and live.short and live.records_before_end is not None:
            # Killed while writing: the frames file ends before the log does. Only the records
            # its frames can explain are compared.
            checked = min(len(recorded), live.records_before_end)
            mine, again = recorded[:checked], again[:checked]
        elif stop_after is not None:
            again = again[:stop_after]
        res = compare_lines(mine, again)
        res.recorded_lines = len(recorded)
        if len(mine) < len(recorded):
            res.checked_lines = len(mine)
            res.notes.append(f"the recorded frames (input.frames.gz) end before the log does: records "
                             f"{len(mine) + 1}-{len(recorded)} came from frames not written before the run was killed "
                             "and are not compared")
        res.torn_bytes = len(lines.torn)
        if lines.torn:
            res.notes.append(f"the last line is torn ({len(lines.torn)} bytes without a newline: a write cut short); "
                             "it is not compared")
        if end is None:
            res.interrupted_at = len(recorded)
            if running is not None:
                res.notes.append(f"the run is still going (session process {running} holds the directory): "
                                 f"line {len(recorded)} is where its log had reached, not where it stopped")
        elif retrace.end_reason is not None:
            res.end_reason, res.end_events = retrace.end_reason, retrace.end_after_events
        return res

    if keep is not None:
        rerun(run_dir, keep, retrace=retrace, stop_after_records=stop_after)
        res = compare(keep)
        res.rerun_dir = keep
        return res
    with tempfile.TemporaryDirectory(prefix="execlab-verify-") as tmp:
        rerun(run_dir, Path(tmp) / "rerun", retrace=retrace, stop_after_records=stop_after)
        return compare(Path(tmp) / "rerun")


def _short(v: Any, n: int = 300) -> str:
    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def format_text(run_dir: str | Path, res: VerifyResult) -> str:
    notes = [f"  note: {n}" for n in res.notes]
    if res.identical:
        if res.interrupted_at is not None:
            upto = res.checked_lines or res.interrupted_at
            head = (f"verified: {run_dir} was interrupted at line {res.interrupted_at} (no session_end); "
                    + ("verified up to there" if upto == res.interrupted_at else f"verified up to line {upto}")
                    + f": the re-run's first {upto} records are byte-identical")
        elif res.end_reason is not None:
            head = (f"verified: {run_dir} re-runs to a byte-identical log ({res.recorded_lines} records); "
                    f"the run ended early ({res.end_reason}, after {res.end_events} events) and the re-run "
                    "ended at the same event")
        else:
            head = f"verified: {run_dir} re-runs to a byte-identical log ({res.recorded_lines} records)"
        return "\n".join([head, *notes]) + "\n"
    d = res.divergence
    checked = (f" (interrupted at line {res.interrupted_at}; compared up to there)"
               if res.interrupted_at is not None else "")
    lines = [f"DIVERGED: {run_dir} does not re-run to the same log{checked} "
             f"({res.recorded_lines} recorded vs {res.rerun_lines} re-run records)"]
    if d is not None:
        lines.append(f"first divergence at line {d.line} (seq {d.seq}), {d.kind} record"
                     + (f" at {fmt_ts(d.ts_ns)}" if d.ts_ns is not None else ""))
        lines.append(f"  field   : {d.field}")
        lines.append(f"  recorded: {_short(d.recorded)}")
        lines.append(f"  re-run  : {_short(d.rerun)}")
    lines.extend(notes)
    return "\n".join(lines) + "\n"
