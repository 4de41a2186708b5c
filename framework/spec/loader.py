"""YAML loading that remembers where every value came from.

PyYAML's safe loader builds plain Python data and forgets positions; errors must name the line
and column, so we compose the node tree ourselves and keep a map from each value's path
(a tuple of keys and indexes) to its (line, col). Duplicate keys are an error here: PyYAML
would silently keep the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError, SpecErrors

PathKey = tuple[Any, ...]


@dataclass
class Document:
    """A loaded YAML file: plain data plus the position of every node."""

    path: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def where(self, keys: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at ``keys``, or of its key when ``key``.

        Falls back to the nearest enclosing node when the exact one is absent (for example a
        missing required property is reported at the mapping that lacks it)."""
        table = self.key_positions if key else self.positions
        keys = tuple(keys)
        while keys:
            if keys in table:
                return table[keys]
            if keys in self.positions:
                return self.positions[keys]
            keys = keys[:-1]
        return self.positions.get((), (1, 1))

    def error(self, keys: PathKey, message: str, *, key: bool = False) -> SpecError:
        line, col = self.where(keys, key=key)
        return SpecError(self.path, line, col, message)


class _Builder:
    def __init__(self, doc: Document, errors: list[SpecError]):
        self.doc = doc
        self.errors = errors

    def build(self, node: yaml.Node, keys: PathKey) -> Any:
        self.doc.positions[keys] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build_scalar(key_node)
                if isinstance(key, (dict, list)):
                    self.errors.append(self._err(key_node, "a mapping key must be a plain scalar; expected a name"))
                    continue
                if key in out:
                    self.errors.append(self._err(
                        key_node, f"duplicate key '{key}'; expected each key once in a mapping "
                        f"(first at line {self.doc.key_positions[keys + (key,)][0]})"))
                    continue
                self.doc.key_positions[keys + (key,)] = (key_node.start_mark.line + 1,
                                                         key_node.start_mark.column + 1)
                out[key] = self.build(value_node, keys + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, keys + (i,)) for i, child in enumerate(node.value)]
        return self.build_scalar(node)

    def build_scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self.build(node, ("<key>",))
        return yaml.SafeLoader.construct_object(_ScalarLoader(), node)

    def _err(self, node: yaml.Node, message: str) -> SpecError:
        return SpecError(self.doc.path, node.start_mark.line + 1, node.start_mark.column + 1, message)


class _ScalarLoader(yaml.SafeLoader):
    """A SafeLoader used only to resolve scalar tags (int, float, bool, null, timestamps)."""

    def __init__(self) -> None:  # no stream needed for constructing a single scalar
        yaml.SafeLoader.__init__(self, "")


def parse_yaml(text: str, path: str) -> Document:
    """Parse YAML text into a Document; raises SpecErrors for syntax errors and duplicate keys."""
    doc = Document(path=path, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or "invalid YAML"
        raise SpecErrors([SpecError(path, line, col, f"YAML syntax error: {problem}; expected well-formed YAML")]) from None
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError(path, 0, 0, f"YAML error: {exc}; expected well-formed YAML")]) from None
    if node is None:
        raise SpecErrors([SpecError(path, 1, 1, "the file is empty; expected a YAML mapping")])
    errors: list[SpecError] = []
    try:
        doc.data = _Builder(doc, errors).build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise SpecErrors([SpecError(path, mark.line + 1 if mark else 0, mark.column + 1 if mark else 0,
                                    f"{exc.problem}; expected plain YAML values (safe loader)")]) from None
    if errors:
        raise SpecErrors(errors)
    return doc


def load_yaml(path: str | Path) -> Document:
    """Read and parse a YAML file, keeping positions. Raises SpecErrors on any problem."""
    path_str = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecErrors([SpecError(path_str, 0, 0, f"cannot read file ({exc.strerror}); expected a readable YAML file")]) from None
    except UnicodeDecodeError:
        raise SpecErrors([SpecError(path_str, 0, 0, "file is not UTF-8 text; expected a YAML file")]) from None
    return parse_yaml(text, path_str)
