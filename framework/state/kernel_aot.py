"""The metric kernel compiled ahead of time: an extension module that numba's pycc builds from
the very functions numba's JIT compiles (``kernel_numba``), so that a process which finds one
never imports numba (about 0.15 s) and whose first call loads nothing (numba's first call of any
compiled function sets up its code generator, about 0.25 s even when the code comes from its
on-disk cache).

The module's file name carries a key of everything that could make it stale: the source of
``kernel_numba`` and ``kernel_layout``, numba's and llvmlite's version files, and the Python
build and platform. ``load`` takes only a module with the current key; without one the kernel
runs on numba's JIT exactly as before. The code is compiled for the architecture's generic CPU
(pycc's default), so a module copied to another machine of the same platform still runs.

``scripts/setup`` builds it (``python -m framework.state.kernel_build``). A first JIT compile does
not: building takes the JIT's compile time again plus a C compiler's run (about 20 s here), it
needs a C compiler and setuptools where a run needs neither, and parallel processes (sweep
workers) would all build it at once; a run that finds no module only loses the start-up time.

It lives where numba keeps its cache: in ``__pycache__`` beside this package when writable,
else in the user's cache directory (``$XDG_CACHE_HOME/execlab``, by default ``~/.cache/execlab``);
``EXECLAB_KERNEL_CACHE_DIR`` names another directory instead of both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

ENV_DIR = "EXECLAB_KERNEL_CACHE_DIR"
_PREFIX = "metric_kernel_"
_HERE = Path(__file__).parent
_SOURCES = ("kernel_numba.py", "kernel_layout.py")  # what the compiled code is built from


def key() -> str | None:
    """The key of the module that matches this source, numba and Python; None when numba or
    llvmlite cannot be found (then there is no JIT to match either)."""
    h = hashlib.sha256()
    try:
        for name in _SOURCES:
            h.update((_HERE / name).read_bytes())
        for package in ("numba", "llvmlite"):
            # Found without importing it: its version file holds the version and revision.
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                return None
            h.update(Path(spec.origin).with_name("_version.py").read_bytes())
    except OSError:
        return None
    for part in (sys.version, sys.platform, EXTENSION_SUFFIXES[0]):
        h.update(part.encode())
    return h.hexdigest()[:20]


def directories() -> list[Path]:
    """Where the module is looked for, in order; it is built in the first writable one."""
    override = os.environ.get(ENV_DIR)
    if override:
        return [Path(override)]
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return [_HERE / "__pycache__", Path(cache_home) / "execlab"]


def _file_name(k: str) -> str:
    return _PREFIX + k + EXTENSION_SUFFIXES[0]


def find() -> Path | None:
    """The path of the module with the current key, None if there is none."""
    k = key()
    if k is None:
        return None
    for d in directories():
        path = d / _file_name(k)
        if path.is_file():
            return path
    return None


def load(path: Path | None = None) -> ModuleType | None:
    """The compiled module (functions ``run`` and ``step``, as ``kernel_numba``'s ``_run`` and
    ``_step``) from ``path``, by default the one with the current key; None if there is none or
    it cannot be loaded."""
    path = path or find()
    if path is None:
        return None
    name = path.name[:-len(EXTENSION_SUFFIXES[0])]
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError:  # truncated, or built for something the key does not see: the JIT runs
        return None
    return module
