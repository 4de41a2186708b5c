"""Named figures of a finished run: the numbers a sweep's objective and constraints read.

A figure is a flat ``namespace.name`` (the expression language's dotted names), a float or
NaN when it does not apply (a fill ratio without orders). Built-in namespaces come from the
audit log and summary.json:

  run.*        duration_s, events
  decision.*   tradable_s, tradable_share (decision eligible, after the warm-up), changes
  <machine>.*  transitions, flaps (visits shorter than flap_s), time_<STATE>_s, share_<STATE>
               (after the warm-up), for every machine of the run
  exec.*       intents, refused, orders, filled_orders, fills, fill_ratio, fees_usd,
               net_pnl_usd, realized_pnl_usd, slippage_arrival_bps, markout_<H>_bps
  labels.*     windows, orders_inside, tradable_inside_s (0 without a labels sidecar)

Any other section of summary.json, at the top level or under the run's symbol (a scorecard
added later, say), becomes ``<section>.<key>`` with nested keys joined by ``_``, without code
changes here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..audit.analysis import NS, RunFacts, facts
from ..runtime.rundir import read_log

BUILTIN_NAMESPACES = ("run", "decision", "exec", "labels")
# summary.json parts the built-in figures already cover, or that are not figures of the run
# (wall-clock time differs between two runs of the same trial).
_SUMMARY_SKIP_TOP = {"wall", "records", "source", "symbols", "config_hash", "log_digest", "session",
                     "end_reason", "event_time_start_ns", "event_time_end_ns", "duration_s", "events"}
_SUMMARY_SKIP_SYMBOL = {"execution", "time_in_state_s", "transitions", "final_states"}
EXEC_FIGURES = ("intents", "refused", "orders", "filled_orders", "fills", "fill_ratio", "fees_usd",
                "net_pnl_usd", "realized_pnl_usd", "slippage_arrival_bps")
NAN = float("nan")


def _num(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return NAN


def catalogue(machines: Mapping[str, Iterable[str]], markout_horizons_s: Iterable[float]) -> list[str]:
    """The built-in figure names of a run with these machines (name -> states) and horizons,
    known before anything runs, so an objective's names are checked when the sweep loads."""
    names = ["run.duration_s", "run.events", "decision.tradable_s", "decision.tradable_share",
             "decision.changes"]
    for m, states in machines.items():
        names += [f"{m}.transitions", f"{m}.flaps"]
        for s in states:
            names += [f"{m}.time_{s}_s", f"{m}.share_{s}"]
    names += [f"exec.{n}" for n in EXEC_FIGURES]
    names += [f"exec.markout_{_horizon_name(h)}_bps" for h in markout_horizons_s]
    names += ["labels.windows", "labels.orders_inside", "labels.tradable_inside_s"]
    return names


def _horizon_name(h: Any) -> str:
    """1.0 -> '1s', '5s' -> '5s', 0.5 -> '0_5s' (a dotted name cannot hold a '.')."""
    text = str(h)
    if text.endswith("s"):
        text = text[:-1]
    try:
        value = float(text)
        text = str(int(value)) if value == int(value) else repr(value)
    except ValueError:
        pass
    return text.replace(".", "_").replace("-", "m") + "s"


def _clip(start: int, end: int, lo: int, hi: int) -> int:
    return max(0, min(end, hi) - max(start, lo))


def _machine_figures(f: RunFacts, warmup_ns: int, flap_ns: int) -> dict[str, float]:
    out: dict[str, float] = {}
    lo, hi = f.start_ns + warmup_ns, f.end_ns
    span = max(hi - lo, 0)
    for m in f.machines:
        ivs = [iv for per in f.intervals.values() for iv in per.get(m, [])]
        out[f"{m}.transitions"] = float(sum(sum(e.values()) for e in
                                            (per.get(m, {}) for per in f.edge_counts.values())))
        # A visit cut short by the end of the run is not a flap: only visits that ended in a
        # transition count.
        out[f"{m}.flaps"] = float(sum(1 for iv in ivs if iv.end_ns - iv.start_ns < flap_ns and iv.end_ns < f.end_ns))
        totals: dict[str, int] = {}
        after: dict[str, int] = {}
        for iv in ivs:
            totals[iv.state] = totals.get(iv.state, 0) + iv.end_ns - iv.start_ns
            after[iv.state] = after.get(iv.state, 0) + _clip(iv.start_ns, iv.end_ns, lo, hi)
        for s, t in totals.items():
            out[f"{m}.time_{s}_s"] = t / NS
            out[f"{m}.share_{s}"] = after[s] / span if span else NAN
    return out


def _decision_figures(f: RunFacts, warmup_ns: int) -> dict[str, float]:
    lo, hi = f.start_ns + warmup_ns, f.end_ns
    span = max(hi - lo, 0)
    spans = [(s, e) for per in f.decisions.values() for s, e, d in per if d.get("eligible")]
    after = sum(_clip(s, e, lo, hi) for s, e in spans)
    changes = sum(max(len(per) - 1, 0) for per in f.decisions.values())
    return {"decision.tradable_s": sum(e - s for s, e in spans) / NS,
            "decision.tradable_share": after / span if span else NAN,
            "decision.changes": float(changes)}


def _exec_figures(f: RunFacts, execution: Mapping[str, Any]) -> dict[str, float]:
    allq = execution.get("all") or {}
    out = {
        "exec.intents": float(len(f.intents)),
        "exec.refused": float(len(f.refusals)),
        "exec.orders": float(len(f.orders)),
        "exec.filled_orders": float(sum(1 for r in f.order_results if (r.get("filled_qty") or 0) > 0)),
        "exec.fills": float(len(f.fills)),
        "exec.fill_ratio": _num(allq.get("fill_ratio")),
        "exec.fees_usd": _num(execution.get("fees_usd", 0.0)),
        "exec.net_pnl_usd": _num(execution.get("net_pnl_usd", 0.0)),
        "exec.realized_pnl_usd": _num(execution.get("realized_pnl_usd", 0.0)),
        "exec.slippage_arrival_bps": _num(allq.get("slippage_arrival_bps")),
    }
    for h, v in (allq.get("markout_bps") or {}).items():
        out[f"exec.markout_{_horizon_name(h)}_bps"] = _num(v)
    for h in execution.get("markout_horizons_s") or []:
        out.setdefault(f"exec.markout_{_horizon_name(h)}_bps", NAN)
    return out


def label_windows(labels: Any) -> list[tuple[int, int]]:
    """Labelled windows (start_ns, end_ns) from a sidecar: a list of objects, or an object whose
    ``windows`` (or ``labels``) is one, each with ``start_ns`` and ``end_ns``. Entries without
    both are not windows and are skipped."""
    if isinstance(labels, Mapping):
        labels = labels.get("windows", labels.get("labels", []))
    out = []
    for w in labels if isinstance(labels, list) else []:
        if isinstance(w, Mapping) and isinstance(w.get("start_ns"), int) and isinstance(w.get("end_ns"), int):
            out.append((w["start_ns"], w["end_ns"]))
    return sorted(out)


def _label_figures(f: RunFacts, windows: list[tuple[int, int]]) -> dict[str, float]:
    spans = [(s, e) for per in f.decisions.values() for s, e, d in per if d.get("eligible")]
    inside = sum(1 for o in f.orders if any(s <= int(o["ts_ns"]) < e for s, e in windows))
    tradable = sum(_clip(s, e, ws, we) for s, e in spans for ws, we in windows)
    return {"labels.windows": float(len(windows)), "labels.orders_inside": float(inside),
            "labels.tradable_inside_s": tradable / NS}


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}_{k}" if prefix else str(k), v, out)
    elif isinstance(value, (int, float)):  # bools too: true/false count as 1/0
        out[prefix] = _num(value)


def _name_part(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in str(text))


def summary_figures(summary: Mapping[str, Any]) -> dict[str, float]:
    """Every other numeric section of summary.json as ``section.key_subkey`` figures."""
    out: dict[str, float] = {}
    sections = [(k, v) for k, v in summary.items() if k not in _SUMMARY_SKIP_TOP and isinstance(v, Mapping)]
    for per in (summary.get("symbols") or {}).values():
        if isinstance(per, Mapping):
            sections += [(k, v) for k, v in per.items() if k not in _SUMMARY_SKIP_SYMBOL and isinstance(v, Mapping)]
    for section, value in sections:
        flat: dict[str, float] = {}
        _flatten("", value, flat)
        for key, v in flat.items():
            out[f"{_name_part(section)}.{_name_part(key)}"] = v
    return out


def run_figures(run_dir: str | Path, *, warmup_s: float = 0.0, flap_s: float = 1.0,
                labels: Any = None) -> dict[str, float]:
    """All figures of one run directory (one symbol), sorted by name."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    f = facts(read_log(run_dir))
    warmup_ns, flap_ns = int(warmup_s * NS), int(flap_s * NS)
    execution: dict[str, Any] = {}
    for per in (summary.get("symbols") or {}).values():
        execution = per.get("execution") or {}
    out = summary_figures(summary)
    out.update({"run.duration_s": f.duration_s, "run.events": _num(summary.get("events", 0))})
    out.update(_decision_figures(f, warmup_ns))
    out.update(_machine_figures(f, warmup_ns, flap_ns))
    out.update(_exec_figures(f, execution))
    # No sidecar: no labelled window, so nothing happened inside one.
    out.update(_label_figures(f, label_windows(labels) if labels is not None else []))
    return {k: float(v) for k, v in sorted(out.items())}
