"""The metric set: which rolling metrics the state engine computes, declared in YAML.

``machines/metrics.yaml`` maps each metric name to a ``kind``, a ``window_s`` for windowed
kinds and a ``doc``. The file is checked against ``metrics.schema.json`` and then by the
semantic checks here (a window is required exactly for windowed kinds). Every problem is a
``SpecError`` at the line and column of the offending value.
"""

from __future__ import annotations

import math
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
    derived: bool = False  # computed from another metric (``of``), sampled on a cadence
    book: bool = False  # read from the local L2 book (session ``market.depth``), not the state engine


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
    "rolling_quantile": KindInfo(True, "unit of its source", NAN, derived=True),
    "ewma": KindInfo(False, "unit of its source", NAN, derived=True),
    # The L2 book's kinds: NaN in a session without depth (no book, nothing to say).
    "book_depth": KindInfo(False, "base units", NAN, book=True),
    "book_imbalance": KindInfo(False, "ratio in [-1, 1]", NAN, book=True),
    "book_in_sync": KindInfo(False, "1 in sync, 0 not", NAN, book=True),
    "book_resyncing": KindInfo(False, "1 while out of sync, 0 not", NAN, book=True),
    "book_gaps": KindInfo(False, "count", NAN, book=True),
    "book_age": KindInfo(False, "ms", NAN, book=True),
}

# Options of the book kinds: (option, required).
BOOK_OPTIONS: dict[str, tuple[str, ...]] = {"book_depth": ("bps", "side"), "book_imbalance": ("levels",)}

# Options of the derived kinds, with their defaults (None: required).
DERIVED_OPTIONS: dict[str, dict[str, float | None]] = {
    "rolling_quantile": {"quantile": None, "sample_s": 1.0, "min_history_s": 0.0},
    "ewma": {"half_life_s": None, "sample_s": 1.0, "min_history_s": 0.0},
}
MAX_SAMPLES = 100_000  # a rolling quantile's window holds at most this many samples


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str
    window_s: float | None
    doc: str
    line: int = 0
    # derived kinds only (rolling_quantile, ewma): the source metric and the options
    of: str | None = None
    quantile: float | None = None
    half_life_s: float | None = None
    sample_s: float | None = None
    min_history_s: float | None = None
    # book kinds only: book_depth's band and side, book_imbalance's levels
    bps: float | None = None
    side: str | None = None
    levels: int | None = None

    @property
    def window_ns(self) -> int:
        return round(self.window_s * 1e9) if self.window_s is not None else 0

    @property
    def sample_ns(self) -> int:
        return round(self.sample_s * 1e9) if self.sample_s is not None else 0

    @property
    def min_samples(self) -> int:
        """Samples a derived metric needs before it reads a value (its minimum history)."""
        if not self.min_history_s:
            return 1
        return max(1, math.ceil(round(self.min_history_s / self.sample_s, 9)))

    @property
    def alpha(self) -> float:
        """An EWMA's weight of each new sample: half of the old value is left after one
        half-life of samples."""
        return 1.0 - 0.5 ** (self.sample_s / self.half_life_s) if self.half_life_s else 0.0


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

    @property
    def book(self) -> tuple[MetricSpec, ...]:
        """The metrics read from the local L2 book (written by the book, not the state engine)."""
        return tuple(m for m in self.metrics if KINDS[m.kind].book)

    @property
    def rolling(self) -> MetricSet:
        """The metrics the state engine computes (all but the book's)."""
        if not self.book:
            return self
        return MetricSet(tuple(m for m in self.metrics if not KINDS[m.kind].book), self.path, self.doc)


def semantic_errors(doc: Document) -> list[SpecError]:
    """Checks beyond the schema, on a schema-valid document."""
    errors: list[SpecError] = []
    seen: list[str] = []
    for name, decl in doc.data["metrics"].items():
        kind = decl["kind"]
        info = KINDS[kind]
        errors += _derived_errors(doc, name, decl, seen)
        errors += _book_errors(doc, name, decl)
        if not info.book:  # a derived metric samples the state engine's values, not the book's
            seen.append(name)
        if info.windowed and "window_s" not in decl:
            errors.append(doc.error(("metrics", name), f"metric '{name}' of kind '{kind}' has no "
                                    "window_s; expected window_s: SECONDS for a windowed kind",
                                    key=True))
        if not info.windowed and "window_s" in decl:
            errors.append(doc.error(("metrics", name, "window_s"), f"metric '{name}' of kind "
                                    f"'{kind}' is instantaneous and takes no window_s; expected "
                                    "no window_s", key=True))
    return errors


def _derived_errors(doc: Document, name: str, decl: dict, earlier: list[str]) -> list[SpecError]:
    """A derived kind names an earlier metric in ``of`` and takes exactly its own options."""
    kind = decl["kind"]
    options = DERIVED_OPTIONS.get(kind, {})
    allowed = set(options) | ({"of"} if options else set())
    errors = []
    for key in ("of", "quantile", "half_life_s", "sample_s", "min_history_s"):
        if key in decl and key not in allowed:
            takers = [k for k, o in DERIVED_OPTIONS.items() if key == "of" or key in o]
            errors.append(doc.error(("metrics", name, key), f"metric '{name}' of kind '{kind}' "
                                    f"takes no {key}; expected it only on kind "
                                    + " or ".join(takers), key=True))
    if not options:
        return errors
    if "of" not in decl:
        errors.append(doc.error(("metrics", name), f"metric '{name}' of kind '{kind}' has no "
                                "of; expected of: METRIC, a metric declared above it", key=True))
    elif decl["of"] not in earlier:
        errors.append(doc.error(("metrics", name, "of"), f"metric '{name}': of names "
                                f"{decl['of']!r}, which is not declared above it; expected one "
                                f"of {', '.join(earlier) or '(none)'}"))
    for key, default in options.items():
        if default is None and key not in decl:
            errors.append(doc.error(("metrics", name), f"metric '{name}' of kind '{kind}' has "
                                    f"no {key}; expected {key}: NUMBER", key=True))
    sample = decl.get("sample_s", options.get("sample_s"))
    if "window_s" in decl and sample and decl["window_s"] / sample > MAX_SAMPLES:
        errors.append(doc.error(("metrics", name, "sample_s"), f"metric '{name}': window_s / "
                                f"sample_s = {decl['window_s'] / sample:.0f} samples; expected at "
                                f"most {MAX_SAMPLES}", key="sample_s" not in decl))
    return errors


def _book_errors(doc: Document, name: str, decl: dict) -> list[SpecError]:
    """A book kind takes exactly its own options (book_depth: bps and side; book_imbalance:
    levels)."""
    kind = decl["kind"]
    own = BOOK_OPTIONS.get(kind, ())
    errors = []
    for key in ("bps", "side", "levels"):
        if key in decl and key not in own:
            takers = [k for k, o in BOOK_OPTIONS.items() if key in o]
            errors.append(doc.error(("metrics", name, key), f"metric '{name}' of kind '{kind}' takes no "
                                    f"{key}; expected it only on kind {' or '.join(takers)}", key=True))
    for key in own:
        if key not in decl:
            hint = {"bps": "bps: NUMBER", "side": "side: bid or ask", "levels": "levels: COUNT"}[key]
            errors.append(doc.error(("metrics", name), f"metric '{name}' of kind '{kind}' has no {key}; "
                                    f"expected {hint}", key=True))
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
                                  doc=decl["doc"], line=doc.where(("metrics", name), key=True)[0],
                                  **_options(decl["kind"], decl)))
    return MetricSet(tuple(metrics), path=doc.path, doc=doc.data.get("doc", ""))


def _options(kind: str, decl: dict) -> dict:
    """A derived kind's ``of`` and options as floats, defaults filled in; a book kind's options."""
    if kind in BOOK_OPTIONS:
        return {k: (int(decl[k]) if k == "levels" else float(decl[k]) if k == "bps" else decl[k])
                for k in BOOK_OPTIONS[kind]}
    options = DERIVED_OPTIONS.get(kind)
    if not options:
        return {}
    out: dict = {"of": decl["of"]}
    for key, default in options.items():
        out[key] = float(decl.get(key, default))
    return out


def load_metric_set(path: str | Path) -> MetricSet:
    """Load and validate a metrics YAML file. Raises SpecErrors with file:line:col."""
    return metric_set_from_document(load_yaml(path))


def parse_metric_set(text: str, path: str = "<string>") -> MetricSet:
    """Like :func:`load_metric_set`, from YAML text."""
    return metric_set_from_document(parse_yaml(text, path))


def metric_set(decls: dict[str, tuple]) -> MetricSet:
    """A metric set built in code: ``{name: (kind, window_s or None)}``, and for the derived
    kinds ``(kind, window_s or None, {"of": NAME, option: value})`` (tests, notebooks)."""
    out = []
    for name, (kind, w, *rest) in decls.items():
        if kind not in KINDS:
            raise ValueError(f"unknown metric kind {kind!r}")
        if KINDS[kind].windowed != (w is not None):
            raise ValueError(f"metric {name!r}: window_s is required exactly for windowed kinds")
        opts = dict(rest[0]) if rest else {}
        if KINDS[kind].book:
            if set(opts) != set(BOOK_OPTIONS.get(kind, ())):
                raise ValueError(f"metric {name!r}: kind {kind!r} takes exactly {BOOK_OPTIONS.get(kind, ())}")
            out.append(MetricSpec(name, kind, None, doc=kind, **_options(kind, opts)))
            continue
        if KINDS[kind].derived != bool(opts) or opts and opts.get("of") not in [m.name for m in out]:
            raise ValueError(f"metric {name!r}: a derived kind needs options with 'of' naming an "
                             "earlier metric, and only a derived kind takes options")
        for key, default in DERIVED_OPTIONS.get(kind, {}).items():
            if default is None and key not in opts:
                raise ValueError(f"metric {name!r}: {key} is required")
        out.append(MetricSpec(name, kind, None if w is None else float(w), doc=kind,
                              **_options(kind, opts) if opts else {}))
    return MetricSet(tuple(out))


def default_metrics_path() -> Path:
    """machines/metrics.yaml of the current workspace, else the one shipped with the package."""
    from framework.spec import workspace

    return workspace.machines_dir() / "metrics.yaml"
