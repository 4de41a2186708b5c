"""``execlab explain RUN --at T --why-not MACHINE[:STATE]``: why a machine did not move (there).

For each rule that could have led from the machine's state at T (to STATE, when given): each
clause of its guard with its truth at T, the values it read and the thresholds in force (the
run's own params, overrides included); for ``after:`` the time spent in the state against the
time needed; for ``for:`` how long the guard had held against how long it must.

Everything comes from the log. Metrics are recorded once a second (``metrics`` records) and with
every transition (its ``inputs``); the value used is the latest recorded at or before T (else the
nearest after), and the answer says when that was. Machine states come from the transitions,
risk flags from the risk alerts. A value the log does not carry is said to be missing (and
reads as NaN, so comparisons with it are false, as at run time). How long a ``for:`` guard had
held is measured on the recorded samples, so it is known to about a second.
"""

from __future__ import annotations

import ast
import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec.errors import SpecError, SpecErrors
from ..spec.expr import NUM, STR, Binding, Env, Expr, InputType, compile_expr
from ..spec.machines import RISK_INPUTS, MachineSet, MachineSpec, Rule
from ..spec.pretty import Printer, fmt_value, metric_unit, param_unit
from .runlog import NS, fmt_ts


@dataclass
class _Sample:
    value: Any
    ts_ns: int | None  # None: not recorded
    source: str


class _Timeline:
    """What the log says each input was, at any time."""

    def __init__(self, records: list[dict[str, Any]], symbol: str, start: dict[str, Any]):
        self.metrics: list[tuple[int, dict[str, Any]]] = []  # (ts, {name: value})
        self._by_name: dict[str, tuple[list[int], list[Any]]] = {}
        self.transitions = [r for r in records if r.get("kind") == "transition" and r.get("symbol") == symbol]
        self.initial = dict((start.get("initial") or {}).get(symbol, {}))
        self.start_ns = int(start["ts_ns"])
        self.alerts = [r for r in records if r.get("kind") == "alert" and r.get("symbol") in (symbol, "")]
        for r in records:
            if r.get("symbol") != symbol:
                continue
            if r.get("kind") == "metrics":
                self.metrics.append((r["ts_ns"], dict(r.get("values") or {})))
            elif r.get("kind") == "transition":
                vals = {k.split(".", 1)[1]: v for k, v in (r.get("inputs") or {}).items() if k.startswith("metrics.")}
                if vals:
                    self.metrics.append((r["ts_ns"], vals))
        self.metrics.sort(key=lambda x: x[0])
        for ts, values in self.metrics:
            for k, v in values.items():
                times, vals = self._by_name.setdefault(k, ([], []))
                times.append(ts)
                vals.append(v)

    def state(self, machine: str, at: int) -> tuple[str | None, int]:
        """(state, since) of a machine at ``at``."""
        state, since = self.initial.get(machine), self.start_ns
        for t in self.transitions:
            if t["ts_ns"] > at:
                break
            if t.get("machine") == machine:
                state, since = t.get("to"), t["ts_ns"]
        return state, since

    def entries(self, machine: str, state: str, window_s: float, at: int) -> int:
        lo = at - window_s * NS
        return sum(1 for t in self.transitions if t.get("machine") == machine and t.get("to") == state
                   and lo < t["ts_ns"] <= at)

    def metric(self, name: str, at: int) -> _Sample:
        times, values = self._by_name.get(name, ([], []))
        i = bisect.bisect_right(times, at)
        if i > 0:
            return _Sample(_number(values[i - 1]), times[i - 1], "recorded")
        if times:
            return _Sample(_number(values[0]), times[0], "recorded after T only")
        return _Sample(math.nan, None, "not recorded")

    def risk(self, key: str, at: int) -> _Sample:
        guard = {"stale": "stale_data", "kill_switch": "kill_switch"}.get(key)
        if guard is None:
            return _Sample(math.nan, None, "not recorded")
        last = None
        for a in self.alerts:
            if a["ts_ns"] > at:
                break
            if a.get("guard") == guard:
                last = a
        if last is None:
            return _Sample(False, None, f"no {guard} alert before T")
        on = last.get("tripped") if "tripped" in last else last.get("state") == "trip"
        return _Sample(bool(on), last["ts_ns"], f"{guard} alert")

    def sample_times(self, lo: int, hi: int) -> list[int]:
        return sorted({ts for ts, _ in self.metrics if lo <= ts <= hi})


def _number(v: Any) -> Any:
    if isinstance(v, str):  # the log writes inf/nan as text
        try:
            return float(v)
        except ValueError:
            return v
    return math.nan if v is None else v


def _env(spec: MachineSpec, machine_set: MachineSet) -> Env:
    """The types a machine's expressions were checked against (as at load)."""
    inputs: dict[str, InputType] = {}
    for ns in spec.reads:
        if ns == "metrics":
            inputs.update({f"metrics.{m}": InputType(NUM) for m in machine_set.metric_names})
        elif ns == "risk":
            inputs.update({f"risk.{k}": t for k, t in RISK_INPUTS.items()})
        else:
            up = machine_set.machine(ns)
            inputs[f"{ns}.state"] = InputType(STR, frozenset(up.states))
            inputs.update({f"{ns}.{d}": e.type for d, (e, _) in up.derive.items()})
    return Env(inputs=inputs, params={k: p.value for k, p in spec.params.items()},
               derived={d: e.type for d, (e, _) in spec.derive.items()}, states=frozenset(spec.states), timers=True)


class _World:
    """The namespaces a machine's guards read, filled from the log at one moment."""

    def __init__(self, spec: MachineSpec, machine_set: MachineSet, tl: _Timeline, symbol: str):
        self.spec, self.machine_set, self.tl = spec, machine_set, tl
        self.ns: dict[str, dict[str, Any]] = {"metrics": {}, "risk": {}, "derived": {}}
        self.sources: dict[str, _Sample] = {}
        self.at = 0
        self.since = 0
        self.binding = Binding(self.ns, time_in_state=lambda: (self.at - self.since) / NS,
                               entries=lambda s, w: self.tl.entries(spec.name, s, w, self.at))
        self._upstream = [ns for ns in spec.reads if ns not in ("metrics", "risk")]
        for ns in self._upstream:
            self.ns.setdefault(ns, {})
        self._derive = [(d, e.bind(self.binding)) for d, (e, _) in spec.derive.items()]
        self._up_derive = []  # an upstream machine's derived values, each over its own bare names
        for ns in self._upstream:
            own = Binding({**self.ns, "derived": {}})
            self._up_derive += [(ns, d, own.namespaces["derived"], e.bind(own))
                                for d, (e, _) in machine_set.machine(ns).derive.items()]

    def at_time(self, at: int, since: int) -> None:
        self.at, self.since = at, since
        for m in self.machine_set.metric_names:
            s = self.tl.metric(m, at)
            self.ns["metrics"][m] = s.value
            self.sources[f"metrics.{m}"] = s
        for k in RISK_INPUTS:
            s = self.tl.risk(k, at)
            self.ns["risk"][k] = s.value
            self.sources[f"risk.{k}"] = s
        for ns in self._upstream:
            state, t = self.tl.state(ns, at)
            self.ns[ns]["state"] = state
            self.sources[f"{ns}.state"] = _Sample(state, t, "transition" if t != self.tl.start_ns else "initial state")
        for ns, d, own, f in self._up_derive:
            self.ns[ns][d] = own[d] = _safe(f)
            self.sources[f"{ns}.{d}"] = _Sample(self.ns[ns][d], None, "computed from the recorded values")
        for d, f in self._derive:
            self.ns["derived"][d] = _safe(f)
        for d, (e, _) in self.spec.derive.items():
            parts = ", ".join(f"{n}={_short(self.value(n))}" for n in e.reads)
            self.sources[d] = _Sample(self.ns["derived"][d], None, f"derived from {parts}" if parts else "derived")

    def value(self, name: str) -> Any:
        if "." in name:
            ns, key = name.split(".", 1)
            return self.ns.get(ns, {}).get(key)
        return self.ns["derived"].get(name)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _safe(f: Any) -> Any:
    try:
        return f()
    except (KeyError, TypeError):
        return math.nan


def _clauses(expr: Expr, env: Env) -> list[tuple[str, str, Expr]]:
    """(connector, text, compiled) of each top-level clause of a guard."""
    tree = ast.parse(expr.text, mode="eval").body
    if isinstance(tree, ast.BoolOp):
        word = "and" if isinstance(tree.op, ast.And) else "or"
        parts = []
        for i, node in enumerate(tree.values):
            text = " ".join((ast.get_source_segment(expr.text, node) or "").split())
            parts.append(("" if i == 0 else word, text, compile_expr(f"({text})", env)))
        return parts
    return [("", expr.text, expr)]


def _unit_of(name: str) -> str | None:
    if name.startswith("metrics."):
        return metric_unit(name.split(".", 1)[1])
    return param_unit(name.rsplit(".", 1)[-1]) or None


def _read(world: _World, names: tuple[str, ...], at: int) -> list[dict[str, Any]]:
    out = []
    for n in names:
        s = world.sources.get(n) or _Sample(world.value(n), None, "")
        v = s.value
        item = {"name": n, "value": v, "shown": fmt_value(v, _unit_of(n)) if not isinstance(v, str) else v,
                "source": s.source}
        if s.ts_ns is not None:
            item["time"] = fmt_ts(s.ts_ns)
            item["age_s"] = (at - s.ts_ns) / NS
        out.append(item)
    return out


def _held_for(world: _World, when: Any, at: int, since: int) -> tuple[float, int | None]:
    """How long ``when`` had held at ``at`` (by the recorded samples since ``since``)."""
    times = world.tl.sample_times(since, at)
    if not times or times[-1] != at:
        times.append(at)
    start = None
    for t in reversed(times):
        world.at_time(t, since)
        if not when():
            break
        start = t
    world.at_time(at, since)
    if start is None:
        return 0.0, None
    return (at - start) / NS, start


def why_not(records: list[dict[str, Any]], machine_set: MachineSet, at_ns: int, target: str,
            symbol: str | None = None) -> dict[str, Any]:
    """The answer as plain data (what ``--json`` prints)."""
    machine, _, state = target.partition(":")
    names = [m.name for m in machine_set.machines]
    if machine not in names:
        raise SpecErrors([SpecError("--why-not", 0, 0, f"no machine '{machine}' in this run; expected one of: {', '.join(names)}")])
    spec = machine_set.machine(machine)
    if state and state not in spec.states:
        raise SpecErrors([SpecError("--why-not", 0, 0, f"'{state}' is not a state of {machine}; expected one of: {', '.join(spec.states)}")])
    start = next((r for r in records if r.get("kind") == "session_start"), None)
    if start is None:
        raise SpecErrors([SpecError("log.jsonl", 1, 0, "no session_start record; expected a complete audit log")])
    symbol = symbol or (list(start.get("symbols") or [""]) or [""])[0]
    tl = _Timeline(records, symbol, start)
    end = next((r for r in reversed(records) if r.get("kind") == "session_end"), None)
    outside = at_ns < tl.start_ns or (end is not None and at_ns > end["ts_ns"])
    current, since = tl.state(machine, at_ns)
    answer: dict[str, Any] = {"machine": machine, "target": state or None, "symbol": symbol, "at": fmt_ts(at_ns),
                              "at_ns": at_ns, "state": current, "since": fmt_ts(since), "for_s": (at_ns - since) / NS,
                              "rules": [], "note": "",
                              "outside_run": f"T is outside the run ({fmt_ts(tl.start_ns)} .. {fmt_ts(end['ts_ns'] if end else None)})"
                              if outside else ""}
    if state and state == current:
        answer["note"] = f"{machine} was already {state} at T (since {fmt_ts(since)})"
        return answer
    rules = [r for r in spec.rules_from(current or "") if not state or r.dest == state]
    if not rules:
        into = sorted({s for r in spec.rules if r.dest == state for s in r.sources}) if state else []
        answer["note"] = (f"no rule leads from {current} to {state}" + (f"; rules into {state} leave {', '.join(into)}" if into else "")
                          if state else f"no rule leaves {current}")
        return answer
    env = _env(spec, machine_set)
    world = _World(spec, machine_set, tl, symbol)
    world.at_time(at_ns, since)
    printer = Printer({k: p.value for k, p in spec.params.items()})
    file = Path(spec.path).name
    for rule in rules:
        answer["rules"].append(_explain_rule(rule, env, world, printer, at_ns, since, file, current or ""))
    return answer


def _explain_rule(rule: Rule, env: Env, world: _World, printer: Printer, at: int, since: int, file: str,
                  current: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    ok = True
    if rule.after is not None:
        needed = rule.after.bind(world.binding)()
        in_state = (at - since) / NS
        holds = in_state >= needed
        ok &= holds
        parts.append({"kind": "after", "text": f"after {printer.seconds(rule.after.text)}", "holds": holds,
                      "detail": f"in {current} for {in_state:.3f} s of {needed:.6g} s needed",
                      "read": _read(world, rule.after.reads, at), "needed_s": needed, "in_state_s": in_state})
    if rule.when is not None:
        when_value = bool(rule.when.bind(world.binding)())
        clauses = []
        for connector, text, expr in _clauses(rule.when, env):
            value = bool(expr.bind(world.binding)())
            clauses.append({"connector": connector, "text": printer.render(text), "source": text, "holds": value,
                            "read": _read(world, expr.reads, at),
                            "params": {p: fmt_value(env.params[p], param_unit(p)) for p in expr.params}})
        ok &= when_value
        parts.append({"kind": "when", "holds": when_value, "clauses": clauses})
    if rule.hold is not None:
        needed = rule.hold.bind(world.binding)()
        if rule.when is not None and parts[-1]["holds"]:
            held, held_since = _held_for(world, rule.when.bind(world.binding), at, since)
            detail = (f"the guard had held for about {held:.3f} s (since {fmt_ts(held_since)}, by the recorded samples) "
                      f"of {needed:.6g} s needed")
        else:
            held, detail = 0.0, f"the guard did not hold at T, so its {needed:.6g} s had not started"
        holds = held >= needed
        ok &= holds
        parts.append({"kind": "for", "text": f"for {printer.seconds(rule.hold.text)}", "holds": holds,
                      "detail": detail, "held_s": held, "needed_s": needed})
    return {"rule": rule.index, "from": current, "to": rule.dest, "where": f"{file}:{rule.line}",
            "doc": " ".join(rule.doc.split()), "holds": ok, "parts": parts}


# --- text -------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _read_text(read: list[dict[str, Any]]) -> str:
    out = []
    for r in read:
        where = r["source"]
        if "time" in r:
            age = r["age_s"]
            where += f" at {r['time']}" + (f", {abs(age):.3f} s {'before' if age >= 0 else 'after'} T" if age else ", at T")
        out.append(f"{r['name']} = {r['shown']} ({where})")
    return "; ".join(out)


def format_why_not(a: dict[str, Any]) -> str:
    target = f"{a['machine']}:{a['target']}" if a["target"] else a["machine"]
    lines = [f"Why not {target} at {a['at']} ({a['symbol']})?",
             f"{a['machine']} was {a['state']} (since {a['since']}, {a['for_s']:.3f} s)."]
    if a.get("outside_run"):
        lines.append(f"note: {a['outside_run']}")
    if a["note"]:
        lines.append(a["note"] + ".")
        return "\n".join(lines) + "\n"
    for r in a["rules"]:
        lines.append("")
        verdict = "all its conditions held at T by the recorded values (it fires at the next evaluation, or the " \
                  "machine saw values between the recorded samples)" if r["holds"] else "did not fire"
        lines.append(f"rule #{r['rule']} {r['from']} → {r['to']} ({r['where']}): {verdict}")
        if r["doc"]:
            lines.append(f"  {r['doc']}")
        for p in r["parts"]:
            if p["kind"] == "when":
                lines.append(f"  {_mark(p['holds'])} when (guard {'true' if p['holds'] else 'false'}):")
                for c in p["clauses"]:
                    head = f"{c['connector']} " if c["connector"] else ""
                    lines.append(f"      {_mark(c['holds'])} {head}{c['text']}")
                    if c["read"]:
                        lines.append(f"          read {_read_text(c['read'])}")
            else:
                lines.append(f"  {_mark(p['holds'])} {p['text']}: {p['detail']}")
    return "\n".join(lines) + "\n"
