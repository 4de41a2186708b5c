"""Configuration of paper execution, risk guardrails and intent generation.

Each frozen dataclass is built from the plain dict of one section of a session YAML
(``execution:``, ``risk:``, ``intents:``). Every key is optional; the defaults below are the
documented ones (docs/execution.md) and match the ``default`` keywords of the packaged schemas
``execution``, ``risk`` and ``intents``. ``from_dict`` validates the dict against the schema and
raises ``SpecErrors``; ``from_document`` does the same on a loaded YAML document so the errors
carry file:line:col.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework.spec.errors import SpecError, SpecErrors
from framework.spec.loader import Document
from framework.spec.schema import check, validator

from .queue import BUILTIN_MODELS, QueueModelSpec

KILL_SWITCH_GUARDS = ("loss_limit", "max_drawdown", "max_position_notional", "order_rate", "stale_data")


def _validate(data: Any, schema_name: str, where: str) -> None:
    """Raise SpecErrors for a plain dict that does not satisfy the packaged schema."""
    errors = []
    for e in validator(schema_name).iter_errors(data):
        at = "/".join(str(p) for p in e.absolute_path) or "top level"
        errors.append(SpecError(where, 0, 0, f"{schema_name}/{at}: {e.message}; expected a value the "
                                             f"{schema_name} schema allows"))
    if errors:
        raise SpecErrors(errors)


def _section(doc: Document, name: str) -> dict:
    """The ``name`` section of a loaded session document, checked against its schema."""
    data = doc.data.get(name) if isinstance(doc.data, dict) else None
    if data is None:
        return {}
    errors = check(doc, name, at=(name,))
    if errors:
        raise SpecErrors(errors)
    return data


# --------------------------------------------------------------------------------------------
# execution:


@dataclass(frozen=True)
class PathLatency:
    """One direction of the order path: a fixed part plus a seeded random jitter."""

    fixed_ms: float = 25.0
    jitter: str = "lognormal"  # none | uniform | lognormal | pareto
    jitter_ms: float = 5.0  # uniform: U[0, jitter_ms]; lognormal and pareto: the median of the jitter
    jitter_sigma: float = 0.5  # lognormal shape
    jitter_alpha: float = 2.5  # pareto tail index (smaller = heavier tail)
    jitter_cap_ms: float = 250.0


@dataclass(frozen=True)
class LatencyConfig:
    fixed_ms: float = 25.0
    jitter: str = "lognormal"  # none | uniform | lognormal | pareto
    jitter_ms: float = 5.0  # uniform: U[0, jitter_ms]; lognormal, pareto: median of the jitter
    jitter_sigma: float = 0.5
    jitter_alpha: float = 2.5
    jitter_cap_ms: float = 250.0
    ack_fixed_ms: float = 25.0
    ack: dict[str, Any] = field(default_factory=dict)  # overrides of the acknowledgement path (PathLatency keys)
    burst_window_ms: float = 1000.0  # our own messages (orders, cancels) counted over this window ...
    burst_slowdown: float = 0.0  # ... each one makes the next message (fixed + jitter) this much slower
    # An expression over metrics.* (checked and compiled once by the session loader): each message
    # is 1 + its value times slower, so a busy market slows the path. None: off.
    load_slowdown: str | float | None = None

    @property
    def entry(self) -> PathLatency:
        """Decision -> exchange (orders and cancels)."""
        return PathLatency(self.fixed_ms, self.jitter, self.jitter_ms, self.jitter_sigma, self.jitter_alpha,
                           self.jitter_cap_ms)

    @property
    def acknowledgement(self) -> PathLatency:
        """Exchange -> us: the entry path's jitter with ``ack_fixed_ms``, unless ``ack`` overrides."""
        base = {"fixed_ms": self.ack_fixed_ms, "jitter": self.jitter, "jitter_ms": self.jitter_ms,
                "jitter_sigma": self.jitter_sigma, "jitter_alpha": self.jitter_alpha,
                "jitter_cap_ms": self.jitter_cap_ms}
        return PathLatency(**{**base, **self.ack})


@dataclass(frozen=True)
class FeeConfig:
    maker_bps: float = 10.0  # Binance spot regular tier: 0.10 %
    taker_bps: float = 10.0


@dataclass(frozen=True)
class TakerConfig:
    impact: str = "partial"  # partial | walk
    walk_step_bps: float = 2.0
    walk_max_levels: int = 10


@dataclass(frozen=True)
class QueueConfig:
    model: str = "conservative"  # the acting model: its fills are the run's fills
    shadows: tuple[str, ...] = ()  # run on the same orders, reported beside the acting model
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # declared models, by name


@dataclass(frozen=True)
class PassiveConfig:
    ttl_s: float = 30.0
    cancel_ahead_fraction: float = 0.0
    queue: QueueConfig = field(default_factory=QueueConfig)

    def queue_models(self) -> tuple[QueueModelSpec, ...]:
        """The acting model then the shadows, resolved: a name declared under ``queue.models``,
        else a built-in one (``conservative`` takes ``cancel_ahead_fraction``). Raises KeyError
        for a name that is neither."""
        out = []
        for name in (self.queue.model, *self.queue.shadows):
            declared = self.queue.models.get(name)
            if declared is not None:
                out.append(QueueModelSpec(name, **declared))
            elif name == "conservative":
                out.append(QueueModelSpec(name, cancel_ahead_fraction=self.cancel_ahead_fraction))
            else:
                out.append(BUILTIN_MODELS[name])
        return tuple(out)


@dataclass(frozen=True)
class AssumedRules:
    """Rules for a symbol the exchangeInfo file does not list (0 disables a bound)."""

    step_size: float = 0.0
    min_qty: float = 0.0
    max_qty: float = 0.0
    min_notional: float = 0.0


@dataclass(frozen=True)
class ExchangeRulesConfig:
    enabled: bool = True
    market: str = "auto"  # auto | spot | usdm
    file: str | None = None  # an exchangeInfo JSON; None: data/exchangeinfo-<market>.json
    assume: AssumedRules = field(default_factory=AssumedRules)


@dataclass(frozen=True)
class ExecutionConfig:
    tick_size: float = 0.01
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    fees: FeeConfig = field(default_factory=FeeConfig)
    taker: TakerConfig = field(default_factory=TakerConfig)
    passive: PassiveConfig = field(default_factory=PassiveConfig)
    markout_horizons_s: tuple[float, ...] = (1.0, 5.0, 30.0)
    exchange_rules: ExchangeRulesConfig = field(default_factory=ExchangeRulesConfig)

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "<execution>") -> ExecutionConfig:
        data = dict(data or {})
        _validate(data, "execution", where)
        bad = _queue_model_error(data)
        if bad is not None:
            at = "/".join(map(str, bad[0]))
            raise SpecErrors([SpecError(where, 0, 0, f"execution/passive/queue/{at}: {bad[1]}")])
        return cls._build(data)

    @classmethod
    def from_document(cls, doc: Document) -> ExecutionConfig:
        data = _section(doc, "execution")
        bad = _queue_model_error(data)
        if bad is not None:
            raise SpecErrors([doc.error(("execution", "passive", "queue", *bad[0]), bad[1])])
        return cls._build(data)

    @classmethod
    def _build(cls, d: dict) -> ExecutionConfig:
        kw: dict[str, Any] = {}
        if "tick_size" in d:
            kw["tick_size"] = float(d["tick_size"])
        if "latency" in d:
            kw["latency"] = LatencyConfig(**d["latency"])
        if "fees" in d:
            kw["fees"] = FeeConfig(**d["fees"])
        if "taker" in d:
            kw["taker"] = TakerConfig(**d["taker"])
        if "passive" in d:
            passive = dict(d["passive"])
            if "queue" in passive:
                q = dict(passive["queue"])
                passive["queue"] = QueueConfig(model=q.get("model", "conservative"),
                                               shadows=tuple(q.get("shadows", ())),
                                               models={k: dict(v) for k, v in (q.get("models") or {}).items()})
            kw["passive"] = PassiveConfig(**passive)
        if "markout_horizons_s" in d:
            kw["markout_horizons_s"] = tuple(sorted(float(h) for h in d["markout_horizons_s"]))
        if "exchange_rules" in d:
            r = dict(d["exchange_rules"])
            r["assume"] = AssumedRules(**{k: float(v) for k, v in (r.get("assume") or {}).items()})
            kw["exchange_rules"] = ExchangeRulesConfig(**r)
        return cls(**kw)


def _queue_model_error(data: dict) -> tuple[tuple, str] | None:
    """Where the queue section names a model that is neither declared nor built in (or names
    the acting model again as a shadow), and what is wrong there."""
    queue = (data.get("passive") or {}).get("queue") or {}
    declared = queue.get("models") or {}
    known_names = sorted({*BUILTIN_MODELS, *declared})
    known = ", ".join(known_names)
    acting = queue.get("model", "conservative")
    if acting not in known_names:
        return ("model",), f"unknown queue model {acting!r}; expected one of {known}"
    for i, name in enumerate(queue.get("shadows") or ()):
        if name not in known_names:
            return ("shadows", i), f"unknown queue model {name!r}; expected one of {known}"
        if name == acting:
            return ("shadows", i), f"{name!r} is the acting model; expected a shadow other than it"
    return None


# --------------------------------------------------------------------------------------------
# risk:


@dataclass(frozen=True)
class RiskConfig:
    max_order_notional_usd: float = 1000.0
    max_position_notional_usd: float = 5000.0
    max_orders: int = 10
    order_window_s: float = 60.0
    loss_limit_usd: float = 500.0
    max_drawdown_usd: float = 300.0
    stale_quote_ms: float = 2000.0
    kill_switch_on: tuple[str, ...] = ("loss_limit", "max_drawdown")
    kill_switch_reset_s: float | None = None  # None: latches for the session
    cancel_orders_on_kill: bool = True

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "<risk>") -> RiskConfig:
        data = dict(data or {})
        _validate(data, "risk", where)
        return cls._build(data)

    @classmethod
    def from_document(cls, doc: Document) -> RiskConfig:
        return cls._build(_section(doc, "risk"))

    @classmethod
    def _build(cls, d: dict) -> RiskConfig:
        d = dict(d)
        if "kill_switch_on" in d:
            d["kill_switch_on"] = tuple(d["kill_switch_on"])
        return cls(**d)


# --------------------------------------------------------------------------------------------
# intents:


@dataclass(frozen=True)
class ProbeConfig:
    period_s: float = 60.0
    notional_usd: float = 100.0
    style: str = "alternate"  # take | passive | alternate
    first_side: str = "buy"
    limit_offset_ticks: int = 0
    limit_offset_bps: float | None = None
    ttl_s: float | None = 30.0
    jitter_s: float = 0.0


@dataclass(frozen=True)
class IntentConfig:
    generator: str = "probe"  # probe | file | python | none
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    file_path: str | None = None
    class_path: str | None = None  # python: "package.module:Class"
    params: dict[str, Any] = field(default_factory=dict)  # python: given to the class

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "<intents>") -> IntentConfig:
        data = dict(data or {})
        _validate(data, "intents", where)
        return cls._build(data, where)

    @classmethod
    def from_document(cls, doc: Document) -> IntentConfig:
        data = _section(doc, "intents")
        cfg = cls._build(data, doc.path, strict=False)
        if cfg.generator == "file" and cfg.file_path is None:
            raise SpecErrors([doc.error(("intents", "generator"),
                                        "generator 'file' needs a file section; expected intents.file.path")])
        if cfg.generator == "python" and cfg.class_path is None:
            raise SpecErrors([doc.error(("intents", "generator"),
                                        "generator 'python' needs a class; expected intents.class: package.module:Class")])
        return cfg

    @classmethod
    def _build(cls, d: dict, where: str, strict: bool = True) -> IntentConfig:
        kw: dict[str, Any] = {}
        if "generator" in d:
            kw["generator"] = d["generator"]
        if "probe" in d:
            kw["probe"] = ProbeConfig(**d["probe"])
        if "file" in d:
            kw["file_path"] = d["file"]["path"]
        if "class" in d:
            kw["class_path"] = d["class"]
        if "params" in d:
            kw["params"] = dict(d["params"] or {})
        cfg = cls(**kw)
        if strict and cfg.generator == "file" and cfg.file_path is None:
            raise SpecErrors([SpecError(where, 0, 0, "generator 'file' needs a file section; expected intents.file.path")])
        if strict and cfg.generator == "python" and cfg.class_path is None:
            raise SpecErrors([SpecError(where, 0, 0, "generator 'python' needs a class; expected intents.class: package.module:Class")])
        return cfg
