"""YAML loading that remembers where every value came from, within fixed bounds.

PyYAML's safe loader builds plain Python data and forgets positions; errors must name the line
and column, so we compose the node tree ourselves and keep a map from each value's path
(a tuple of keys and indexes) to its (line, col). Duplicate keys are an error here: PyYAML
would silently keep the last one.

A spec file is small and hand-written, so anything far beyond that is refused before it can
cost time or memory: the document size, the nesting depth (PyYAML composes recursively), the
number of aliases and the size of the data once aliases are expanded (a "billion laughs" file
is a few hundred bytes), and an alias inside the node it names (a cycle). ``.nan`` is refused
in every file: no field of any spec means "not a number". Infinity is left to the schemas,
which refuse it unless a field says it allows it.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

from .errors import SpecError, SpecErrors

PathKey = tuple[Any, ...]

# Generous against the shipped specs (the largest is 6 kB with under 200 values, 8 levels deep),
# small enough that a hostile file is refused in a fraction of a second.
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = 64  # nesting of mappings and sequences
MAX_ALIASES = 256
MAX_EXPANDED_NODES = 10_000  # keys and values once every alias is expanded


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


def expr_error(doc: Document, keys: tuple, exc: Any, what: str) -> SpecError:
    """A spec error at an expression of ``doc`` (``exc``: an ``ExprError``, with the column
    in the expression's text where it went wrong)."""
    line, col = doc.where(keys)
    text = _get(doc.data, keys)
    # Point into the expression when it sits on one line of the file.
    if isinstance(text, str) and "\n" not in text:
        col += exc.col
    return SpecError(doc.path, line, col, f"{what}: {exc.message}")


def _get(data: Any, keys: tuple) -> Any:
    for k in keys:
        try:
            data = data[k]
        except (KeyError, IndexError, TypeError):
            return None
    return data


class _Builder:
    def __init__(self, doc: Document, errors: list[SpecError]):
        self.doc = doc
        self.errors = errors
        self.scalars = _ScalarLoader()  # one for the document: making one per scalar cost 0.1 ms each

    def build(self, node: yaml.Node, keys: PathKey) -> Any:
        self.doc.positions[keys] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build_scalar(key_node)
                if isinstance(key, (dict, list)):
                    self.errors.append(self._err(key_node, "a mapping key must be a plain scalar; expected a name"))
                    continue
                if not isinstance(key, str):
                    # Every key in a spec is a name; YAML reads ON, no, 1 or an empty key as
                    # true, false, a number or null, which would fail later far from here.
                    text = key_node.value if isinstance(key_node, yaml.ScalarNode) else ""
                    self.errors.append(self._err(key_node, f"the key {text!r} reads as {key!r}, not a name; "
                                                 f"expected a name (quote it: '{text}')"))
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
        value = yaml.SafeLoader.construct_object(self.scalars, node)
        if isinstance(value, float) and math.isnan(value):
            self.errors.append(self._err(node, f"{node.value!r} is not a number (NaN); expected a finite number"))
        return value

    def _err(self, node: yaml.Node, message: str) -> SpecError:
        return SpecError(self.doc.path, node.start_mark.line + 1, node.start_mark.column + 1, message)


class _ScalarLoader(yaml.SafeLoader):
    """A SafeLoader used only to resolve scalar tags (int, float, bool, null, timestamps)."""

    def __init__(self) -> None:  # no stream needed for constructing a single scalar
        yaml.SafeLoader.__init__(self, "")


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer refusing deep nesting, many aliases, large expansions and
    self-referencing aliases, each at the mark of the node that crosses the bound.

    ``_sizes`` holds the expanded size (values, counting what aliases stand for) of every
    finished node; an alias to a node that has no size yet points into its own ancestor."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._aliases = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    @staticmethod
    def _refuse(mark: yaml.Mark, message: str) -> yaml.composer.ComposerError:
        return yaml.composer.ComposerError(None, None, message, mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._refuse(event.start_mark, f"more than {MAX_ALIASES} aliases; expected a "
                                   "hand-written spec (write the values out)")
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise self._refuse(event.start_mark, f"alias *{event.anchor} refers to a node "
                                       "that contains it; expected an alias to a finished node")
                self._expanded += size
                self._check_expanded(event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels; expected "
                               "a flatter spec")
        start = self._expanded
        self._expanded += 1
        self._check_expanded(event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._sizes[id(node)] = self._expanded - start
        return node

    def _check_expanded(self, mark: yaml.Mark) -> None:
        if self._expanded > MAX_EXPANDED_NODES:
            raise self._refuse(mark, f"the document expands to more than {MAX_EXPANDED_NODES} "
                               "values (aliases included); expected a hand-written spec")


class _PureLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _BoundedComposer,
                  yaml.resolver.Resolver):
    """The bounded composer on PyYAML's pure-Python parser (when libyaml is not installed)."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        # The scanner keeps every open bracket as a possible key and re-checks them all on each
        # token, so thousands of "[" cost seconds before the composer sees any depth: stop here.
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nesting deeper than {MAX_DEPTH} levels; "
                                            "expected a flatter spec", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


try:  # libyaml's parser is some ten times faster, which keeps even a hostile file well under a second
    from yaml._yaml import CParser

    class _FastLoader(_BoundedComposer, CParser, yaml.resolver.Resolver):
        """The bounded composer on libyaml's event parser."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _BoundedLoader: type = _FastLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _BoundedLoader = _PureLoader


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _too_large(path: str, text: str | bytes, size: int) -> SpecErrors:
    cut = text[:MAX_DOCUMENT_BYTES]
    newline = "\n" if isinstance(cut, str) else b"\n"
    line = cut.count(newline) + 1
    return SpecErrors([SpecError(path, line, 1, f"the file is {size} bytes, larger than a spec can be; "
                                 f"expected at most {MAX_DOCUMENT_BYTES} bytes")])


def parse_yaml(text: str, path: str) -> Document:
    """Parse YAML text into a Document; raises SpecErrors for syntax errors, duplicate keys,
    NaN and anything beyond the loader's bounds."""
    doc = Document(path=path, data=None)
    if len(text) > MAX_DOCUMENT_BYTES:
        raise _too_large(path, text, len(text.encode("utf-8", "surrogatepass")))
    loader = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if "; expected" in problem:  # one of our bounds
            what = problem
        elif "nesting depth" in problem:  # libyaml's own bound, reached while it scans ahead
            what = f"nesting deeper than {MAX_DEPTH} levels; expected a flatter spec"
        else:
            what = f"YAML syntax error: {problem}; expected well-formed YAML"
        raise SpecErrors([SpecError(path, line, col, what)]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or b"\0")
        raise SpecErrors([SpecError(path, line, col, f"character U+{char:04X} is not allowed in YAML "
                                    "(a control or binary byte); expected printable text")]) from None
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError(path, 1, 1, f"YAML error: {exc}; expected well-formed YAML")]) from None
    except RecursionError:  # cannot happen within MAX_DEPTH; a last line of defence
        raise SpecErrors([SpecError(path, 1, 1, "the document nests too deeply; expected a flatter spec")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise SpecErrors([SpecError(path, 1, 1, "the file is empty; expected a YAML mapping")])
    errors: list[SpecError] = []
    try:
        doc.data = _Builder(doc, errors).build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise SpecErrors([SpecError(path, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                                    f"{exc.problem}; expected plain YAML values (safe loader)")]) from None
    if errors:
        raise SpecErrors(errors)
    return doc


def decode_text(data: bytes, path: str) -> str:
    """UTF-8 text of a spec file; a bad byte is reported at its own line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[:exc.start].decode("utf-8")
        line, col = _position(good, len(good))
        raise SpecErrors([SpecError(path, line, col, f"byte 0x{data[exc.start]:02x} is not UTF-8 text "
                                    "(a binary or Latin-1 file?); expected a UTF-8 YAML file")]) from None


def read_spec_text(path: str | Path) -> str:
    """The text of a spec file, refused when unreadable, too large or not UTF-8."""
    path_str = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device never end
            raise SpecErrors([SpecError(path_str, 1, 1, "not a regular file; expected a YAML file")])
        with open(path, "rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
            size = len(data) if len(data) <= MAX_DOCUMENT_BYTES else max(len(data), _size(f))
    except OSError as exc:
        raise SpecErrors([SpecError(path_str, 0, 0, f"cannot read file ({exc.strerror or exc}); expected a readable YAML file")]) from None
    if size > MAX_DOCUMENT_BYTES:
        raise _too_large(path_str, data, size)
    return decode_text(data, path_str)


def _size(f: Any) -> int:
    try:
        return os.fstat(f.fileno()).st_size
    except OSError:
        return MAX_DOCUMENT_BYTES + 1


def load_yaml(path: str | Path) -> Document:
    """Read and parse a YAML file, keeping positions. Raises SpecErrors on any problem."""
    return parse_yaml(read_spec_text(path), str(path))
