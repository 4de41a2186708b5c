"""The risk machine (``machines/risk.yaml``): a machine like the others, with a role.

It has the machine schema, the machine checks, and runs on the same runtime and screens as the
other machines; what makes it the risk machine is where its inputs come from and what is read
from it (docs/machines.md#the-risk-machine):

- It reads ``metrics`` and ``account`` (the paper account's PnL, drawdown, position and order
  count; ``spec.machines.ACCOUNT_INPUTS``), never another machine: it runs before them.
- Each boolean derived value is a *guard*, a comparison ``VALUE op LIMIT``. A guard's flips are
  the risk alerts (``guard``, ``trip``/``clear``, the two sides as ``value`` and ``limit``); the
  guard ``stale_data`` is published as ``risk.stale``.
- The state ``TRIPPED`` is the kill switch (``risk.kill_switch``); the guards whose param
  ``kill_on_<guard>_enabled`` is true are the reasons it names when it trips.
- The session's ``risk:`` section sets its params (``risk_overrides``); the file's values are
  the section's defaults.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import schema
from .errors import SpecError, SpecErrors
from .expr import BOOL, NUM, Env, Expr, ExprError, InputType, compile_expr
from .loader import Document, load_yaml, parse_yaml
from .machines import ACCOUNT_INPUTS, MachineSpec, check_machine

RISK_MACHINE = "risk"
TRIPPED = "TRIPPED"  # the kill switch's state
STALE_GUARD = "stale_data"  # published as risk.stale
RISK_READS = ("metrics", "account")
# The guards a session's risk.kill_switch_on may name (its schema's list); a guard added to the
# file kills or not by its own kill_on_<guard>_enabled param.
SECTION_GUARDS = ("loss_limit", "max_drawdown", "max_position_notional", "order_rate", "stale_data")


@dataclass(frozen=True)
class Guard:
    """One risk guard: the derived value ``name`` and the two sides of its comparison."""

    name: str
    value: Expr
    limit: Expr


@dataclass
class RiskMachine:
    spec: MachineSpec
    guards: tuple[Guard, ...]  # in file order: the order of alerts and of ``risk.tripped``
    kill_on: frozenset[str]  # the guards named to trip the kill switch
    latch: str  # how the kill switch clears: "session", or "<N>s clear"

    def reads_metric(self) -> tuple[str, ...]:
        """The metrics the machine reads (the stale guard's among them)."""
        names = [n for e, _ in self.spec.derive.values() for n in e.reads]
        names += [n for r in self.spec.rules for n in r.reads]
        return tuple(dict.fromkeys(n[8:] for n in names if n.startswith("metrics.")))


def risk_overrides(section: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The risk machine's params set by a session's ``risk:`` section (only the keys it gives).

    ``params`` are the machine file's params (names to defaults): ``kill_switch_on`` enables
    ``kill_on_<guard>_enabled`` for the guards it lists and disables the others it could list."""
    out: dict[str, Any] = {}
    for key in ("loss_limit_usd", "max_drawdown_usd", "max_position_notional_usd", "stale_quote_ms"):
        if key in section and key in params:
            out[key] = section[key]
    if "max_orders" in section and "max_orders_count" in params:
        out["max_orders_count"] = section["max_orders"]
    if "kill_switch_on" in section:
        kill_on = set(section["kill_switch_on"])
        for g in SECTION_GUARDS:
            if f"kill_on_{g}_enabled" in params:
                out[f"kill_on_{g}_enabled"] = g in kill_on
    if "kill_switch_reset_s" in section and "kill_switch_resets_enabled" in params:
        reset = section["kill_switch_reset_s"]
        out["kill_switch_resets_enabled"] = reset is not None
        if reset is not None:
            out["kill_switch_reset_s"] = reset
    return out


def load_risk_machine(path: str | Path, metric_names: tuple[str, ...], section: Mapping[str, Any] | None = None,
                      text: str | None = None) -> RiskMachine:
    """Load and check the risk machine with the params a ``risk:`` section sets; raises SpecErrors."""
    doc = parse_yaml(text, str(path)) if text is not None else load_yaml(path)
    errors = schema.check(doc, "machine")
    if errors:
        raise SpecErrors(errors)
    return check_risk_machine(doc, metric_names, section or {})


def check_risk_machine(doc: Document, metric_names: tuple[str, ...], section: Mapping[str, Any]) -> RiskMachine:
    d = doc.data
    errors: list[SpecError] = []
    if d["machine"] != RISK_MACHINE:
        errors.append(doc.error(("machine",), f"the risk machine is named '{d['machine']}'; expected machine: {RISK_MACHINE}"))
    for i, ns in enumerate(d.get("reads") or ()):
        if ns not in RISK_READS:
            errors.append(doc.error(("reads", i), f"the risk machine cannot read '{ns}' (it runs before every other "
                                    f"machine); expected one of: {', '.join(RISK_READS)}"))
    if errors:
        raise SpecErrors(errors)
    params = {k: (v.get("value") if isinstance(v, dict) else None) for k, v in (d.get("params") or {}).items()}
    spec = check_machine(doc, metric_names, {}, risk_overrides(section, params), account=True)
    if TRIPPED not in spec.states:
        errors.append(doc.error(("states",), f"the risk machine has no state {TRIPPED}; expected the kill switch's state "
                                f"{TRIPPED}"))
    elif spec.initial == TRIPPED:
        errors.append(doc.error(("initial",), f"the kill switch starts {TRIPPED}; expected another initial state"))
    env = Env(inputs={**{f"metrics.{m}": InputType(NUM) for m in metric_names},
                      **{f"account.{k}": t for k, t in ACCOUNT_INPUTS.items()}},
              params={k: p.value for k, p in spec.params.items()},
              derived={n: e.type for n, (e, _) in spec.derive.items()}, states=frozenset(spec.states), timers=True)
    guards = []
    for name, (expr, _) in spec.derive.items():
        if expr.type.kind != BOOL:
            continue
        sides = _sides(expr.text, env)
        if sides is None:
            errors.append(doc.error(("derive", name, "expr"), f"guard {name} is not one comparison; expected "
                                    "VALUE op LIMIT (its alerts record both sides)"))
            continue
        guards.append(Guard(name, *sides))
    if STALE_GUARD not in {g.name for g in guards} and not errors:
        errors.append(doc.error(("derive",), f"the risk machine has no guard {STALE_GUARD}; expected a guard "
                                "comparing the quote age metric with its limit (published as risk.stale)", key=True))
    if errors:
        raise SpecErrors(errors)
    kill_on = frozenset(g.name for g in guards if spec.params.get(f"kill_on_{g.name}_enabled", None) is not None
                        and spec.params[f"kill_on_{g.name}_enabled"].value is True)
    return RiskMachine(spec, tuple(guards), kill_on, _latch(spec))


def _sides(text: str, env: Env) -> tuple[Expr, Expr] | None:
    """The two sides of ``text`` when it is one comparison (not ``in``), compiled; else None."""
    body = ast.parse(text, mode="eval").body
    if not isinstance(body, ast.Compare) or len(body.ops) != 1 or isinstance(body.ops[0], (ast.In, ast.NotIn)):
        return None
    try:
        return (compile_expr(ast.get_source_segment(text, body.left), env),
                compile_expr(ast.get_source_segment(text, body.comparators[0]), env))
    except ExprError:  # pragma: no cover - the whole expression compiled, so its sides do
        return None


def _latch(spec: MachineSpec) -> str:
    """How the kill switch clears, for its trip alert: "session" when no rule out of TRIPPED can
    ever fire, else the hold of the first one that can ("5s clear")."""
    for rule in spec.rules_from(TRIPPED) if TRIPPED in spec.states else ():
        if rule.when is not None and rule.when.is_const and rule.when.root.const is False:
            continue
        if rule.hold is not None and rule.hold.is_const:
            return f"{rule.hold.root.const:g}s clear"
        return rule.describe()
    return "session"
