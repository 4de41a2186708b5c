"""Sweep files (``execlab sweep SWEEP.yaml``): a base session, recordings, params to vary, an
objective and constraints over run figures. Validated like every spec: JSON Schema, then what a
schema cannot say (the base config loads, every param exists, every recording exists, every
expression compiles against the figures), all errors at once as ``file:line:col``.
"""

from __future__ import annotations

import ast
import gzip
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec import schema, workspace
from ..spec.errors import SpecError, SpecErrors
from ..spec.expr import NUM, Binding, Env, Expr, ExprError, InputType, compile_expr
from ..spec.loader import Document, load_yaml
from ..spec.machines import param_catalogue
from ..spec.session import NOT_PIPELINE_SPECS, Session, load_session
from .figures import BUILTIN_NAMESPACES, catalogue

RECORDING_SUFFIXES = (".frames.gz", ".frames", ".csv", ".csv.gz", ".jsonl", ".jsonl.gz")
LABELS_SUFFIX = ".labels.json"
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


@dataclass(frozen=True)
class Recording:
    path: Path
    symbols: tuple[str, ...]
    labels: Path | None = None


@dataclass
class Objective:
    name: str
    text: str
    maximize: bool
    expr: Expr


@dataclass
class Param:
    name: str  # machine.param
    values: list[Any] | None = None  # an explicit list
    low: float | None = None
    high: float | None = None
    step: float | None = None
    count: int | None = None
    log: bool = False
    integer: bool = False

    def grid(self) -> list[Any]:
        """The values a grid tries."""
        if self.values is not None:
            return list(self.values)
        lo, hi = float(self.low), float(self.high)
        if self.step:
            n = int(math.floor((hi - lo) / self.step + 1e-9)) + 1
            values = [lo + i * self.step for i in range(n)]
        else:
            n = self.count or 5
            values = ([lo * (hi / lo) ** (i / (n - 1)) for i in range(n)] if self.log and lo > 0
                      else [lo + (hi - lo) * i / (n - 1) for i in range(n)])
        return list(dict.fromkeys(self.cast(v) for v in values))

    def cast(self, v: Any) -> Any:
        if isinstance(v, bool) or self.values is not None:
            return v
        return int(round(v)) if self.integer else round(float(v), 12)


@dataclass
class Sweep:
    path: str
    name: str
    doc: str
    base: Session
    recordings: list[Recording]
    sets: dict[str, Any]
    params: list[Param]
    method: str
    trials: int | None
    seed: int
    batch: int
    objectives: list[Objective]
    constraints: list[tuple[str, Expr]]
    aggregate: str
    warmup_s: float
    flap_s: float
    out: Path
    figure_names: list[str] = field(default_factory=list)

    def figure_reads(self) -> list[str]:
        """Every figure an objective or a constraint reads."""
        reads = [r for o in self.objectives for r in o.expr.reads]
        reads += [r for _, e in self.constraints for r in e.reads]
        return list(dict.fromkeys(reads))


def _dotted_names(text: str) -> list[str]:
    """``ns.key`` names an expression mentions (syntax only; compile_expr checks the rest)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return []
    return [f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)]


def figure_env(known: list[str], texts: list[str]) -> tuple[Env, list[str]]:
    """The expression env: the built-in figures, plus names of other namespaces an expression
    uses (figures summary.json will carry, such as a scorecard; checked when a trial ends)."""
    inputs = {n: InputType(NUM) for n in known}
    extra = []
    for text in texts:
        for name in _dotted_names(text):
            ns = name.split(".", 1)[0]
            if name not in inputs and ns not in _builtin_namespaces(known) and ns != "params":
                inputs[name] = InputType(NUM)
                extra.append(name)
    return Env(inputs=inputs), extra


def _builtin_namespaces(known: list[str]) -> set[str]:
    return set(BUILTIN_NAMESPACES) | {n.split(".", 1)[0] for n in known}


def evaluate(expr: Expr, figures: dict[str, float]) -> Any:
    """The value of a compiled expression over a trial's figures (a missing figure is NaN)."""
    spaces: dict[str, dict[str, Any]] = {}
    for name in expr.reads:
        ns, key = name.split(".", 1)
        value = figures.get(name)
        spaces.setdefault(ns, {})[key] = float("nan") if value is None else value
    return expr.bind(Binding(namespaces=spaces))()


def _expr_error(doc: Document, keys: tuple, text: str, exc: ExprError, what: str) -> SpecError:
    line, col = doc.where(keys)
    if "\n" not in text:
        raw = doc_line(doc, line)
        offset = raw.find(text.strip(), col - 1) if raw is not None else -1
        col = (offset + 1 if offset >= 0 else col) + exc.col
    return SpecError(doc.path, line, col, f"{what}: {exc.message}")


def doc_line(doc: Document, line: int) -> str | None:
    try:
        return Path(doc.path).read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, IndexError):
        return None


SYMBOL_SCAN_LINES = 2000


def detect_symbols(path: Path) -> tuple[str, ...]:
    """The symbols a recording holds, from the ``s`` field of its first frames (frame files),
    or the file name's prefix (Binance dumps: BTCUSDT-trades-...); () when it cannot tell."""
    name = path.name
    if ".frames" in name:
        found: dict[str, None] = {}
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as f:
                for _, line in zip(range(SYMBOL_SCAN_LINES), f, strict=False):
                    _, _, frame = line.partition(" ")
                    try:
                        obj = json.loads(frame)
                    except ValueError:
                        continue
                    data = obj.get("data", obj) if isinstance(obj, dict) else None
                    sym = data.get("s") if isinstance(data, dict) else None
                    if isinstance(sym, str) and SYMBOL_RE.match(sym):
                        found[sym] = None
        except (OSError, EOFError):
            return ()
        return tuple(found)
    prefix = name.split("-", 1)[0]
    return (prefix,) if SYMBOL_RE.match(prefix) and "-" in name else ()


def _recordings(doc: Document, base: Session, errors: list[SpecError]) -> list[Recording]:
    folder = Path(doc.path).parent
    given = doc.data.get("recordings")
    sweep_symbols = tuple(doc.data.get("symbols") or ())
    if given is None:
        src = base.source
        if src["kind"] != "replay":
            errors.append(doc.error((), f"the base config's source is {src['kind']}; expected recordings: in the sweep file"))
            return []
        given = [str(base.resolve(p)) for p in (src.get("paths") or [src["path"]])]
    out: list[Recording] = []
    for i, item in enumerate(given):
        entry = {"path": item} if isinstance(item, str) else item
        keys = ("recordings", i) if doc.data.get("recordings") is not None else ()
        path = Path(entry["path"])
        path = path if path.is_absolute() else (folder / path).resolve()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(RECORDING_SUFFIXES))
            if not files:
                errors.append(doc.error(keys, f"folder {path} holds no recording; expected files ending in {', '.join(RECORDING_SUFFIXES)}"))
        elif path.is_file():
            files = [path]
        else:
            errors.append(doc.error(keys, f"recording {path} does not exist; expected a file or a folder relative to {folder}"))
            continue
        labels_given = entry.get("labels")
        for f in files:
            if labels_given:
                labels = Path(labels_given)
                labels = labels if labels.is_absolute() else (folder / labels).resolve()
                if not labels.is_file():
                    errors.append(doc.error(keys + ("labels",), f"labels file {labels} does not exist; expected a JSON sidecar"))
                    labels = None
            else:
                # <stem>.labels.json or <file name>.labels.json beside the recording
                sidecars = [f.with_name(_stem(f.name) + LABELS_SUFFIX), f.with_name(f.name + LABELS_SUFFIX)]
                labels = next((c for c in sidecars if c.is_file()), None)
            # The recording's own symbols unless the file says which; the base config's when
            # the recording cannot tell.
            symbols = tuple(entry.get("symbols") or sweep_symbols or detect_symbols(f) or base.symbols)
            out.append(Recording(f, symbols, labels))
    return out


def _stem(name: str) -> str:
    for suffix in sorted(RECORDING_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _params(doc: Document, base: Session, errors: list[SpecError]) -> tuple[list[Param], dict[str, Any]]:
    machine_files = [p for k, p in base.spec_paths.items() if k not in NOT_PIPELINE_SPECS]
    known = param_catalogue(machine_files, base.spec_paths["decision"])

    def check(section: str, name: str) -> bool:
        machine, param = name.split(".", 1)
        if machine not in known:
            errors.append(doc.error((section, name), f"'{name}': no machine or table named '{machine}'; expected one of: {', '.join(sorted(known))}", key=True))
            return False
        if param not in known[machine]:
            errors.append(doc.error((section, name), f"'{name}': {machine} has no param '{param}'; expected one of: {', '.join(sorted(known[machine]))}", key=True))
            return False
        return True

    params = []
    for name, spec in (doc.data.get("params") or {}).items():
        if not check("params", name):
            continue
        if "values" in spec:
            params.append(Param(name, values=list(spec["values"])))
            continue
        lo, hi = spec["low"], spec["high"]
        if hi < lo:
            errors.append(doc.error(("params", name, "high"), f"high {hi} is below low {lo}; expected high >= low"))
            continue
        if spec.get("log") and lo <= 0:
            errors.append(doc.error(("params", name, "low"), f"low {lo} on a log scale; expected a positive low"))
            continue
        params.append(Param(name, low=lo, high=hi, step=spec.get("step"), count=spec.get("count"),
                            log=bool(spec.get("log")), integer=bool(spec.get("int"))))
    sets = {}
    for name, value in (doc.data.get("sets") or {}).items():
        if check("sets", name):
            sets[name] = value
    for p in params:
        if p.name in sets:
            errors.append(doc.error(("sets", p.name), f"'{p.name}' is both fixed in sets and varied in params; expected one of the two", key=True))
    return params, sets


def _machines_and_horizons(base: Session) -> tuple[dict[str, list[str]], list[float]]:
    machines = {m.name: list(m.states) for m in base.machine_set.machines}
    horizons = list((base.section("execution").get("markout_horizons_s")) or [])
    return machines, horizons


def load_sweep(path: str | Path) -> Sweep:
    """Load and check a sweep file; raise SpecErrors with every problem found."""
    path = str(path)
    doc = load_yaml(path)
    errors = schema.check(doc, "sweep")
    if errors:
        raise SpecErrors(errors)
    data = doc.data
    folder = Path(path).parent
    base_path = Path(data["base"])
    base_path = base_path if base_path.is_absolute() else (folder / base_path).resolve()
    if not base_path.is_file():
        raise SpecErrors([doc.error(("base",), f"base config {base_path} does not exist; expected a session config relative to {folder}")])
    try:
        base = load_session(base_path)
    except SpecErrors as exc:
        raise SpecErrors([doc.error(("base",), f"base config {base_path} is invalid; expected a valid session config"),
                          *exc.errors]) from None
    recordings = _recordings(doc, base, errors)
    params, sets = _params(doc, base, errors)
    search = data.get("search") or {}
    method = search.get("method", "grid")
    if method in ("random", "optuna") and "trials" not in search:
        errors.append(doc.error(("search",), f"search method {method} needs a number of points; expected search.trials"))
    if method == "grid" and "trials" in search:
        errors.append(doc.error(("search", "trials"), "a grid tries every combination; expected no trials: with method grid"))
    if method == "grid":
        for p in params:
            if p.values is None and not p.step and not p.count:
                errors.append(doc.error(("params", p.name), f"a grid over '{p.name}' needs its values; expected values:, step: or count:", key=True))

    machines, horizons = _machines_and_horizons(base)
    known = catalogue(machines, horizons)
    objective_specs = data["objective"] if isinstance(data["objective"], list) else [data["objective"]]
    okeys = [("objective", i) for i in range(len(objective_specs))] if isinstance(data["objective"], list) else [("objective",)]
    texts = [o.get("maximize") or o.get("minimize") for o in objective_specs] + list(data.get("constraints") or [])
    env, _extra = figure_env(known, texts)
    objectives: list[Objective] = []
    for keys, o in zip(okeys, objective_specs, strict=True):
        direction = "maximize" if "maximize" in o else "minimize"
        text = o[direction]
        try:
            expr = compile_expr(text, env)
        except ExprError as exc:
            errors.append(_expr_error(doc, keys + (direction,), text, exc, "objective"))
            continue
        if expr.type.kind != NUM:
            errors.append(doc.error(keys + (direction,), f"objective '{text}' is a {expr.type.kind}; expected a number"))
            continue
        default_name = "objective" if len(objective_specs) == 1 else f"objective{len(objectives) + 1}"
        objectives.append(Objective(o.get("name") or default_name, text, direction == "maximize", expr))
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        errors.append(doc.error(("objective",), f"objective names repeat ({', '.join(names)}); expected distinct names"))
    constraints = []
    for i, text in enumerate(data.get("constraints") or []):
        try:
            expr = compile_expr(text, env)
        except ExprError as exc:
            errors.append(_expr_error(doc, ("constraints", i), text, exc, "constraint"))
            continue
        if expr.type.kind != "bool":
            errors.append(doc.error(("constraints", i), f"constraint '{text}' is a {expr.type.kind}; expected a condition (true or false)"))
            continue
        constraints.append((text, expr))
    if errors:
        raise SpecErrors(errors)
    figures = data.get("figures") or {}
    out = Path(data["out"]) if data.get("out") else (workspace.of_file(path) or Path.cwd()) / "runs" / "sweeps" / data["sweep"]
    out = out if out.is_absolute() else (folder / out).resolve()
    return Sweep(path=path, name=data["sweep"], doc=data.get("doc", ""), base=base, recordings=recordings,
                 sets=sets, params=params, method=method, trials=search.get("trials"),
                 seed=int(search.get("seed", 0)), batch=int(search.get("batch", 4)),
                 objectives=objectives, constraints=constraints,
                 aggregate=data.get("aggregate", "mean"), warmup_s=float(figures.get("warmup_s", 0.0)),
                 flap_s=float(figures.get("flap_s", 1.0)), out=out, figure_names=known)
