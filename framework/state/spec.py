"""The metric set: which rolling metrics the state engine computes, declared in YAML.

``machines/metrics.yaml`` maps each metric name to a ``kind``, a ``window_s`` for windowed
kinds and a ``doc``. The file is checked against ``metrics.schema.json`` and then by the
semantic checks here (a window is required exactly for windowed kinds). Every problem is a
``SpecError`` at the line and column of the offending value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from framework.spec.errors import SpecError, SpecErrors
from framework.spec.loader import Document, load_yaml, parse_yaml
from framework.spec.schema import check

SCHEMA = "metrics"


@dataclass(frozen=True)
class KindInfo:
    windowed: bool
    unit: str
    empty: float | str  # value before any data / on an empty window (documentation)


NAN = float("nan")
INF = float("inf")

KINDS: dict[str, KindInfo] = {
    "mid": KindInfo(False, "price", NAN),
    "spread": KindInfo(False, "price", NAN),
    "spread_bps": KindInfo(False, "bps", NAN),
    "microprice": KindInfo(False, "price", NAN),
    "imbalance": KindInfo(False, "ratio in [-1, 1]", NAN),
    "quote_age": KindInfo(False, "ms", INF),
    "trade_age": KindInfo(False, "ms", INF),
    "quote_rate": KindInfo(True, "Hz", 0.0),
    "trade_rate": KindInfo(True, "Hz", 0.0),
    "volume_base_rate": KindInfo(True, "base units/s", 0.0),
    "volume_quote_rate": KindInfo(True, "quote units/s", 0.0),
    "buy_ratio": KindInfo(True, "ratio in [0, 1]", NAN),
    "realized_vol": KindInfo(True, "bps", 0.0),
    "mid_move": KindInfo(True, "bps", NAN),
    "crossed_count": KindInfo(True, "count", 0.0),
    "spread_to_median": KindInfo(True, "ratio", NAN),
}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str
    window_s: float | None
    doc: str
    line: int = 0

    @property
    def window_ns(self) -> int:
        return round(self.window_s * 1e9) if self.window_s is not None else 0


@dataclass(frozen=True)
class MetricSet:
    """A validated metric set. ``names`` is the declaration order (the CSV column order)."""

    metrics: tuple[MetricSpec, ...]
    path: str = "<memory>"
    doc: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    def __getitem__(self, name: str) -> MetricSpec:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.metrics)

    def __iter__(self):
        return iter(self.metrics)

    def initial_values(self) -> dict[str, float]:
        return {m.name: float(KINDS[m.kind].empty) for m in self.metrics}


def semantic_errors(doc: Document) -> list[SpecError]:
    """Checks beyond the schema, on a schema-valid document."""
    errors: list[SpecError] = []
    for name, decl in doc.data["metrics"].items():
        kind = decl["kind"]
        info = KINDS[kind]
        if info.windowed and "window_s" not in decl:
            errors.append(doc.error(("metrics", name), f"metric '{name}' of kind '{kind}' has no "
                                    "window_s; expected window_s: SECONDS for a windowed kind",
                                    key=True))
        if not info.windowed and "window_s" in decl:
            errors.append(doc.error(("metrics", name, "window_s"), f"metric '{name}' of kind "
                                    f"'{kind}' is instantaneous and takes no window_s; expected "
                                    "no window_s", key=True))
    return errors


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _at_bad_names(doc: Document, errors: list[SpecError]) -> list[SpecError]:
    """A metric name that breaks the schema's name pattern is reported at the name itself,
    not at the start of the enclosing mapping."""
    metrics = doc.data.get("metrics") if isinstance(doc.data, dict) else None
    if not isinstance(metrics, dict):
        return errors
    bad = [n for n in metrics if not (isinstance(n, str) and _NAME.match(n))]
    out = []
    for e in errors:
        name = next((n for n in bad if f"{n!r} does not match" in e.message), None)
        if name is not None:
            line, col = doc.where(("metrics", name), key=True)
            e = SpecError(e.path, line, col, f"metric name {name!r} is not allowed; expected "
                          "lower case letters, digits and _ starting with a letter (e.g. "
                          "spread_bps)")
        out.append(e)
    return out


def metric_set_from_document(doc: Document) -> MetricSet:
    errors = _at_bad_names(doc, check(doc, SCHEMA))
    if errors:
        raise SpecErrors(errors)
    errors = semantic_errors(doc)
    if errors:
        raise SpecErrors(errors)
    metrics = []
    for name, decl in doc.data["metrics"].items():
        w = decl.get("window_s")
        metrics.append(MetricSpec(name=name, kind=decl["kind"],
                                  window_s=float(w) if w is not None else None,
                                  doc=decl["doc"], line=doc.where(("metrics", name), key=True)[0]))
    return MetricSet(tuple(metrics), path=doc.path, doc=doc.data.get("doc", ""))


def load_metric_set(path: str | Path) -> MetricSet:
    """Load and validate a metrics YAML file. Raises SpecErrors with file:line:col."""
    return metric_set_from_document(load_yaml(path))


def parse_metric_set(text: str, path: str = "<string>") -> MetricSet:
    """Like :func:`load_metric_set`, from YAML text."""
    return metric_set_from_document(parse_yaml(text, path))


def metric_set(decls: dict[str, tuple[str, float | None]]) -> MetricSet:
    """A metric set built in code: ``{name: (kind, window_s or None)}`` (tests, notebooks)."""
    out = []
    for name, (kind, w) in decls.items():
        if kind not in KINDS:
            raise ValueError(f"unknown metric kind {kind!r}")
        if KINDS[kind].windowed != (w is not None):
            raise ValueError(f"metric {name!r}: window_s is required exactly for windowed kinds")
        out.append(MetricSpec(name, kind, None if w is None else float(w), doc=kind))
    return MetricSet(tuple(out))


def default_metrics_path() -> Path:
    """machines/metrics.yaml of the current workspace, else the one shipped with the package."""
    from framework.spec import workspace

    return workspace.machines_dir() / "metrics.yaml"
