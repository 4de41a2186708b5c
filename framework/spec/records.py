"""The audit log's records, declared once: every kind, its fields, who writes it, and a
constructor for each record a writer builds.

The writers (machines, execution, runtime) build every record through the constructors below;
the readers validate a log against :func:`log_schema`, generated from the same declarations
(``framework/spec/schemas/log.schema.json`` is that schema written out, for editors and other
tools; a test keeps it current). Nothing here imports the rest of the package, so every layer
can use it without an import against the data flow.

A constructor builds its dict in the declared field order; the log writes keys sorted
(``runtime/auditlog.py``), so the bytes of a line depend only on its keys and values. A field a
reader may rely on is ``required``; the others are written by the constructors but a log
without them (a hand-made or older one) is still valid. A change that removes or redefines a
field bumps ``LOG_VERSION``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_VERSION = 1

# -- value schemas used by several fields ---------------------------------------------------------
NAME = {"type": "string", "minLength": 1}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
NUMBER_OR_NULL = {"type": ["number", "null"]}
SCALAR = {"type": ["string", "number", "boolean", "null"]}
SIDE = {"enum": ["buy", "sell"]}
STYLE = {"enum": ["take", "passive"]}
STATES = {"type": "object",
          "description": "the layer states at that moment: regime, permission, health (and any extra machine)",
          "additionalProperties": {"type": ["string", "null"]}}
DECISION_OUT = {"type": "object", "properties": {
    "eligible": {"type": "boolean"},
    "aggressiveness": {"enum": ["none", "passive", "take"]},
    "risk_budget": {"type": "number", "minimum": 0, "maximum": 1},
    "rule": {"type": "string"},
}}
ANY: dict[str, Any] = {}  # any JSON value (numbers a guard reads may be written as "inf" strings)


@dataclass(frozen=True)
class Field:
    name: str
    schema: Mapping[str, Any]
    required: bool = False  # readers may rely on it; the schema requires it
    written: bool = True  # False: accepted from older writers, written by no constructor


@dataclass(frozen=True)
class RecordType:
    kind: str
    fields: tuple[Field, ...]  # after ts_ns, symbol, kind; the order constructors write them in
    rules: Mapping[str, Any] = field(default_factory=dict)  # schema keywords across fields
    doc: str = ""

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def _f(name: str, schema: Mapping[str, Any] = ANY, required: bool = False, written: bool = True) -> Field:
    return Field(name, schema, required, written)


COMMON = (_f("ts_ns", {"type": "integer", "minimum": 0, "description": "event time, ns since the epoch"}, True),
          _f("symbol", {"type": "string", "description": "'' when the record is not about one symbol"}, True),
          _f("kind", ANY, True),
          _f("seq", {"type": "integer", "minimum": 0, "description": "0-based line number"}, True))

TYPES: tuple[RecordType, ...] = (
    RecordType("session_start", (
        _f("log_version", {"const": LOG_VERSION}, True),
        _f("session", NAME, True),
        _f("config_hash", HEX64, True),
        _f("symbols", {"type": "array", "items": {"type": "string"}, "minItems": 1}, True),
        _f("source", {"type": "object", "description": "input identity: path, sha256, format, ..."}, True),
        _f("initial", {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}}}, True),
        _f("decision", {"type": "object", "additionalProperties": DECISION_OUT}, True),
    )),
    RecordType("transition", (
        _f("machine", NAME, True),
        _f("from", NAME, True),
        _f("to", NAME, True),
        _f("rule", {"type": "integer", "minimum": 1}, True),
        _f("guard", {"type": "string"}, True),
        _f("inputs", {"type": "object", "additionalProperties": SCALAR}, True),
        _f("params", {"type": "object", "additionalProperties": SCALAR}, True),
    )),
    RecordType("decision", (
        _f("eligible", {"type": "boolean"}, True),
        _f("aggressiveness", {"enum": ["none", "passive", "take"]}, True),
        _f("risk_budget", {"type": "number", "minimum": 0, "maximum": 1}, True),
        _f("rule", {"type": "string"}, True),
        _f("states", STATES),
    )),
    RecordType("intent", (
        _f("intent_id", {"type": "string"}, True),
        _f("side", SIDE, True),
        _f("notional_usd", {"type": "number", "minimum": 0}, True),
        _f("style", STYLE, True),
        _f("states", STATES),
        _f("decision", DECISION_OUT),
    )),
    RecordType("reject", (
        _f("order_id", {"type": "string"}),
        _f("intent_id", {"type": "string"}),
        _f("stage", {"enum": ["decision", "risk", "exchange"]}),
        _f("rule", {"type": "string"}),
        _f("reason", {"type": "string"}, True),
        _f("states", STATES),
        _f("decision", DECISION_OUT),
        _f("arrival_bid"), _f("arrival_ask"), _f("limit_price"), _f("latency_ms"),
        _f("filter", {"type": "string", "description": "the exchange filter that refused the order (filter_failure)"}),
        _f("detail", {"type": "string"}),
    ), {
        "anyOf": [{"required": ["intent_id"]}, {"required": ["order_id"]}],
        "if": {"properties": {"stage": {"enum": ["decision", "risk"]}}, "required": ["stage"]},
        "then": {"required": ["intent_id", "rule"]},
    }, "An intent refused before it became an order (stage decision or risk), or an order the exchange "
       "refused (stage exchange, with order_id)."),
    RecordType("order", (
        _f("order_id", {"type": "string"}, True),
        _f("intent_id", {"type": "string"}),
        _f("side", SIDE, True),
        _f("qty", {"type": "number", "minimum": 0}, True),
        _f("notional_usd"),
        _f("style", STYLE, True),
        _f("limit_price", NUMBER_OR_NULL),
        _f("ttl_s"), _f("decision_mid"), _f("decision_bid"), _f("decision_ask"),
        _f("labels", STATES),
        _f("qty_requested", {"type": "number", "minimum": 0, "description": "notional / decision mid, before the lot rounding"}),
        _f("rules", {"type": ["string", "null"], "description": "where the exchange rules come from; null when off"}),
    )),
    RecordType("ack", (
        _f("order_id", {"type": "string"}, True),
        _f("arrival_bid"), _f("arrival_ask"), _f("arrival_bid_qty"), _f("arrival_ask_qty"), _f("arrival_mid"),
        _f("latency_ms", NUMBER_OR_NULL),
        _f("ack_latency_ms"), _f("ack_ts_ns"), _f("placement"), _f("queue_ahead"),
    )),
    RecordType("fill", (
        _f("order_id", {"type": "string"}, True),
        _f("side", SIDE, True),
        _f("price", {"type": "number"}, True),
        _f("qty", {"type": "number", "exclusiveMinimum": 0}, True),
        _f("how", {"type": "string"}),
        _f("liquidity", {"enum": ["maker", "taker"]}),
        _f("fee_usd"), _f("queue_at_placement"), _f("queue_at_fill"), _f("filled_qty"), _f("remaining_qty"),
        _f("done"), _f("plausible"), _f("position"),
        _f("mid", NUMBER_OR_NULL),
        _f("model", {"enum": ["book", "top"], "description": "book: a taker against the local L2 book; top: the top-of-book models"}),
    )),
    RecordType("cancel", (
        _f("order_id", {"type": "string"}, True),
        _f("reason", {"type": "string"}, True),
        _f("requested_ts_ns"), _f("filled_qty"), _f("remaining_qty"), _f("queue_ahead"),
        _f("mid", NUMBER_OR_NULL),
    )),
    RecordType("order_result", (
        _f("order_id", {"type": "string"}, True),
        _f("intent_id"), _f("side"), _f("style"),
        _f("labels", STATES),
        _f("status", {"enum": ["filled", "cancelled", "rejected"]}, True),
        _f("reason"), _f("qty"), _f("filled_qty"),
        _f("fill_ratio", NUMBER_OR_NULL),
        _f("avg_fill_price"), _f("fees_usd"), _f("n_fills"), _f("filled_qty_by_how"), _f("decision_mid"),
        _f("arrival_mid"), _f("latency_ms"), _f("arrival_to_first_fill_ms"), _f("time_to_first_fill_ms"),
        _f("time_to_fill_ms"), _f("slippage_decision_bps"), _f("slippage_arrival_bps"),
        _f("markout_bps", {"type": "object", "additionalProperties": NUMBER_OR_NULL}),
        _f("markout_unresolved_fills"), _f("placement"), _f("queue_at_placement"),
        _f("passive_fills_plausible"), _f("passive_fills_implausible"),
        _f("fill_markouts_bps", {"type": "array", "description": "per fill, its markout at each horizon (ascending)"}),
        _f("queue_models", {"type": ["array", "null"], "description": "per queue model, the acting one first (shadow models only)"}),
    )),
    RecordType("alert", (
        _f("source", {"enum": ["risk", "invariant"]}),
        _f("guard", NAME, True),
        _f("state", {"enum": ["trip", "clear"]}),
        _f("tripped", {"type": "boolean"}, written=False),
        _f("value"), _f("limit"),  # a risk guard
        _f("reasons"), _f("latch"), _f("reason"),  # the kill switch
        _f("invariant"), _f("where"), _f("inputs"),  # an invariant
    ), {"anyOf": [{"required": ["tripped"]}, {"required": ["state"]}]},
        "A risk guard or the kill switch tripped or cleared, or a decision-table invariant started or stopped "
        "failing."),
    RecordType("feed", (
        _f("event", {"enum": ["connect", "disconnect", "reconnect", "gap", "stall", "malformed", "quarantined",
                              "server_shutdown", "rollover", "end",
                              "book_gap", "book_sync", "book_stale"]}, True),
        _f("detail", {"type": ["string", "null"]}),
        _f("gap_ms", NUMBER_OR_NULL),
    )),
    RecordType("metrics", (
        _f("values", {"type": "object", "additionalProperties": SCALAR}, True),
        _f("states", STATES),
    )),
    RecordType("config_reload", (
        _f("accepted", {"type": "boolean"}, True),
        _f("config_hash", {"type": ["string", "null"]}),
        _f("previous_hash"),
        _f("errors", {"type": "array", "items": {"type": "string"}}),
    )),
    RecordType("session_end", (
        _f("events", {"type": "integer", "minimum": 0}, True),
        _f("end_reason"),
        _f("digest", HEX64, True),
        _f("transitions"),
        _f("summary", {"type": "object"}, written=False),
    )),
)
BY_KIND: dict[str, RecordType] = {t.kind: t for t in TYPES}


# -- constructors, one per record a writer builds; the layer is the package that calls it --------
@dataclass(frozen=True)
class Writer:
    kind: str
    layer: str
    build: Callable[..., dict[str, Any]]


WRITERS: dict[str, Writer] = {}


def _writer(kind: str, layer: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    def register(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        WRITERS[fn.__name__] = Writer(kind, layer, fn)
        return fn  # the plain function: no cost per call
    return register


@_writer("session_start", "runtime")
def session_start(ts_ns: int, *, session: str, config_hash: str, symbols: list[str], source: dict,
                  initial: dict, decision: dict) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": "", "kind": "session_start", "log_version": LOG_VERSION, "session": session,
            "config_hash": config_hash, "symbols": symbols, "source": source, "initial": initial,
            "decision": decision}


@_writer("transition", "machines")
def transition(ts_ns: int, symbol: str, *, machine: str, from_: str, to: str, rule: int, guard: str,
               inputs: dict, params: dict) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "transition", "machine": machine, "from": from_, "to": to,
            "rule": rule, "guard": guard, "inputs": inputs, "params": params}


@_writer("decision", "runtime")
def decision(ts_ns: int, symbol: str, *, eligible: bool, aggressiveness: str, risk_budget: float, rule: str,
             states: dict) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "decision", "eligible": eligible,
            "aggressiveness": aggressiveness, "risk_budget": risk_budget, "rule": rule, "states": states}


@_writer("intent", "runtime")
def intent(ts_ns: int, symbol: str, *, intent_id: str, side: str, notional_usd: float, style: str, states: dict,
           decision: dict) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "intent", "intent_id": intent_id, "side": side,
            "notional_usd": notional_usd, "style": style, "states": states, "decision": decision}


@_writer("reject", "runtime")
def intent_reject(ts_ns: int, symbol: str, *, intent_id: str, stage: str, rule: str, reason: str, states: dict,
                  decision: dict) -> dict[str, Any]:
    """An intent refused by the decision (its rule) or by a risk guard (the guard's name)."""
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "reject", "intent_id": intent_id, "stage": stage,
            "rule": rule, "reason": reason, "states": states, "decision": decision}


@_writer("reject", "execution")
def order_reject(ts_ns: int, symbol: str, *, order_id: str, intent_id: str, reason: str) -> dict[str, Any]:
    """An order the paper exchange refused; one judged against a quote adds ``arrival_*``
    (:func:`order_reject_at`), one refused by an exchange filter names it (:func:`order_reject_filter`)."""
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "reject", "order_id": order_id, "intent_id": intent_id,
            "stage": "exchange", "reason": reason}


@_writer("reject", "execution")
def order_reject_filter(ts_ns: int, symbol: str, *, order_id: str, intent_id: str, filter: str,
                        detail: str) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "reject", "order_id": order_id, "intent_id": intent_id,
            "stage": "exchange", "reason": "filter_failure", "filter": filter, "detail": detail}


@_writer("reject", "execution")
def order_reject_at(ts_ns: int, symbol: str, *, order_id: str, intent_id: str, reason: str, arrival_bid: float,
                    arrival_ask: float, limit_price: float | None, latency_ms: float | None) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "reject", "order_id": order_id, "intent_id": intent_id,
            "stage": "exchange", "reason": reason, "arrival_bid": arrival_bid, "arrival_ask": arrival_ask,
            "limit_price": limit_price, "latency_ms": latency_ms}


@_writer("order", "execution")
def order(ts_ns: int, symbol: str, *, order_id: str, intent_id: str, side: str, qty: float, notional_usd: float,
          style: str, limit_price: float | None, ttl_s: float | None, decision_mid: float | None,
          decision_bid: float | None, decision_ask: float | None, labels: dict, qty_requested: float,
          rules: str | None) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "order", "order_id": order_id, "intent_id": intent_id,
            "side": side, "qty": qty, "notional_usd": notional_usd, "style": style, "limit_price": limit_price,
            "ttl_s": ttl_s, "decision_mid": decision_mid, "decision_bid": decision_bid,
            "decision_ask": decision_ask, "labels": labels, "qty_requested": qty_requested, "rules": rules}


@_writer("ack", "execution")
def ack(ts_ns: int, symbol: str, *, order_id: str, arrival_bid: float, arrival_ask: float, arrival_bid_qty: float,
        arrival_ask_qty: float, arrival_mid: float | None, latency_ms: float | None, ack_latency_ms: float | None,
        ack_ts_ns: int, placement: str | None, queue_ahead: float) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "ack", "order_id": order_id, "arrival_bid": arrival_bid,
            "arrival_ask": arrival_ask, "arrival_bid_qty": arrival_bid_qty, "arrival_ask_qty": arrival_ask_qty,
            "arrival_mid": arrival_mid, "latency_ms": latency_ms, "ack_latency_ms": ack_latency_ms,
            "ack_ts_ns": ack_ts_ns, "placement": placement, "queue_ahead": queue_ahead}


@_writer("fill", "execution")
def fill(ts_ns: int, symbol: str, *, order_id: str, side: str, price: float, qty: float, how: str, liquidity: str,
         fee_usd: float, queue_at_placement: float, queue_at_fill: float, filled_qty: float, remaining_qty: float,
         done: bool, plausible: bool | None, position: float, mid: float | None, model: str) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "fill", "order_id": order_id, "side": side, "price": price,
            "qty": qty, "how": how, "liquidity": liquidity, "fee_usd": fee_usd,
            "queue_at_placement": queue_at_placement, "queue_at_fill": queue_at_fill, "filled_qty": filled_qty,
            "remaining_qty": remaining_qty, "done": done, "plausible": plausible, "position": position, "mid": mid,
            "model": model}


@_writer("cancel", "execution")
def cancel(ts_ns: int, symbol: str, *, order_id: str, reason: str, requested_ts_ns: int | None, filled_qty: float,
           remaining_qty: float, queue_ahead: float, mid: float | None) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "cancel", "order_id": order_id, "reason": reason,
            "requested_ts_ns": requested_ts_ns, "filled_qty": filled_qty, "remaining_qty": remaining_qty,
            "queue_ahead": queue_ahead, "mid": mid}


@_writer("order_result", "execution")
def order_result(ts_ns: int, symbol: str, *, order_id: str, intent_id: str, side: str, style: str, labels: dict,
                 status: str, reason: str, qty: float, filled_qty: float, fill_ratio: float | None,
                 avg_fill_price: float | None, fees_usd: float, n_fills: int, filled_qty_by_how: dict,
                 decision_mid: float | None, arrival_mid: float | None, latency_ms: float | None,
                 arrival_to_first_fill_ms: float | None, time_to_first_fill_ms: float | None,
                 time_to_fill_ms: float | None, slippage_decision_bps: float | None,
                 slippage_arrival_bps: float | None, markout_bps: dict, markout_unresolved_fills: dict,
                 placement: str | None, queue_at_placement: float, passive_fills_plausible: int,
                 passive_fills_implausible: int, fill_markouts_bps: list,
                 queue_models: list | None) -> dict[str, Any]:
    """``queue_models``: None unless shadow queue models ran beside the acting one."""
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "order_result", "order_id": order_id, "intent_id": intent_id,
            "side": side, "style": style, "labels": labels, "status": status, "reason": reason, "qty": qty,
            "filled_qty": filled_qty, "fill_ratio": fill_ratio, "avg_fill_price": avg_fill_price,
            "fees_usd": fees_usd, "n_fills": n_fills, "filled_qty_by_how": filled_qty_by_how,
            "decision_mid": decision_mid, "arrival_mid": arrival_mid, "latency_ms": latency_ms,
            "arrival_to_first_fill_ms": arrival_to_first_fill_ms, "time_to_first_fill_ms": time_to_first_fill_ms,
            "time_to_fill_ms": time_to_fill_ms, "slippage_decision_bps": slippage_decision_bps,
            "slippage_arrival_bps": slippage_arrival_bps, "markout_bps": markout_bps,
            "markout_unresolved_fills": markout_unresolved_fills, "placement": placement,
            "queue_at_placement": queue_at_placement, "passive_fills_plausible": passive_fills_plausible,
            "passive_fills_implausible": passive_fills_implausible, "fill_markouts_bps": fill_markouts_bps,
            "queue_models": queue_models}


@_writer("alert", "execution")
def guard_alert(ts_ns: int, symbol: str, *, guard: str, state: str, value: Any, limit: Any) -> dict[str, Any]:
    """A risk guard tripped or cleared: the guarded value and its limit."""
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "alert", "source": "risk", "guard": guard, "state": state,
            "value": value, "limit": limit}


@_writer("alert", "execution")
def kill_switch_trip(ts_ns: int, symbol: str, *, reasons: str, latch: str) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "alert", "source": "risk", "guard": "kill_switch",
            "state": "trip", "reasons": reasons, "latch": latch}


@_writer("alert", "execution")
def kill_switch_clear(ts_ns: int, symbol: str, *, reason: str) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "alert", "source": "risk", "guard": "kill_switch",
            "state": "clear", "reason": reason}


@_writer("alert", "machines")
def invariant_alert(ts_ns: int, symbol: str, *, name: str, state: str, invariant: str, where: str,
                    inputs: dict) -> dict[str, Any]:
    """A decision-table invariant started (``trip``) or stopped (``clear``) failing."""
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "alert", "source": "invariant", "guard": f"invariant:{name}",
            "state": state, "invariant": invariant, "where": where, "inputs": inputs}


@_writer("feed", "runtime")
def feed(ts_ns: int, symbol: str, *, event: str, detail: str | None, gap_ms: float | None) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "feed", "event": event, "detail": detail, "gap_ms": gap_ms}


@_writer("metrics", "runtime")
def metrics(ts_ns: int, symbol: str, *, values: dict, states: dict) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": symbol, "kind": "metrics", "values": values, "states": states}


@_writer("config_reload", "runtime")
def reload_accepted(ts_ns: int, *, config_hash: str, previous_hash: str) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": "", "kind": "config_reload", "accepted": True, "config_hash": config_hash,
            "previous_hash": previous_hash, "errors": []}


@_writer("config_reload", "runtime")
def reload_refused(ts_ns: int, *, config_hash: str, errors: list[str]) -> dict[str, Any]:
    """The running config (``config_hash``) carries on; ``errors`` say why the edit was refused."""
    return {"ts_ns": ts_ns, "symbol": "", "kind": "config_reload", "accepted": False, "config_hash": config_hash,
            "errors": errors}


@_writer("session_end", "runtime")
def session_end(ts_ns: int, *, events: int, end_reason: str, digest: str, transitions: dict) -> dict[str, Any]:
    return {"ts_ns": ts_ns, "symbol": "", "kind": "session_end", "events": events, "end_reason": end_reason,
            "digest": digest, "transitions": transitions}


# -- the readers' contract: the JSON Schema of one record -----------------------------------------
def _properties(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {f.name: dict(f.schema) for f in fields if f.schema}


def _required(fields: tuple[Field, ...]) -> list[str]:
    return [f.name for f in fields if f.required]


def log_schema() -> dict[str, Any]:
    """JSON Schema (Draft 2020-12) of one record of the audit log, from the declarations above.
    Fields not declared are allowed, so a newer writer stays readable; declared ones are checked."""
    common = {f.name: dict(f.schema) for f in COMMON if f.name != "kind"}
    common["kind"] = {"enum": [t.kind for t in TYPES]}
    defs = {}
    for t in TYPES:
        d: dict[str, Any] = {"description": t.doc} if t.doc else {}
        d.update(required=_required(t.fields), properties=_properties(t.fields))
        d.update(t.rules)
        defs[t.kind] = d
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "execlab/log.schema.json",
        "title": f"One record of a run's audit log (RUN/log.jsonl), log_version {LOG_VERSION}",
        "description": "Generated from framework/spec/records.py; do not edit. Every line of the audit log is one "
                       "record. Common fields first; each kind then adds its own (see docs/audit-log.md). Fields "
                       "not listed are allowed, so a newer writer stays readable; the listed ones are checked.",
        "type": "object",
        "required": _required(COMMON),
        "properties": common,
        "allOf": [{"if": {"properties": {"kind": {"const": t.kind}}}, "then": {"$ref": f"#/$defs/{t.kind}"}}
                  for t in TYPES],
        "$defs": defs,
    }


def log_schema_text() -> str:
    return json.dumps(log_schema(), indent=2) + "\n"


SCHEMA_FILE = Path(__file__).parent / "schemas" / "log.schema.json"


def write_log_schema(path: Path = SCHEMA_FILE) -> Path:
    """Write the generated schema (``python -m framework.spec.records``)."""
    path.write_text(log_schema_text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_log_schema())
