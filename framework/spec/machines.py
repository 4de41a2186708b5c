"""Machine and decision-table specs: schema, then semantic checks, then compiled expressions.

A set of machines is checked together because they read each other: ``permission`` reading
``regime.state`` must know regime's states to type its guards. The pipeline order is the
dependency order of ``reads:`` (a cycle is an error).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema
from .errors import SpecError, SpecErrors
from .expr import BOOL, MAX_TIMER_S, NUM, STR, Env, Expr, ExprError, InputType, compile_expr
from .invariants import Invariant, compile_invariants, prove
from .loader import Document, expr_error, load_yaml, parse_yaml

# What the risk guard publishes for guards to read as risk.NAME.
RISK_INPUTS: dict[str, InputType] = {
    "kill_switch": InputType(BOOL),
    "stale": InputType(BOOL),
    "position_notional_usd": InputType(NUM),
    "pnl_usd": InputType(NUM),
    "drawdown_usd": InputType(NUM),
    "orders_in_window": InputType(NUM),
}
# What the paper account shows the risk machine (machines/risk.yaml) as account.NAME: the values
# that are not market metrics. Only the risk machine reads them (docs/machines.md#risk).
ACCOUNT_INPUTS: dict[str, InputType] = {k: InputType(NUM) for k in (
    "position", "position_notional_usd", "pnl_usd", "realized_pnl_usd", "unrealized_pnl_usd", "fees_usd",
    "peak_pnl_usd", "drawdown_usd", "orders_in_window")}
# Suffixes that say a param's unit (or that it has none by nature).
PARAM_UNIT_SUFFIXES = ("_s", "_ms", "_bps", "_hz", "_usd", "_ratio", "_count", "_weight", "_score", "_x", "_enabled")
# Units that cannot be negative: durations, rates and counts.
NON_NEGATIVE_SUFFIXES = ("_s", "_ms", "_hz", "_count")


@dataclass(frozen=True)
class Param:
    value: Any
    doc: str


@dataclass(frozen=True)
class State:
    doc: str
    terminal: bool = False
    color: str | None = None


@dataclass(frozen=True)
class Rule:
    """One transition. ``index`` is its 1-based position in the file: its priority."""

    index: int
    sources: tuple[str, ...]
    dest: str
    when: Expr | None
    after: Expr | None
    hold: Expr | None  # the `for:` hysteresis timer
    doc: str
    line: int

    def _exprs(self) -> list[Expr]:
        return [e for e in (self.when, self.after, self.hold) if e is not None]

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for e in self._exprs() for name in e.reads))

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for e in self._exprs() for name in e.params))

    def conditions(self) -> list[str]:
        """The rule's conditions in the order they are read: timer, guard, hysteresis."""
        parts = []
        if self.after is not None:
            parts.append(f"after {self.after.text}")
        if self.when is not None:
            parts.append(f"when {self.when.text}")
        if self.hold is not None:
            parts.append(f"for {self.hold.text}")
        return parts

    def describe(self) -> str:
        """The rule's conditions as one line of text, for logs."""
        return "; ".join(self.conditions())


@dataclass
class MachineSpec:
    name: str
    doc: str
    path: str
    reads: tuple[str, ...]
    params: dict[str, Param]
    derive: dict[str, tuple[Expr, str]]
    initial: str
    states: dict[str, State]
    rules: list[Rule]
    # Who else reads this machine's derived values (other machines, the decision table), filled
    # in by load_machine_set; None when unknown (a machine loaded alone, e.g. the risk machine).
    # When nobody does, the machine computes only the derived values its current state reads.
    derived_read_by: tuple[str, ...] | None = None

    def rules_from(self, state: str) -> list[Rule]:
        return [r for r in self.rules if state in r.sources]


@dataclass(frozen=True)
class DecisionRule:
    name: str
    doc: str
    when: Expr
    eligible: bool
    aggressiveness: str
    risk_budget: Expr
    line: int


@dataclass
class DecisionSpec:
    name: str
    doc: str
    path: str
    reads: tuple[str, ...]
    params: dict[str, Param]
    rules: list[DecisionRule]
    invariants: list[Invariant] = field(default_factory=list)  # proven at load (spec/invariants.py)


@dataclass
class MachineSet:
    """The machines in pipeline order, and the decision table that reads them."""

    machines: list[MachineSpec]
    decision: DecisionSpec
    metric_names: tuple[str, ...] = field(default_factory=tuple)

    def machine(self, name: str) -> MachineSpec:
        for m in self.machines:
            if m.name == name:
                return m
        raise KeyError(name)


# --- loading ---------------------------------------------------------------------------

def _reads_any(text: Any, names: set[str]) -> bool:
    """Whether an expression's text names any of ``names`` (as a whole word)."""
    return bool(names) and isinstance(text, str) and any(re.search(rf"\b{re.escape(n)}\b", text) for n in names)


def _params(doc: Document, errors: list[SpecError], overrides: Mapping[str, Any],
            owner: str, origins: Mapping[str, SpecError] | None = None) -> dict[str, Param]:
    """The params of a machine or table, with overrides applied and checked. An override's
    error is reported where it was written (``origins``: param -> its position in a config)."""
    params: dict[str, Param] = {}
    origins = origins or {}

    def at(name: str, keys: tuple, message: str) -> SpecError:
        if name in overrides and name in origins:
            o = origins[name]
            return SpecError(o.path, o.line, o.col, message if message.startswith("override") else f"override {message}")
        return doc.error(keys, message)

    for name, p in (doc.data.get("params") or {}).items():
        if not name.endswith(PARAM_UNIT_SUFFIXES):
            errors.append(doc.error(("params", name), f"param '{name}' does not say its unit; expected a name ending in one of {', '.join(PARAM_UNIT_SUFFIXES)}", key=True))
        value = overrides.get(name, p["value"])
        lo, hi = p.get("min"), p.get("max")
        if isinstance(value, bool) != isinstance(p["value"], bool):
            errors.append(at(name, ("params", name), f"override of {owner}.{name} has type {type(value).__name__}; expected {type(p['value']).__name__}"))
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(at(name, ("params", name, "value"), f"{owner}.{name} = {value} is not finite; expected a finite number"))
        elif not isinstance(value, bool) and name.endswith(NON_NEGATIVE_SUFFIXES) and value < 0:
            errors.append(at(name, ("params", name, "value"), f"{owner}.{name} = {value} is negative; expected 0 or "
                                    "more (a duration, rate or count)"))
        elif not isinstance(value, bool) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            errors.append(at(name, ("params", name, "value"), f"{owner}.{name} = {value} is out of range; expected between {lo} and {hi}"))
        params[name] = Param(value, p["doc"])
    return params


def _inputs_for(reads: Iterable[str], metric_names: Iterable[str], upstream: Mapping[str, MachineSpec],
                doc: Document, errors: list[SpecError], account: bool = False) -> dict[str, InputType]:
    inputs: dict[str, InputType] = {}
    for i, ns in enumerate(reads):
        if ns == "account" and account:
            inputs.update({f"account.{k}": t for k, t in ACCOUNT_INPUTS.items()})
        elif ns == "metrics":
            inputs.update({f"metrics.{m}": InputType(NUM) for m in metric_names})
        elif ns == "risk":
            inputs.update({f"risk.{k}": t for k, t in RISK_INPUTS.items()})
        elif ns in upstream:
            m = upstream[ns]
            inputs[f"{ns}.state"] = InputType(STR, frozenset(m.states))
            for d, (expr, _) in m.derive.items():
                inputs[f"{ns}.{d}"] = expr.type
        else:
            known = ", ".join(["metrics", "account"] if account else ["metrics", "risk", *upstream])
            errors.append(doc.error(("reads", i), f"'{ns}' cannot be read here; expected one of: {known} (a machine must come earlier in the pipeline)"))
    return inputs


def check_machine(doc: Document, metric_names: Iterable[str], upstream: Mapping[str, MachineSpec],
                  overrides: Mapping[str, Any] | None = None,
                  origins: Mapping[str, SpecError] | None = None, account: bool = False) -> MachineSpec:
    """Semantic checks of one schema-valid machine document; raises SpecErrors. ``account``: the
    machine is the risk machine, which reads account.* and no other machine (spec/risk.py)."""
    errors: list[SpecError] = []
    d = doc.data
    name = d["machine"]
    states = {s: State(v["doc"], v.get("terminal", False), v.get("color")) for s, v in d["states"].items()}
    params = _params(doc, errors, overrides or {}, name, origins)
    reads = tuple(d.get("reads") or ())
    inputs = _inputs_for(reads, metric_names, upstream, doc, errors, account)
    env = Env(inputs=inputs, params={k: p.value for k, p in params.items()}, states=frozenset(states), timers=True)

    if d["initial"] not in states:
        errors.append(doc.error(("initial",), f"initial state '{d['initial']}' is not declared; expected one of: {', '.join(states)}"))

    derive: dict[str, tuple[Expr, str]] = {}
    broken: set[str] = set()  # derived values that did not compile: what reads them is not checked
    for dname, dv in (d.get("derive") or {}).items():
        if dname == "state":
            errors.append(doc.error(("derive", dname), "'state' is reserved; expected another name", key=True))
            continue
        if _reads_any(dv["expr"], broken):
            broken.add(dname)
            continue
        try:
            expr = compile_expr(dv["expr"], env)
        except ExprError as exc:
            errors.append(expr_error(doc, ("derive", dname, "expr"), exc, f"derive {dname}"))
            broken.add(dname)
            continue
        derive[dname] = (expr, dv["doc"])
        env.derived[dname] = expr.type  # later derived values may use earlier ones

    rules: list[Rule] = []
    for i, t in enumerate(d["transitions"]):
        keys = ("transitions", i)
        sources = [t["from"]] if isinstance(t["from"], str) else list(t["from"])
        if sources == ["*"]:
            sources = [s for s in states if s != t["to"]]
        bad = False
        for j, s in enumerate(sources):
            if s not in states:
                k = keys + ("from",) if isinstance(t["from"], str) else keys + ("from", j)
                errors.append(doc.error(k, f"unknown state '{s}' in from; expected one of: {', '.join(states)}"))
                bad = True
        if t["to"] not in states:
            errors.append(doc.error(keys + ("to",), f"unknown state '{t['to']}' in to; expected one of: {', '.join(states)}"))
            bad = True
        if t["to"] in sources:
            errors.append(doc.error(keys + ("to",), f"transition from '{t['to']}' to itself; expected a different target state"))
            bad = True
        compiled: dict[str, Expr | None] = {}
        for key, want in (("when", BOOL), ("after", NUM), ("for", NUM)):
            if key not in t:
                compiled[key] = None
                continue
            if _reads_any(t[key], broken):  # its real error is the derived value's, reported above
                bad = True
                continue
            try:
                expr = compile_expr(t[key], env)
            except ExprError as exc:
                errors.append(expr_error(doc, keys + (key,), exc, key))
                bad = True
                continue
            if expr.type.kind != want:
                errors.append(doc.error(keys + (key,), f"{key} is {'a boolean' if expr.type.kind == BOOL else 'a number' if expr.type.kind == NUM else 'a string'}; expected {'a condition' if want == BOOL else 'seconds (a number)'}"))
                bad = True
            if key in ("after", "for") and expr.is_const and expr.type.kind == NUM \
                    and not 0 <= expr.root.const <= MAX_TIMER_S:
                errors.append(doc.error(keys + (key,), f"{key} is {expr.root.const} seconds; expected a "
                                        f"duration of 0 seconds or more, at most {MAX_TIMER_S:g}"))
                bad = True
            compiled[key] = expr
        if "for" in t and "when" not in t:
            errors.append(doc.error(keys + ("for",), "'for' needs a 'when' guard to hold; expected when: together with for:"))
            bad = True
        if not bad:
            rules.append(Rule(i + 1, tuple(sources), t["to"], compiled["when"], compiled["after"],
                              compiled["for"], t.get("doc", ""), doc.where(keys)[0]))

    # Graph checks: every state reachable from the initial one; every non-terminal state has a way out.
    if d["initial"] in states and not errors:
        reachable = {d["initial"]}
        frontier = [d["initial"]]
        while frontier:
            s = frontier.pop()
            for r in rules:
                if s in r.sources and r.dest not in reachable:
                    reachable.add(r.dest)
                    frontier.append(r.dest)
        for s in states:
            if s not in reachable:
                errors.append(doc.error(("states", s), f"state '{s}' is unreachable from '{d['initial']}'; expected a transition leading to it", key=True))
        for s, st in states.items():
            has_exit = any(s in r.sources for r in rules)
            if not has_exit and not st.terminal:
                errors.append(doc.error(("states", s), f"state '{s}' has no way out; expected a transition from it, or terminal: true", key=True))
            if has_exit and st.terminal:
                errors.append(doc.error(("states", s), f"state '{s}' is terminal but has transitions out; expected no transitions from a terminal state", key=True))
    if errors:
        raise SpecErrors(errors)
    return MachineSpec(name, d["doc"], doc.path, reads, params, derive, d["initial"], states, rules)


def check_decision(doc: Document, metric_names: Iterable[str], upstream: Mapping[str, MachineSpec],
                   overrides: Mapping[str, Any] | None = None,
                   origins: Mapping[str, SpecError] | None = None) -> DecisionSpec:
    errors: list[SpecError] = []
    d = doc.data
    params = _params(doc, errors, overrides or {}, d["table"], origins)
    reads = tuple(d.get("reads") or ())
    inputs = _inputs_for(reads, metric_names, upstream, doc, errors)
    env = Env(inputs=inputs, params={k: p.value for k, p in params.items()})
    rules: list[DecisionRule] = []
    names: set[str] = set()
    for i, r in enumerate(d["rules"]):
        keys = ("rules", i)
        if r["name"] in names:
            errors.append(doc.error(keys + ("name",), f"rule name '{r['name']}' is used twice; expected unique rule names"))
        names.add(r["name"])
        try:
            when = compile_expr(r["when"], env)
            if when.type.kind != BOOL:
                errors.append(doc.error(keys + ("when",), "when is not a condition; expected a boolean expression"))
        except ExprError as exc:
            errors.append(expr_error(doc, keys + ("when",), exc, "when"))
            continue
        try:
            budget = compile_expr(r["then"]["risk_budget"], env)
            if budget.type.kind != NUM:
                errors.append(doc.error(keys + ("then", "risk_budget"), "risk_budget is not a number; expected a number between 0 and 1"))
            elif budget.is_const and not 0 <= budget.root.const <= 1:
                errors.append(doc.error(keys + ("then", "risk_budget"), f"risk_budget {budget.root.const} is out of range; expected between 0 and 1"))
        except ExprError as exc:
            errors.append(expr_error(doc, keys + ("then", "risk_budget"), exc, "risk_budget"))
            continue
        then = r["then"]
        if not then["eligible"] and then["aggressiveness"] != "none":
            errors.append(doc.error(keys + ("then", "aggressiveness"), "an ineligible outcome allows orders; expected aggressiveness: none when eligible is false"))
        rules.append(DecisionRule(r["name"], r["doc"], when, then["eligible"], then["aggressiveness"], budget, doc.where(keys)[0]))
    if rules and not (rules[-1].when.is_const and rules[-1].when.root.const is True):
        errors.append(doc.error(("rules", len(d["rules"]) - 1, "when"), "the last rule is not a catch-all; expected the last rule to have when: true so every situation has a decision"))
    for i, r in enumerate(rules[:-1]):
        if r.when.is_const and r.when.root.const is True:
            errors.append(doc.error(("rules", i, "when"), f"rule '{r.name}' always matches, so the rules after it never apply; expected it last"))
    invariants = compile_invariants(doc, inputs, env.params, names, errors)
    if errors:
        raise SpecErrors(errors)
    spec = DecisionSpec(d["table"], d["doc"], doc.path, reads, params, rules, invariants)
    try:
        errors.extend(c.error() for c in prove(spec, inputs))
    except ValueError as exc:
        errors.append(doc.error(("invariants",), f"the invariants cannot be proven exhaustively: {exc}", key=True))
    if errors:
        raise SpecErrors(errors)
    return spec


def _pipeline_order(docs: dict[str, Document], errors: list[SpecError]) -> list[str]:
    """Machines sorted so that each comes after everything it reads (file order breaks ties)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, chain: list[str]) -> None:
        if name in order:
            return
        if name in visiting:
            doc = docs[name]
            errors.append(doc.error(("reads",), f"machines read each other in a cycle ({' -> '.join([*chain, name])}); expected data to flow one way"))
            return
        visiting.add(name)
        for dep in docs[name].data.get("reads") or ():
            if dep in docs:
                visit(dep, [*chain, name])
        visiting.discard(name)
        order.append(name)

    for name in docs:
        visit(name, [])
    return order


def _load(path: str | Path, texts: Mapping[str, str] | None) -> Document:
    """A spec file from ``texts`` (text already read, keyed by path) or else from disk."""
    if texts is not None and str(path) in texts:
        return _parse_once(texts[str(path)], str(path))
    return load_yaml(path)


@functools.lru_cache(maxsize=64)
def _parse_once(text: str, path: str) -> Document:
    """A session reads each machine file for its params, then once per machine set (one per
    symbol with its own overrides): parse the same text once. Documents are never modified."""
    return parse_yaml(text, path)


def _reads_broken(doc: Document, broken: Mapping[str, str], errors: list[SpecError]) -> bool:
    """True (and one subordinate error) when ``doc`` reads a machine that failed to load.

    Checking it anyway would report every use of that machine as unknown, in other files, and
    bury the one real error; so the reader is left unchecked until the machine it reads loads."""
    for i, ns in enumerate(doc.data.get("reads") or ()):
        if ns in broken:
            line, col = doc.where(("reads", i))
            errors.append(SpecError(doc.path, line, col, f"not checked further: it reads '{ns}' ({broken[ns]}), "
                                    "which did not load (see the errors above); expected those fixed first",
                                    consequence=True))
            return True
    return False


def load_machine_set(machine_paths: Iterable[str | Path], decision_path: str | Path,
                     metric_names: Iterable[str], overrides: Mapping[str, Mapping[str, Any]] | None = None,
                     texts: Mapping[str, str] | None = None,
                     origins: Mapping[str, Mapping[str, SpecError]] | None = None) -> MachineSet:
    """Load, validate and compile every machine and the decision table, reporting all errors.

    ``overrides`` maps machine (or table) name to {param: value}; unknown names must have been
    reported by the caller, which knows where in the session config they were written.
    ``texts`` holds file contents already read, by path (a session reads each file once);
    ``origins`` where each override was written ({machine: {param: position}}), for its errors.
    """
    overrides = overrides or {}
    origins = origins or {}
    metric_names = tuple(metric_names)
    errors: list[SpecError] = []
    docs: dict[str, Document] = {}
    broken: dict[str, str] = {}  # machine name -> its file, for machines that failed to load
    for path in machine_paths:
        try:
            doc = _load(path, texts)
        except SpecErrors as exc:
            errors.extend(exc.errors)
            broken[Path(path).stem] = str(path)
            continue
        errs = schema.check(doc, "machine")
        if errs:
            errors.extend(errs)
            name = doc.data.get("machine") if isinstance(doc.data, dict) else None
            broken[name if isinstance(name, str) else Path(path).stem] = str(path)
            continue
        name = doc.data["machine"]
        if name in docs:
            errors.append(doc.error(("machine",), f"machine name '{name}' is also used by {docs[name].path}; expected unique names"))
            continue
        if name in ("metrics", "risk", "params", "derived", "decision"):
            errors.append(doc.error(("machine",), f"'{name}' is a reserved namespace; expected another machine name"))
            continue
        docs[name] = doc
    specs: dict[str, MachineSpec] = {}
    for name in _pipeline_order(docs, errors):
        if _reads_broken(docs[name], broken, errors):
            broken[name] = docs[name].path
            continue
        try:
            specs[name] = check_machine(docs[name], metric_names, specs, overrides.get(name), origins.get(name))
        except SpecErrors as exc:
            errors.extend(exc.errors)
            broken[name] = docs[name].path
    decision = None
    try:
        ddoc = _load(decision_path, texts)
        errs = schema.check(ddoc, "decision")
        if errs:
            errors.extend(errs)
        elif not _reads_broken(ddoc, broken, errors):
            table = ddoc.data["table"]
            decision = check_decision(ddoc, metric_names, specs, overrides.get(table), origins.get(table))
    except SpecErrors as exc:
        errors.extend(exc.errors)
    if errors:
        raise SpecErrors(errors)
    _note_derived_readers(list(specs.values()), decision)
    return MachineSet(list(specs.values()), decision, metric_names)


def _note_derived_readers(machines: list[MachineSpec], decision: DecisionSpec) -> None:
    """Set each machine's ``derived_read_by``: the machines and the table reading its derived values."""
    readers: list[tuple[str, list[Expr]]] = []
    for m in machines:
        exprs = [e for r in m.rules for e in (r.when, r.after, r.hold) if e is not None]
        readers.append((m.name, exprs + [e for e, _ in m.derive.values()]))
    exprs = [e for r in decision.rules for e in (r.when, r.risk_budget)]
    exprs += [e for inv in decision.invariants for e in (inv.when, inv.holds) if e is not None]
    readers.append((decision.name, exprs))
    for m in machines:
        names = {f"{m.name}.{d}" for d in m.derive}
        m.derived_read_by = tuple(who for who, exprs in readers
                                  if who != m.name and any(n in names for e in exprs for n in e.reads))


def param_catalogue(machine_paths: Iterable[str | Path], decision_path: str | Path,
                    texts: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """{machine: {param: default}} read straight from the files (for checking overrides)."""
    out: dict[str, dict[str, Any]] = {}
    for path in [*machine_paths, decision_path]:
        try:
            doc = _load(path, texts)
        except SpecErrors:
            continue
        if not isinstance(doc.data, dict):
            continue
        name = doc.data.get("machine") or doc.data.get("table")
        params = doc.data.get("params") or {}
        if isinstance(name, str) and isinstance(params, dict):
            out[name] = {k: (v.get("value") if isinstance(v, dict) else None) for k, v in params.items()}
    return out
