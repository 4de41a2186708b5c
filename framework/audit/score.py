"""The gate scorecard of a run: how much it let the system trade, how it held up in trouble.

Computed from the audit log alone (``analysis.facts``), per symbol:

- ``tradable_share``: share of the time after the warm-up (``warmup_s`` from the first event)
  during which the decision was eligible;
- ``flaps``: per machine, state visits shorter than ``flap_s`` (a visit cut short by the end of
  the run does not count), and ``probation_flaps`` the PROBATION ones;
- ``windows``: for each labelled window of trouble (a sidecar ``<recording>.labels.json`` next to
  the input, written by ``execlab scenario inject``): seconds from its start to permission
  BLOCKED, orders submitted inside it, seconds from its end to tradable again;
- ``big_moves``: the recording's own largest one-second mid moves (from the metrics samples)
  and the share of them during which the decision was eligible;
- ``markouts``: mean markouts of the orders sent and, as if they had been sent, of the refused
  intents by refusing rule: what the gate saved and what it cost.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..runtime.rundir import read_log, recorded_input
from .analysis import NS, RunFacts, facts

LABELS_SUFFIX = ".labels.json"
WARMUP_S = 60.0
FLAP_S = 1.0
BIG_MOVES_SHARE = 0.01  # the top 1 % of the seconds (at least BIG_MOVES_MIN of them)
BIG_MOVES_MIN = 5


def labels_path(recording: str | Path) -> Path:
    return Path(str(recording) + LABELS_SUFFIX)


def read_labels(recording: str | Path) -> list[dict[str, Any]] | None:
    """The labelled windows of a recording ({kind, start_ns, end_ns, ...}), None without a sidecar."""
    p = labels_path(recording)
    if not p.is_file():
        return None
    return list(json.loads(p.read_text()).get("windows", []))


def _eligible_spans(f: RunFacts, symbol: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e, d in f.decisions.get(symbol, []) if d.get("eligible")]


def _overlap(spans: list[tuple[int, int]], a: int, b: int) -> int:
    return sum(max(0, min(e, b) - max(s, a)) for s, e in spans)


def _first_at_or_after(spans: list[tuple[int, int]], t: int) -> int | None:
    """The first time >= t inside one of the spans."""
    for s, e in spans:
        if e > t and e > s:
            return max(s, t)
    return None


def score_facts(f: RunFacts, labels: list[dict[str, Any]] | None = None, *,
                warmup_s: float = WARMUP_S, flap_s: float = FLAP_S) -> dict[str, Any]:
    out: dict[str, Any] = {"duration_s": round(f.duration_s, 3), "warmup_s": warmup_s,
                           "symbols": {}}
    for sym in f.symbols:
        out["symbols"][sym] = _score_symbol(f, sym, labels, warmup_s, flap_s)
    return out


def _score_symbol(f: RunFacts, sym: str, labels, warmup_s: float, flap_s: float) -> dict[str, Any]:
    eligible = _eligible_spans(f, sym)
    t0 = f.start_ns + int(warmup_s * NS)
    after = max(0, f.end_ns - t0)
    share = _overlap(eligible, t0, f.end_ns) / after if after else None
    flaps: dict[str, int] = {}
    short_probation = 0
    for machine, ivs in f.intervals.get(sym, {}).items():
        n = 0
        for iv in ivs:
            if iv.end_ns < f.end_ns and iv.end_ns - iv.start_ns < flap_s * NS:
                n += 1
                if machine == "permission" and iv.state == "PROBATION":
                    short_probation += 1
        flaps[machine] = n
    res: dict[str, Any] = {
        "tradable_share": None if share is None else round(share, 4),
        "flaps": flaps,
        "probation_flaps": short_probation,
        "orders": sum(1 for o in f.orders if o.get("symbol", sym) == sym),
        "big_moves": _big_moves(f, sym, eligible),
        "markouts": _markouts(f, sym),
    }
    if labels is not None:
        res["windows"] = [_window(f, sym, w, eligible) for w in labels
                          if w.get("symbol") in (None, "", sym)]
    return res


def _window(f: RunFacts, sym: str, w: dict[str, Any], eligible) -> dict[str, Any]:
    a, b = int(w["start_ns"]), int(w["end_ns"])
    blocked = [(iv.start_ns, iv.end_ns) for iv in f.intervals.get(sym, {}).get("permission", [])
               if iv.state == "BLOCKED"]
    tb = _first_at_or_after(blocked, a)
    back = _first_at_or_after(eligible, b)
    return {"kind": w.get("kind"), "start_s": round((a - f.start_ns) / NS, 3),
            "length_s": round((b - a) / NS, 3),
            "to_blocked_s": None if tb is None else round((tb - a) / NS, 3),
            "orders_inside": sum(1 for o in f.orders if a <= int(o["ts_ns"]) <= b
                                 and o.get("symbol", sym) == sym),
            "to_tradable_s": None if back is None else round((back - b) / NS, 3)}


def _big_moves(f: RunFacts, sym: str, eligible) -> dict[str, Any]:
    """The seconds with the largest mid_move_bps_1s in the metrics samples, and the share of
    them in which the decision was eligible."""
    samples = [(int(r["ts_ns"]), (r.get("values") or {}).get("mid_move_bps_1s"))
               for r in f.metrics if r.get("symbol") == sym]
    samples = [(t, v) for t, v in samples if isinstance(v, (int, float)) and v == v]
    if not samples:
        return {"n": 0, "tradable_share": None, "min_bps": None}
    n = max(BIG_MOVES_MIN, int(len(samples) * BIG_MOVES_SHARE))
    top = sorted(samples, key=lambda s: -s[1])[:n]
    inside = sum(1 for t, _ in top if _overlap(eligible, t - NS, t) > 0)
    return {"n": len(top), "tradable_share": round(inside / len(top), 4),
            "min_bps": round(min(v for _, v in top), 3)}


def _markouts(f: RunFacts, sym: str) -> dict[str, Any]:
    """Mean markouts (bps, positive = in the intent's favour) of the orders sent, and of the
    refused intents as if they had been sent: a taker fill at the far touch of the first metrics
    sample at or after the intent (the per-second samples: a coarse arrival), marked against the
    mid of the first sample at or after each horizon. Grouped by the refusing rule, so losses
    the gate avoided and opportunities it gave up sit side by side."""
    samples = sorted((int(r["ts_ns"]), (r.get("values") or {}).get("mid"), (r.get("values") or {}).get("spread"))
                     for r in f.metrics if r.get("symbol") == sym)
    samples = [(t, m, sp) for t, m, sp in samples if isinstance(m, (int, float)) and m == m]
    times = [t for t, _, _ in samples]
    results = [r for r in f.order_results if r.get("symbol") == sym]
    horizons = sorted({h for r in results for h in (r.get("markout_bps") or {})}, key=_seconds) or ["1s", "5s", "30s"]

    def at(t: int):
        i = bisect_left(times, t)
        return samples[i] if i < len(samples) else None

    groups: dict[str, dict[str, list[float]]] = {}
    intents = {r.get("intent_id"): r for r in f.intents}
    for rej in f.refusals:
        if rej.get("symbol") != sym:
            continue
        intent = intents.get(rej.get("intent_id"), rej)
        arrival = at(int(rej["ts_ns"]))
        if arrival is None or not isinstance(arrival[2], (int, float)) or arrival[2] != arrival[2]:
            continue
        sign = 1.0 if intent.get("side") == "buy" else -1.0
        fill = arrival[1] + sign * arrival[2] / 2
        g = groups.setdefault(f"refused:{rej.get('rule')}", {})
        for h in horizons:
            later = at(arrival[0] + int(_seconds(h) * NS))
            if later is not None:
                g.setdefault(h, []).append(sign * (later[1] - fill) / fill * 1e4)
    for r in results:
        for h, v in (r.get("markout_bps") or {}).items():
            if isinstance(v, (int, float)):
                groups.setdefault("sent", {}).setdefault(h, []).append(v)
    return {k: {"n": max((len(v) for v in g.values()), default=0),
                "markout_bps": {h: round(sum(v) / len(v), 3) for h, v in g.items() if v}}
            for k, g in sorted(groups.items())}


def _seconds(h: str) -> float:
    return float(h[:-1]) if h.endswith("s") else float(h)


def score_run(run_dir: str | Path, *, warmup_s: float = WARMUP_S,
              records: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The scorecard of one run directory (labels from the sidecar next to its input)."""
    run_dir = Path(run_dir)
    f = facts(records if records is not None else read_log(run_dir))
    labels = None
    for path in recorded_input(run_dir) or []:
        got = read_labels(path)
        if got is not None:
            labels = (labels or []) + got
    out = score_facts(f, labels, warmup_s=warmup_s)
    out["run"] = str(run_dir)
    return out


def format_line(run: str, symbol: str, s: dict[str, Any]) -> str:
    """One line of text for one run and symbol."""
    def pct(x):
        return "-" if x is None else f"{100 * x:.0f}%"

    flaps = " ".join(f"{m}={n}" for m, n in s["flaps"].items())
    parts = [f"{run} {symbol}: tradable {pct(s['tradable_share'])}", f"flaps {flaps or '-'}",
             f"orders {s['orders']}",
             f"big moves tradable {pct(s['big_moves']['tradable_share'])} of {s['big_moves']['n']}"]
    marks = []
    for group, m in (s.get("markouts") or {}).items():
        h = sorted(m["markout_bps"], key=_seconds)
        if h:
            mid = h[len(h) // 2]
            marks.append(f"{group} {m['markout_bps'][mid]:+.2f}bps@{mid} (n={m['n']})")
    if marks:
        parts.append("markouts " + " ".join(marks))
    if "windows" in s:
        ws = s["windows"]
        blocked = [w["to_blocked_s"] for w in ws if w["to_blocked_s"] is not None]
        parts.append(f"windows {len(ws)}: to BLOCKED max {max(blocked):.2f}s" if blocked else f"windows {len(ws)}: never BLOCKED")
        parts.append(f"orders inside {sum(w['orders_inside'] for w in ws)}")
        back = [w["to_tradable_s"] for w in ws if w["to_tradable_s"] is not None]
        parts.append(f"back to tradable max {max(back):.1f}s" if back else "back to tradable -")
    return ", ".join(parts)
