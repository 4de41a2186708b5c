"""Session configs: which specs, which params, which data, which execution model.

``load_session`` validates the config (schema, then every referenced spec, then overrides) and
returns a ``Session`` carrying everything the runtime needs, plus a snapshot of every file it
read and the snapshot's hash, so a run can be re-created and verified later.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema, workspace
from .errors import SpecError, SpecErrors
from .expr import NUM, Env, Expr, ExprError, InputType, compile_expr
from .loader import Document, expr_error, parse_yaml, read_spec_text
from .machines import MachineSet, load_machine_set, param_catalogue
from .metrics import MetricSet, parse_metric_set
from .risk import RiskMachine, load_risk_machine

MACHINES_DIR = workspace.DEFAULTS_DIR / "machines"  # the machines shipped with the package
MACHINE_FILES = ("regime", "permission", "health")
SECTION_SCHEMAS = {"execution": "execution", "risk": "risk", "intents": "intents"}
NOT_PIPELINE_SPECS = ("metrics", "decision", "risk")  # spec files that are not pipeline machines


@dataclass
class Session:
    path: str
    name: str
    doc: str
    data: dict[str, Any]
    spec_paths: dict[str, str]  # metrics, regime, permission, health, decision (+ extra)
    machine_set: MachineSet
    metric_set: MetricSet
    overrides: dict[str, dict[str, Any]]
    snapshot: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    symbol_machine_sets: dict[str, MachineSet] = field(default_factory=dict)  # symbols with own overrides
    risk_machine: RiskMachine | None = None  # machines/risk.yaml with the risk: section's limits
    latency_load: Expr | None = None  # execution.latency.load_slowdown, checked against the metrics

    @property
    def symbols(self) -> list[str]:
        return [s if isinstance(s, str) else s["symbol"] for s in self.data.get("symbols") or ["BTCUSDT"]]

    def machine_set_for(self, symbol: str) -> MachineSet:
        """The machines of one symbol: its own overrides (``symbols:`` entries) on top of the
        session-wide ones."""
        return self.symbol_machine_sets.get(symbol, self.machine_set)

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.data["source"])

    @property
    def tick_ns(self) -> int:
        return int((self.data.get("clock") or {}).get("tick_ms", 100)) * 1_000_000

    @property
    def depth(self) -> bool:
        """Whether the session reads depth into a local L2 book (``market.depth``)."""
        return bool((self.data.get("market") or {}).get("depth"))

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.data.get(name) or {})

    def resolve(self, relative: str) -> Path:
        """A path written in the config, relative to the config file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else (Path(self.path).parent / p).resolve()


def parse_set_option(text: str) -> tuple[str, str, Any]:
    """``machine.param=value`` from the command line; value parsed as a YAML scalar."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise SpecErrors([SpecError("--set", 0, 0, f"'{text}' is not an override; expected machine.param=value")])
    key, raw = text.split("=", 1)
    machine, param = key.strip().split(".", 1)
    try:
        value = parse_yaml(raw, "--set").data  # the bounded loader: no NaN, no alias bombs
    except SpecErrors:
        value = raw
    if isinstance(value, bool) or isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return machine, param, value
    raise SpecErrors([SpecError("--set", 0, 0, f"value of {key} is {raw!r}; expected a finite number or true/false")])


def _spec_paths(doc: Document) -> dict[str, str]:
    base = Path(doc.path).parent
    given = doc.data.get("machines") or {}
    machines = workspace.machines_dir(doc.path)  # those the config does not name
    paths = {"metrics": str(machines / "metrics.yaml"), "decision": str(machines / "decision.yaml")}
    for name in MACHINE_FILES:
        paths[name] = str(machines / f"{name}.yaml")
    # a workspace made before the risk machine existed runs the packaged one
    risk = machines / "risk.yaml"
    paths["risk"] = str(risk if risk.is_file() else MACHINES_DIR / "risk.yaml")
    for key, value in given.items():
        if key == "extra":
            for i, extra in enumerate(value):
                paths[f"extra{i}"] = str((base / extra).resolve())
        else:
            paths[key] = str((base / value).resolve())
    return paths


def _collect_overrides(doc: Document, sets: Iterable[str], catalogue: Mapping[str, Mapping[str, Any]],
                       errors: list[SpecError], origins: dict[str, dict[str, SpecError]] | None = None,
                       ) -> dict[str, dict[str, Any]]:
    """{machine: {param: value}} from the config's overrides: and --set; ``origins`` is filled
    with where each was written (a later one wins, as its value does)."""
    out: dict[str, dict[str, Any]] = {}
    origins = {} if origins is None else origins
    add = _override_adder(out, catalogue, errors, origins)

    for key, value in (doc.data.get("overrides") or {}).items():
        machine, param = key.split(".", 1)
        add(machine, param, value, doc.error(("overrides", key), "", key=True))
    for text in sets:
        try:
            machine, param, value = parse_set_option(text)
        except SpecErrors as exc:
            errors.extend(exc.errors)
            continue
        add(machine, param, value, SpecError("--set", 0, 0, ""))
    return out


def _symbol_overrides(doc: Document, base: Mapping[str, Mapping[str, Any]], catalogue: Mapping[str, Mapping[str, Any]],
                      errors: list[SpecError]) -> dict[str, dict[str, dict[str, Any]]]:
    """symbol -> the overrides of its ``symbols:`` entry merged over ``base``; checked like ``--set``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    seen: set[str] = set()
    for i, entry in enumerate(doc.data.get("symbols") or []):
        name = entry if isinstance(entry, str) else entry["symbol"]
        if name in seen:
            errors.append(doc.error(("symbols", i), f"symbol {name} is listed twice; expected each symbol once"))
        seen.add(name)
        if isinstance(entry, str) or not entry.get("overrides"):
            continue
        own: dict[str, dict[str, Any]] = {}
        add = _override_adder(own, catalogue, errors)
        for key, value in entry["overrides"].items():
            machine, param = key.split(".", 1)
            add(machine, param, value, doc.error(("symbols", i, "overrides", key), "", key=True))
        out[name] = {m: {**base.get(m, {}), **own.get(m, {})} for m in {*base, *own}}
    return out


def _override_adder(out: dict[str, dict[str, Any]], catalogue: Mapping[str, Mapping[str, Any]],
                    errors: list[SpecError], origins: dict[str, dict[str, SpecError]] | None = None):
    """``add(machine, param, value, where)``: checks the name, keeps the value, and notes where it
    was written in ``origins`` (errors in its value are reported there)."""
    def add(machine: str, param: str, value: Any, where: SpecError) -> None:
        if machine not in catalogue:
            errors.append(SpecError(where.path, where.line, where.col,
                                    f"override of '{machine}.{param}': no machine or table named '{machine}'; expected one of: {', '.join(sorted(catalogue))}"))
            return
        if param not in catalogue[machine]:
            errors.append(SpecError(where.path, where.line, where.col,
                                    f"override of a param that does not exist: '{machine}.{param}'; expected one of: {', '.join(sorted(catalogue[machine]))}"))
            return
        out.setdefault(machine, {})[param] = value
        if origins is not None:
            origins.setdefault(machine, {})[param] = where

    return add


def _hash_snapshot(snapshot: Mapping[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _queue_model_name_errors(doc: Document) -> list[SpecError]:
    """The queue models named in ``execution.passive.queue`` must be built in (listed in the
    execution schema) or declared under ``models``; a shadow must not repeat the acting model."""
    queue = ((doc.data.get("execution") or {}).get("passive") or {}).get("queue")
    if not isinstance(queue, dict):
        return []
    builtin = schema.schema("execution")["properties"]["passive"]["properties"]["queue"]["x-builtin-models"]
    declared = queue.get("models") if isinstance(queue.get("models"), dict) else {}
    known = sorted({*builtin, *declared})
    acting = queue.get("model", "conservative")
    out = []
    named = [(("model",), acting)] + [(("shadows", i), n) for i, n in enumerate(queue.get("shadows") or [])]
    for at, name in named:
        where = ("execution", "passive", "queue", *at)
        if name not in known:
            out.append(doc.error(where, f"unknown queue model {name!r}; expected one of {', '.join(known)}"))
        elif at[0] == "shadows" and name == acting:
            out.append(doc.error(where, f"{name!r} is the acting model; expected a shadow other than it"))
    return out


def _latency_load(doc: Document, metric_set: MetricSet, errors: list[SpecError]) -> Expr | None:
    """``execution.latency.load_slowdown``: a number expression over the session's metrics."""
    text = ((doc.data.get("execution") or {}).get("latency") or {}).get("load_slowdown")
    if text is None:
        return None
    where = ("execution", "latency", "load_slowdown")
    env = Env(inputs={f"metrics.{name}": InputType(NUM) for name in metric_set.names})
    try:
        expr = compile_expr(text, env)
    except ExprError as exc:
        errors.append(expr_error(doc, where, exc, "load_slowdown"))
        return None
    if expr.type.kind != NUM:
        errors.append(doc.error(where, f"load_slowdown is a {expr.type.kind} expression; expected a number"))
        return None
    return expr


def load_session(path: str | Path | None = None, sets: Iterable[str] = (), *,
                 text: str | None = None, spec_files: Mapping[str, str] | None = None,
                 read: Mapping[str, str] | None = None) -> Session:
    """Load and validate a session config and everything it references; all errors at once.

    ``text`` loads the config from a string instead (used to re-create a run from the snapshot
    kept in its run directory); ``path`` is then only used to resolve relative paths and to
    name the file in errors. ``spec_files`` replaces the spec files the config names (a run's
    own copies). ``read`` holds file contents already read, by path (hot reload validates
    exactly the text it has seen settle); any other file is read here, once.
    """
    read = read or {}

    path = str(path or workspace.default_config())
    if text is None:
        text = read[path] if path in read else read_spec_text(path)
    doc = parse_yaml(text, path)
    errors = schema.check(doc, "session")
    if errors:
        raise SpecErrors(errors)
    for section, schema_name in SECTION_SCHEMAS.items():
        if section in doc.data:
            errors.extend(schema.check(doc, schema_name, at=(section,)))
    errors.extend(_queue_model_name_errors(doc))
    spec_paths = dict(spec_files) if spec_files else _spec_paths(doc)
    legacy_risk = "risk" not in spec_paths
    # a run recorded before the risk machine existed ran the packaged one's behaviour
    spec_paths.setdefault("risk", str(MACHINES_DIR / "risk.yaml"))
    # Each file is read once: what is validated is exactly what is snapshotted and run.
    texts: dict[str, str] = {}
    for key, p in spec_paths.items():
        if not Path(p).is_file():
            where = ("machines", key) if key in (doc.data.get("machines") or {}) else ("machines",)
            errors.append(doc.error(where, f"spec file {p} does not exist; expected a path relative to {Path(path).parent}"))
            continue
        try:
            texts[p] = read[p] if p in read else read_spec_text(p)
        except SpecErrors as exc:
            errors.extend(exc.errors)
    source = doc.data["source"]
    if source["kind"] in ("replay", "scenario") and not (source.get("path") or source.get("paths")):
        errors.append(doc.error(("source",), f"a {source['kind']} source needs a path; expected source.path"))
    if errors:
        raise SpecErrors(errors)

    machine_files = [p for k, p in spec_paths.items() if k not in NOT_PIPELINE_SPECS]
    catalogue = param_catalogue(machine_files, spec_paths["decision"], texts)
    origins: dict[str, dict[str, SpecError]] = {}
    overrides = _collect_overrides(doc, sets, catalogue, errors, origins)
    per_symbol = _symbol_overrides(doc, overrides, catalogue, errors)
    symbol_machine_sets: dict[str, MachineSet] = {}
    metric_set = None
    risk_machine = None
    try:
        metric_set = parse_metric_set(texts[spec_paths["metrics"]], spec_paths["metrics"])
    except SpecErrors as exc:
        errors.extend(exc.errors)
    if metric_set is not None:
        try:
            risk_machine = load_risk_machine(spec_paths["risk"], metric_set.names, doc.data.get("risk") or {},
                                             texts[spec_paths["risk"]])
        except SpecErrors as exc:
            errors.extend(exc.errors)
        try:
            machine_set = load_machine_set(machine_files, spec_paths["decision"], metric_set.names, overrides, texts, origins)
        except SpecErrors as exc:
            errors.extend(exc.errors)
        for symbol, merged in per_symbol.items():
            try:
                symbol_machine_sets[symbol] = load_machine_set(machine_files, spec_paths["decision"],
                                                               metric_set.names, merged, texts)
            except SpecErrors as exc:
                errors.extend(SpecError(e.path, e.line, e.col, f"{symbol}: {e.message}") for e in exc.errors)
    latency_load = _latency_load(doc, metric_set, errors) if metric_set is not None else None
    if errors:
        raise SpecErrors(errors)

    files = {key: texts[p] for key, p in spec_paths.items() if key != "risk" or not legacy_risk}
    snapshot = {
        "config": text,
        "config_path": path,
        "specs": files,
        "sets": list(sets),
    }
    return Session(path=path, name=doc.data["session"], doc=doc.data["doc"], data=doc.data,
                   spec_paths=spec_paths, machine_set=machine_set, metric_set=metric_set,
                   overrides=overrides, snapshot=snapshot, config_hash=_hash_snapshot(
                       {"config": snapshot["config"], "specs": files, "sets": list(sets)}),
                   symbol_machine_sets=symbol_machine_sets, risk_machine=risk_machine,
                   latency_load=latency_load)
