"""The package's import structure: data flows one way, and no package imports another that
(directly or not) imports it back.

Every import counts: at module level, inside a function (a lazy import is still a dependency),
and a module named in a string handed to ``importlib.import_module``. The layers, lowest first,
are those of the picture in README.md's Layout section; a package may import only packages of a
lower layer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support import REPO

PACKAGE = REPO / "framework"

# Lowest first; the packages of one layer do not import each other.
LAYERS: list[set[str]] = [
    {"spec"},
    {"market"},
    {"state"},
    {"machines"},
    {"execution"},
    {"runtime"},
    {"diagrams"},
    {"audit"},
    {"dashboard", "sweep", "bench"},
    {"validate"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str:
    """The package (or top-level module) of ``framework.x.y``: ``x``; ``framework`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "framework"


def _imported(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, inside a function) for every import of a framework module in ``path``."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        nested = id(node) in in_function
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, nested) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module) if p)
            if target == "framework":  # from framework import x / from .. import x: x is the unit
                found += [(f"framework.{a.name}", node.lineno, nested) for a in node.names]
            elif node.module is None:  # from . import x: x is a module of this package
                found += [(f"{target}.{a.name}", node.lineno, nested) for a in node.names]
            else:
                found.append((target, node.lineno, nested))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.fullmatch(r"framework(\.\w+)+", node.value):
            found.append((node.value, node.lineno, nested))  # importlib.import_module("framework.x")
    return [f for f in found if f[0] == "framework" or f[0].startswith("framework.")]


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs, each with where it happens (``file:line``)."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "defaults" in path.relative_to(PACKAGE).parts:
            continue
        src = _unit(_module_name(path))
        for target, line, nested in _imported(path):
            dst = _unit(target)
            if dst in (src, "framework", "__version__"):  # the root package holds only the version
                continue
            where = f"{path.relative_to(REPO)}:{line}" + (" (inside a function)" if nested else "")
            edges.setdefault((src, dst), []).append(where)
    return edges


def _cycles(edges) -> list[list[str]]:
    """Strongly connected groups of more than one package (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    edges = import_graph()
    # runtime/run.py imports the fast path inside a function, relatively (from .blocks ...) and
    # the replay source from market (from ..market.replay import ...) inside a function too.
    assert any("inside a function" in w for w in edges[("runtime", "market")])
    assert ("cli", "spec") in edges


def test_every_package_is_in_a_layer():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")
             if "defaults" not in p.relative_to(PACKAGE).parts} - {"framework"}
    assert units - set(RANK) == set(), "a new package: add it to LAYERS here and to the README's picture"


def test_no_import_runs_against_the_data_flow():
    against = [f"{a} -> {b} at {', '.join(w)}" for (a, b), w in sorted(import_graph().items())
               if RANK[a] <= RANK[b]]
    assert against == [], "imports against the layers (lowest first: " + \
        " < ".join("/".join(sorted(x)) for x in LAYERS) + "):\n" + "\n".join(against)


def test_no_package_cycle():
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}) == [["a", "b", "c"]]


def test_the_readme_picture_lists_the_layers_in_this_order():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- import layers -->\n```\n(.*?)```", text, re.S)
    assert m, "README.md: the Layout section's import picture (after <!-- import layers -->) is missing"
    first = m.group(1).splitlines()[0]
    layers = [set(re.findall(r"\w+", part)) for part in first.split("◄")]
    assert layers == LAYERS


def _type_checking_lines(path: Path) -> set[int]:
    """Lines under ``if TYPE_CHECKING:``: imports that never run, naming a type for the reader."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            lines.update(n.lineno for stmt in node.body for n in ast.walk(stmt) if hasattr(n, "lineno"))
    return lines


def module_graph() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) module pairs inside the package, with where it happens (imports
    inside functions included, type-only ones left out)."""
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py") if "defaults" not in p.relative_to(PACKAGE).parts}
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "defaults" in path.relative_to(PACKAGE).parts:
            continue
        src = _module_name(path)
        type_only = _type_checking_lines(path)
        for target, line, _nested in _imported(path):
            if target not in modules or target == src or line in type_only:
                continue
            edges.setdefault((src, target), []).append(f"{path.relative_to(REPO)}:{line}")
    return edges


def test_no_module_cycle():
    """Not even inside one package: two modules that import each other (at any depth) cannot be
    read, tested or replaced one at a time."""
    edges = module_graph()
    # seen although it sits inside a function
    assert ("framework.execution.generators", "framework.execution.strategy") in edges
    assert _cycles(edges) == []
