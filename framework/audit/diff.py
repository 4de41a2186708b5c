"""``execlab diff RUN --set machine.param=value`` (or ``--config EDITED.yaml``): what would have
changed. The run's recorded input is re-run under the edited configuration and the two runs are
set side by side: transitions and time in each state per machine, time eligible to trade,
refused intents, execution quality, and the first moment they diverge (the first transition
that differs)."""

from __future__ import annotations

import html
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .analysis import LAYERS, RunFacts, facts, quality_rows
from .runlog import fmt_ts, load_records, log_path
from .verify import rerun

_KEY = ("ts_ns", "symbol", "machine", "from", "to", "rule")


def first_transition_difference(a: RunFacts, b: RunFacts) -> dict[str, Any] | None:
    """The first transition (in log order) present in one run and not at the same place in the other."""
    def order(t: dict[str, Any]) -> tuple:  # machines firing at the same instant: any order
        return (t["ts_ns"], t.get("symbol", ""), t.get("machine", ""))

    sa, sb = sorted(a.transitions, key=order), sorted(b.transitions, key=order)
    for i, (x, y) in enumerate(zip(sa, sb, strict=False)):
        if tuple(x.get(k) for k in _KEY) != tuple(y.get(k) for k in _KEY):
            ts = min(x["ts_ns"], y["ts_ns"])
            return {"index": i, "ts_ns": ts, "time": fmt_ts(ts), "base": _as_dict(x), "edited": _as_dict(y)}
    if len(sa) != len(sb):
        i = min(len(sa), len(sb))
        x = sa[i] if len(sa) > i else None
        y = sb[i] if len(sb) > i else None
        ts = (x or y)["ts_ns"]
        return {"index": i, "ts_ns": ts, "time": fmt_ts(ts), "base": _as_dict(x), "edited": _as_dict(y)}
    return None


def _as_dict(t: dict[str, Any] | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {"time": fmt_ts(t["ts_ns"]), "symbol": t.get("symbol"), "machine": t.get("machine"),
            "from": t.get("from"), "to": t.get("to"), "rule": t.get("rule"), "guard": " ".join(str(t.get("guard", "")).split()),
            "inputs": t.get("inputs"), "params": t.get("params")}


def _machines(a: RunFacts, b: RunFacts) -> list[str]:
    names = list(dict.fromkeys([*a.machines, *b.machines]))
    return sorted(names, key=lambda m: (LAYERS.index(m) if m in LAYERS else len(LAYERS), names.index(m)))


def compare(a: RunFacts, b: RunFacts) -> dict[str, Any]:
    machines = []
    ca, cb = a.transition_counts(), b.transition_counts()
    ta, tb = a.time_in_state(), b.time_in_state()
    for m in _machines(a, b):
        edges = sorted(set(ca.get(m, {})) | set(cb.get(m, {})), key=lambda k: (k[2], k[0]))
        states = list(dict.fromkeys([*ta.get(m, {}), *tb.get(m, {})]))
        machines.append({
            "machine": m,
            "transitions": {"base": sum(ca.get(m, {}).values()), "edited": sum(cb.get(m, {}).values())},
            "edges": [{"from": e[0], "to": e[1], "rule": e[2], "base": ca.get(m, {}).get(e, 0),
                       "edited": cb.get(m, {}).get(e, 0)} for e in edges],
            "time_in_state_s": [{"state": s, "base": ta.get(m, {}).get(s, 0.0), "edited": tb.get(m, {}).get(s, 0.0)}
                                for s in states],
        })
    qa, qb = quality_rows(a.order_results, None), quality_rows(b.order_results, None)
    return {
        "duration_s": {"base": a.duration_s, "edited": b.duration_s},
        "eligible_s": {"base": a.eligible_s(), "edited": b.eligible_s()},
        "refused_intents": {"base": len(a.refusals), "edited": len(b.refusals)},
        "orders": {"base": len(a.orders), "edited": len(b.orders)},
        "fills": {"base": len(a.fills), "edited": len(b.fills)},
        "machines": machines,
        "quality": {"base": qa[0] if qa else None, "edited": qb[0] if qb else None},
        "first_divergence": first_transition_difference(a, b),
        "changed": any(x["transitions"]["base"] != x["transitions"]["edited"] or
                       any(abs(s["base"] - s["edited"]) > 1e-9 for s in x["time_in_state_s"]) for x in machines)
                   or first_transition_difference(a, b) is not None,
    }


def diff_run(run_dir: str | Path, sets: Iterable[str] = (), config_path: str | Path | None = None) -> dict[str, Any]:
    """Re-run the recorded input under the edit and compare with the recorded run."""
    run = Path(run_dir)
    log_path(run)
    base_records = load_records(run)
    base = facts(base_records)
    with tempfile.TemporaryDirectory(prefix="execlab-diff-") as tmp:
        rerun(run, Path(tmp) / "edited", sets=sets, config_path=config_path)
        edited_records = load_records(Path(tmp) / "edited")
        edited = facts(edited_records)
    out = compare(base, edited)
    out["costs"] = {"base": cost_summary(base_records), "edited": cost_summary(edited_records)}
    out["edit"] = {"sets": list(sets), "config": str(config_path) if config_path else None}
    out["run"] = str(run)
    return out


def cost_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """PnL, fees, end position and the mean costs of a run (framework/audit/tca.py)."""
    from .tca import aggregate, money, order_costs

    costs, horizons = order_costs(records)
    m = money(records)
    st = aggregate(costs, horizons, [])["all"]
    return {
        "net_pnl_usd": m["total"]["net_pnl_usd"], "realized_pnl_usd": m["total"]["realized_pnl_usd"],
        "fees_usd": m["total"]["fees_usd"], "unrealized_pnl_usd": m["total"]["unrealized_pnl_usd"],
        "position": {sym: s["position"] for sym, s in m["symbols"].items()},
        "is_decision_bps": st["is_decision_bps"]["mean"], "is_arrival_bps": st["is_arrival_bps"]["mean"],
        "effective_spread_bps": st["effective_spread_bps"]["mean"],
    }


# --- output -----------------------------------------------------------------------------------

def _d(a: float, b: float, nd: int = 1) -> str:
    delta = b - a
    return "" if abs(delta) < 10 ** -(nd + 1) else f"{delta:+.{nd}f}"


def _v(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _edit_text(d: dict[str, Any]) -> str:
    e = d["edit"]
    return " ".join(f"--set {s}" for s in e["sets"]) + (f" --config {e['config']}" if e["config"] else "")


def rows(d: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, base, edited, change) rows shared by the text and HTML outputs."""
    out = []
    for key, label in (("duration_s", "duration (s)"), ("eligible_s", "eligible to trade (s)")):
        a, b = d[key]["base"], d[key]["edited"]
        out.append((label, f"{a:.1f}", f"{b:.1f}", _d(a, b)))
    for key, label in (("refused_intents", "refused intents"), ("orders", "orders"), ("fills", "fills")):
        a, b = d[key]["base"], d[key]["edited"]
        out.append((label, str(a), str(b), _d(a, b, 0)))
    qa, qb = d["quality"]["base"] or {}, d["quality"]["edited"] or {}
    for key, label in (("fill_ratio", "fill ratio"), ("slippage_arrival_bps", "slippage vs arrival (bps)")):
        out.append((label, _v(qa.get(key)), _v(qb.get(key)), ""))
    for h in dict.fromkeys([*(qa.get("markout_bps") or {}), *(qb.get("markout_bps") or {})]):
        out.append((f"markout {h} (bps)", _v((qa.get("markout_bps") or {}).get(h)),
                    _v((qb.get("markout_bps") or {}).get(h)), ""))
    ca, cb = (d.get("costs") or {}).get("base"), (d.get("costs") or {}).get("edited")
    if ca is not None and cb is not None:
        for key, label in (("net_pnl_usd", "net PnL at mid (USD)"), ("realized_pnl_usd", "realized PnL (USD)"),
                           ("fees_usd", "fees (USD)"), ("unrealized_pnl_usd", "end position at mid (USD)")):
            out.append((label, f"{ca[key]:.4f}", f"{cb[key]:.4f}", _d(ca[key], cb[key], 4)))
        for sym in dict.fromkeys([*ca["position"], *cb["position"]]):
            a, b = ca["position"].get(sym, 0.0), cb["position"].get(sym, 0.0)
            out.append((f"{sym} end position", f"{a:.8g}", f"{b:.8g}", _d(a, b, 8)))
        for key, label in (("is_decision_bps", "shortfall vs decision (bps)"), ("is_arrival_bps", "shortfall vs arrival (bps)"),
                           ("effective_spread_bps", "effective spread (bps)")):
            out.append((label, _v(ca[key]), _v(cb[key]), ""))
    for m in d["machines"]:
        a, b = m["transitions"]["base"], m["transitions"]["edited"]
        out.append((f"{m['machine']}: transitions", str(a), str(b), _d(a, b, 0)))
        for e in m["edges"]:
            if e["base"] or e["edited"]:
                out.append((f"  {e['from']} -> {e['to']} (#{e['rule']})", str(e["base"]), str(e["edited"]),
                            _d(e["base"], e["edited"], 0)))
        for s in m["time_in_state_s"]:
            out.append((f"  time in {s['state']} (s)", f"{s['base']:.1f}", f"{s['edited']:.1f}", _d(s["base"], s["edited"])))
    return out


def _tr(t: dict[str, Any] | None) -> str:
    if t is None:
        return "(no transition)"
    return f"{t['time']} {t['symbol']} {t['machine']} {t['from']} -> {t['to']} (rule #{t['rule']}: {t['guard']})"


def format_text(d: dict[str, Any]) -> str:
    lines = [f"diff of {d['run']} against the same input with {_edit_text(d)}"]
    rs = rows(d)
    w = max(len(r[0]) for r in rs)
    lines.append(f"{'':{w}}  {'recorded':>12}  {'edited':>12}  {'change':>8}")
    for what, a, b, c in rs:
        lines.append(f"{what:{w}}  {a:>12}  {b:>12}  {c:>8}")
    fd = d["first_divergence"]
    lines.append("")
    if fd is None:
        lines.append("no difference in transitions: both runs moved through the same states at the same times")
    else:
        lines.append(f"first divergence at {fd['time']} (transition #{fd['index'] + 1}):")
        lines.append(f"  recorded: {_tr(fd['base'])}")
        lines.append(f"  edited  : {_tr(fd['edited'])}")
    return "\n".join(lines) + "\n"


def format_html(d: dict[str, Any]) -> str:
    e = html.escape
    body = "".join(f"<tr><td class='l'>{e(w).replace('  ', '&nbsp;&nbsp;&nbsp;&nbsp;')}</td><td>{e(a)}</td><td>{e(b)}</td>"
                   f"<td><b>{e(c)}</b></td></tr>" for w, a, b, c in rows(d))
    fd = d["first_divergence"]
    first = ("<p>No difference in transitions.</p>" if fd is None else
             f"<p>First divergence at <b>{e(fd['time'])}</b>:<br>recorded: {e(_tr(fd['base']))}<br>"
             f"edited: {e(_tr(fd['edited']))}</p>")
    return (f"<p>Edit: <code>{e(_edit_text(d))}</code></p>"
            f"<table><tr><th class='l'></th><th>recorded</th><th>edited</th><th>change</th></tr>{body}</table>{first}")
