"""Declared invariants of the decision table, and their exhaustive proof.

``invariants:`` in the decision table states properties over the layers' states, the risk
flags and the decision, in the expression language::

    invariants:
      - name: take_only_when_allowed_and_green
        doc: Liquidity is taken only with full permission and GREEN health.
        when: decision.aggressiveness == 'take'          # the premise (optional)
        holds: permission.state == 'ALLOWED' and health.state == 'GREEN'

``when: A`` + ``holds: B`` reads "A implies B" (the same as ``holds: not A or B``). Invariants
read what the table reads (``regime.state``, ``risk.kill_switch``, ...) plus the outcome:
``decision.eligible``, ``decision.aggressiveness``, ``decision.risk_budget``, ``decision.rule``.

``prove`` runs the table on every combination of the values its rules and the invariants read:
every state of every machine, both values of every flag, and for a number the boundary values of
every constant it is compared with (just below, at and above it) plus 0, ±inf and NaN. With
numbers compared only with constants (the usual case) this covers every outcome the table can
produce, so a pass is a proof. The first combination that breaks an invariant is reported as a
counterexample at the invariant's line, naming the rule (and its line) that decided.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import SpecError
from .expr import BOOL, NUM, STR, Binding, Env, Expr, ExprError, InputType, compile_expr
from .loader import Document, expr_error

if TYPE_CHECKING:
    from .machines import DecisionRule, DecisionSpec

AGGRESSIVENESS = ("none", "passive", "take")
MAX_COMBINATIONS = 200_000  # a proof larger than this is refused rather than left running


@dataclass(frozen=True)
class Invariant:
    name: str
    doc: str
    when: Expr | None  # the premise; None = always
    holds: Expr
    path: str
    line: int
    col: int = 0

    @property
    def text(self) -> str:
        if self.when is None:
            return self.holds.text
        return f"{self.when.text} implies {self.holds.text}"

    @property
    def reads(self) -> tuple[str, ...]:
        exprs = [e for e in (self.when, self.holds) if e is not None]
        return tuple(dict.fromkeys(n for e in exprs for n in e.reads))


def decision_outputs(rule_names: Iterable[str]) -> dict[str, InputType]:
    """What an invariant may read of the decision itself."""
    return {"decision.eligible": InputType(BOOL),
            "decision.aggressiveness": InputType(STR, frozenset(AGGRESSIVENESS)),
            "decision.risk_budget": InputType(NUM),
            "decision.rule": InputType(STR, frozenset(rule_names))}


def compile_invariants(doc: Document, inputs: Mapping[str, InputType], params: Mapping[str, Any],
                       rule_names: Iterable[str], errors: list[SpecError]) -> list[Invariant]:
    """The ``invariants:`` of a schema-valid decision document (errors appended, not raised)."""
    env = Env(inputs={**inputs, **decision_outputs(rule_names)}, params=dict(params))
    out: list[Invariant] = []
    names: set[str] = set()
    for i, item in enumerate(doc.data.get("invariants") or []):
        keys = ("invariants", i)
        if item["name"] in names:
            errors.append(doc.error(keys + ("name",), f"invariant name '{item['name']}' is used twice; expected unique names"))
        names.add(item["name"])
        compiled: dict[str, Expr | None] = {"when": None}
        for key in ("when", "holds"):
            if key not in item:
                continue
            try:
                expr = compile_expr(item[key], env)
            except ExprError as exc:
                errors.append(expr_error(doc, keys + (key,), exc, f"invariant {item['name']} {key}"))
                continue
            if expr.type.kind != BOOL:
                errors.append(doc.error(keys + (key,), f"{key} is not a condition; expected a boolean expression"))
                continue
            compiled[key] = expr
        if compiled.get("holds") is not None and (compiled["when"] is not None or "when" not in item):
            out.append(Invariant(item["name"], item["doc"], compiled["when"], compiled["holds"],  # type: ignore[arg-type]
                                 doc.path, *doc.where(keys)))
    return out


# --- evaluating the table --------------------------------------------------------------------


def decide(bound_rules: list[tuple[DecisionRule, Any, Any]], out: dict[str, Any]) -> DecisionRule:
    """First match wins, the budget clipped to [0, 1] (NaN means no risk), as at run time."""
    for rule, when, budget in bound_rules:
        if when():
            b = budget()
            b = 0.0 if b != b else min(max(float(b), 0.0), 1.0)
            out.update(eligible=rule.eligible, aggressiveness=rule.aggressiveness, risk_budget=b, rule=rule.name)
            return rule
    raise AssertionError("the decision table's last rule is a checked catch-all")


def _constants_compared_with(exprs: Iterable[Expr], name: str) -> set[float]:
    """Numbers an input is compared with anywhere in ``exprs`` (the checked tree has params and
    constant parts folded into constants)."""
    ns, key = name.split(".", 1) if "." in name else ("derived", name)
    found: set[float] = set()

    def visit(n: Any) -> None:
        if n.kind == "cmp":
            for x, y in (n.kids, n.kids[::-1]):
                if x.kind == "input" and x.lookup == (ns, key) and y.is_const \
                        and isinstance(y.const, (int, float)) and not isinstance(y.const, bool):
                    found.add(float(y.const))
        for kid in n.kids:
            visit(kid)

    for e in exprs:
        visit(e.root)
    return found


def _domain(name: str, t: InputType, exprs: list[Expr]) -> list[Any]:
    if t.kind == BOOL:
        return [False, True]
    if t.kind == STR:
        return sorted(t.values or ())
    values = {0.0, -math.inf, math.inf}
    for c in _constants_compared_with(exprs, name):
        values |= {c, math.nextafter(c, -math.inf), math.nextafter(c, math.inf)}
    return [math.nan, *sorted(values)]


@dataclass(frozen=True)
class Counterexample:
    invariant: Invariant
    inputs: dict[str, Any]
    decision: dict[str, Any]
    rule: DecisionRule

    def error(self) -> SpecError:
        def fmt(v: Any) -> str:
            # repr: the shortest text that reads back as the same float (just above 0.25 is not 0.25)
            return ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)

        seen = ", ".join(f"{k.removesuffix('.state')}={fmt(v)}" for k, v in self.inputs.items())
        out = ", ".join(f"{k}={fmt(self.decision[k])}" for k in ("eligible", "aggressiveness", "risk_budget"))
        return SpecError(self.invariant.path, self.invariant.line, self.invariant.col,
                         f"invariant '{self.invariant.name}' does not hold: with {seen}, rule '{self.rule.name}' "
                         f"(line {self.rule.line}) decides {out}; expected {self.invariant.text}")


def prove(decision: DecisionSpec, types: Mapping[str, InputType]) -> list[Counterexample]:
    """The first counterexample of each invariant over every combination the table can see.

    ``types`` are the inputs the table may read (as declared by its ``reads:``)."""
    invariants = list(decision.invariants)
    if not invariants:
        return []
    exprs = [e for r in decision.rules for e in (r.when, r.risk_budget)]
    exprs += [e for inv in invariants for e in (inv.when, inv.holds) if e is not None]
    read = [n for n in dict.fromkeys(n for e in exprs for n in e.reads) if not n.startswith("decision.")]
    domains = [(n, _domain(n, types[n], exprs)) for n in read]
    total = math.prod(len(d) for _, d in domains)
    if total > MAX_COMBINATIONS:
        raise ValueError(f"{total} combinations of {', '.join(read)}; expected at most {MAX_COMBINATIONS}")

    namespaces: dict[str, dict[str, Any]] = {"decision": {}}
    for n in read:
        namespaces.setdefault(n.split(".", 1)[0], {})
    binding = Binding(namespaces)
    rules = [(r, r.when.bind(binding), r.risk_budget.bind(binding)) for r in decision.rules]
    checks = [(inv, inv.when.bind(binding) if inv.when is not None else None, inv.holds.bind(binding))
              for inv in invariants]
    found: dict[str, Counterexample] = {}
    for combo in itertools.product(*(d for _, d in domains)):
        for (n, _), v in zip(domains, combo, strict=True):
            ns, key = n.split(".", 1)
            namespaces[ns][key] = v
        rule = decide(rules, namespaces["decision"])
        for inv, when, holds in checks:
            if inv.name in found or (when is not None and not when()) or holds():
                continue
            found[inv.name] = Counterexample(inv, dict(zip(read, combo, strict=True)), dict(namespaces["decision"]), rule)
        if len(found) == len(checks):
            break
    return [found[inv.name] for inv in invariants if inv.name in found]
