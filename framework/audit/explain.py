"""``execlab explain RUN --at T``: the state of every layer at T, and why.

For each machine: its state at T and the chain of transitions that led there (newest last),
each with its time, rule, guard text, the values it read and the params it used. When a
transition read another machine's state, the transition that put that machine there is
cited as its cause. Then the decision in force (and its rule), risk guards tripped at T, and
the intents refused near T with the rule that forbade them. Everything comes from the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..spec.errors import SpecError, SpecErrors
from .analysis import LAYERS, states_of
from .runlog import NS, fmt_ts, load_records


def _cause(transitions: list[dict[str, Any]], t: dict[str, Any]) -> list[dict[str, Any]]:
    """Transitions of upstream machines whose state this transition read."""
    causes = []
    for name, value in (t.get("inputs") or {}).items():
        if not name.endswith(".state"):
            continue
        upstream = name[: -len(".state")]
        last = None
        for u in transitions:
            if u["ts_ns"] > t["ts_ns"] or u is t:
                if u is t:
                    break
                continue
            if u.get("machine") == upstream and u.get("symbol") == t.get("symbol"):
                last = u
        if last is not None and last.get("to") == value:
            causes.append(last)
    return causes


def _brief(t: dict[str, Any]) -> dict[str, Any]:
    return {"ts_ns": t["ts_ns"], "time": fmt_ts(t["ts_ns"]), "seq": t.get("seq"), "machine": t.get("machine"),
            "from": t.get("from"), "to": t.get("to"), "rule": t.get("rule"), "guard": " ".join(str(t.get("guard", "")).split()),
            "inputs": t.get("inputs") or {}, "params": t.get("params") or {}}


def explain(records: Iterable[dict[str, Any]], at_ns: int, symbol: str | None = None,
            machine: str | None = None, chain: int = 3, window_s: float = 30.0) -> dict[str, Any]:
    """The answer as plain data (what ``--json`` prints)."""
    recs = list(records)
    start = next((r for r in recs if r.get("kind") == "session_start"), None)
    if start is None:
        raise SpecErrors([SpecError("log.jsonl", 1, 0, "no session_start record; expected a complete audit log")])
    symbols = list(start.get("symbols") or [])
    if symbol is None:
        symbol = symbols[0] if symbols else ""
    elif symbols and symbol not in symbols:
        raise SpecErrors([SpecError("--symbol", 0, 0, f"'{symbol}' is not in this run; expected one of: {', '.join(symbols)}")])
    end = next((r for r in reversed(recs) if r.get("kind") == "session_end"), None)
    start_ns = int(start["ts_ns"])
    end_ns = int(end["ts_ns"]) if end else max(int(r.get("ts_ns", 0)) for r in recs)
    initial = dict((start.get("initial") or {}).get(symbol, {}))
    machines = list(initial)
    transitions = [r for r in recs if r.get("kind") == "transition" and r.get("symbol") == symbol]
    for t in transitions:
        if t.get("machine") not in machines:
            machines.append(t["machine"])
    seen = list(machines)
    machines = sorted(seen, key=lambda m: (LAYERS.index(m) if m in LAYERS else len(LAYERS), seen.index(m)))
    if machine is not None and machine not in machines:
        raise SpecErrors([SpecError("--machine", 0, 0, f"no machine '{machine}' in this run; expected one of: {', '.join(machines)}")])
    before = [t for t in transitions if t["ts_ns"] <= at_ns]

    layers = []
    for m in machines:
        if machine is not None and m != machine:
            continue
        own = [t for t in before if t.get("machine") == m]
        state = own[-1]["to"] if own else initial.get(m)
        steps = []
        for t in own[-chain:] if chain > 0 else own:
            step = _brief(t)
            step["caused_by"] = [_brief(c) for c in _cause(transitions, t)]
            steps.append(step)
        since = own[-1]["ts_ns"] if own else start_ns
        layers.append({"machine": m, "state": state, "since_ns": since, "since": fmt_ts(since),
                       "for_s": (at_ns - since) / NS, "initial": not own,
                       "transitions_before": len(own), "chain": steps})

    decision = dict((start.get("decision") or {}).get(symbol, {}))
    decision_since = start_ns
    for r in recs:
        if r.get("kind") == "decision" and r.get("symbol") == symbol and r["ts_ns"] <= at_ns:
            decision = {k: r.get(k) for k in ("eligible", "aggressiveness", "risk_budget", "rule")}
            decision_since = r["ts_ns"]

    tripped: dict[str, dict[str, Any]] = {}
    for r in recs:
        if r.get("kind") == "alert" and r["ts_ns"] <= at_ns and r.get("symbol") in (symbol, ""):
            on = r.get("tripped") if "tripped" in r else r.get("state") == "trip"
            if on:
                tripped[r.get("guard", "?")] = {"since": fmt_ts(r["ts_ns"]), "value": r.get("value"),
                                                "limit": r.get("limit"), "invariant": r.get("invariant")}
            else:
                tripped.pop(r.get("guard", "?"), None)

    w = int(window_s * NS)
    intents = {r.get("intent_id"): r for r in recs if r.get("kind") == "intent"}
    refused = []
    for r in recs:
        if r.get("kind") != "reject" or r.get("symbol") != symbol or abs(r["ts_ns"] - at_ns) > w:
            continue
        if r.get("stage") not in ("decision", "risk") and "order_id" in r:
            continue
        refused.append({"ts_ns": r["ts_ns"], "time": fmt_ts(r["ts_ns"]), "seq": r.get("seq"),
                        "intent_id": r.get("intent_id"), "stage": r.get("stage"), "rule": r.get("rule"),
                        "reason": r.get("reason"),
                        "side": r.get("side") or intents.get(r.get("intent_id"), {}).get("side"),
                        "style": r.get("style") or intents.get(r.get("intent_id"), {}).get("style"),
                        "notional_usd": r.get("notional_usd") or intents.get(r.get("intent_id"), {}).get("notional_usd"),
                        "states": states_of(r), "decision": r.get("decision") or {}})
    refused.sort(key=lambda x: (abs(x["ts_ns"] - at_ns), x["ts_ns"]))

    feed = [{"time": fmt_ts(r["ts_ns"]), "event": r.get("event"), "detail": r.get("detail"), "gap_ms": r.get("gap_ms")}
            for r in recs if r.get("kind") == "feed" and abs(r["ts_ns"] - at_ns) <= w
            and r.get("symbol") in (symbol, "")]

    return {
        "run": start.get("session"), "symbol": symbol, "at_ns": at_ns, "at": fmt_ts(at_ns),
        "after_start_s": (at_ns - start_ns) / NS, "in_run": start_ns <= at_ns <= end_ns,
        "start": fmt_ts(start_ns), "end": fmt_ts(end_ns),
        "layers": layers,
        "decision": {**decision, "since_ns": decision_since, "since": fmt_ts(decision_since)},
        "risk_tripped": tripped,
        "refused": refused[:10], "refused_total": len(refused), "window_s": window_s,
        "feed": feed,
    }


def explain_run(run_dir: str | Path, at_ns: int, **kw: Any) -> dict[str, Any]:
    return explain(load_records(run_dir), at_ns, **kw)


# --- text ---------------------------------------------------------------------------------

def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in d.items()) or "-"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def _step_lines(s: dict[str, Any], indent: str) -> list[str]:
    out = [f"{indent}{s['time']}  {s['from']} -> {s['to']}  (rule #{s['rule']}, line {s['seq'] + 1 if s['seq'] is not None else '?'})",
           f"{indent}    guard : {s['guard'] or '(always)'}",
           f"{indent}    read  : {_kv(s['inputs'])}"]
    if s["params"]:
        out.append(f"{indent}    params: {_kv(s['params'])}")
    return out


def format_text(a: dict[str, Any]) -> str:
    lines = [f"{a['run']} / {a['symbol']} at {a['at']} ({a['after_start_s']:+.3f} s after the start {a['start']})"]
    if not a["in_run"]:
        lines.append(f"  note: this time is outside the run ({a['start']} .. {a['end']})")
    d = a["decision"]
    verdict = "ELIGIBLE to trade" if d.get("eligible") else "NOT eligible to trade"
    lines.append("")
    lines.append(f"Decision: {verdict} - rule '{d.get('rule')}', aggressiveness {d.get('aggressiveness')}, "
                 f"risk budget {d.get('risk_budget')} (since {d['since']})")
    for layer in a["layers"]:
        lines.append("")
        head = f"{layer['machine']}: {layer['state']} for {layer['for_s']:.1f} s (since {layer['since']})"
        if layer["initial"]:
            head += " - the initial state; no transition yet"
        lines.append(head)
        if layer["chain"]:
            n_more = layer["transitions_before"] - len(layer["chain"])
            lines.append("  how it got there" + (f" (last {len(layer['chain'])} of {layer['transitions_before']} transitions)" if n_more > 0 else "") + ":")
            for s in layer["chain"]:
                lines.extend(_step_lines(s, "  "))
                for c in s["caused_by"]:
                    lines.append(f"      because {c['machine']} went {c['from']} -> {c['to']} at {c['time']} (rule #{c['rule']}: {c['guard']}; read {_kv(c['inputs'])})")
    risk = {g: v for g, v in a["risk_tripped"].items() if not v.get("invariant")}
    failing = {g: v for g, v in a["risk_tripped"].items() if v.get("invariant")}
    if risk:
        lines.append("")
        lines.append("Risk guards tripped: " + "; ".join(
            f"{g} (value {_fmt(v.get('value'))}, limit {_fmt(v.get('limit'))}, since {v['since']})" for g, v in risk.items()))
    if failing:
        lines.append("")
        lines.append("Invariants failing: " + "; ".join(
            f"{g.removeprefix('invariant:')} ({v['invariant']}; since {v['since']})" for g, v in failing.items()))
    lines.append("")
    if a["refused"]:
        lines.append(f"Intents refused within {a['window_s']:g} s ({a['refused_total']}, nearest first):")
        for r in a["refused"]:
            st = ", ".join(f"{k} {v}" for k, v in r["states"].items())
            lines.append(f"  {r['time']}  {r.get('intent_id')} ({r.get('side') or '?'} {r.get('style') or ''} {r.get('notional_usd') or ''} USD): "
                         f"refused at {r.get('stage')} by rule '{r.get('rule')}' - {r.get('reason')}" + (f" [{st}]" if st else ""))
    else:
        lines.append(f"No intent refused within {a['window_s']:g} s.")
    if a["feed"]:
        lines.append("")
        lines.append("Feed incidents nearby: " + "; ".join(
            f"{f['time']} {f['event']}" + (f" ({f['detail']})" if f.get("detail") else "") for f in a["feed"]))
    return "\n".join(lines) + "\n"
