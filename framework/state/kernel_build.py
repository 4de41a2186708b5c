"""Build the metric kernel ahead of time (``kernel_aot`` finds and loads what this writes):
``python -m framework.state.kernel_build``, run by ``scripts/setup``. Apart from ``kernel_aot``
because building needs the kernel's Python side, which itself loads the built module."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .kernel_aot import _PREFIX, _file_name, directories, find, key


def build(directory: Path | None = None) -> Path:
    """Compile ``kernel_numba``'s ``_run`` and ``_step`` into the module for the current key, in
    ``directory`` (by default the first writable of ``directories()``), and return its path.
    Older modules there are removed. Raises when it cannot be built."""
    from numba.core.types import Literal  # build time only: a run never imports numba for this

    with warnings.catch_warnings():
        # pycc is "pending deprecation" with no replacement released yet; the day it is gone,
        # this import fails and the JIT runs.
        warnings.simplefilter("ignore")
        from numba.pycc import CC

    from ..spec.metrics import default_metrics_path, load_metric_set
    from . import kernel_numba
    from .kernel import _RUN_ORDER, MetricKernel
    from .kernel_layout import _NO_TIME, TICK

    k = key()
    if k is None:
        raise RuntimeError("numba or llvmlite not found")
    directory = directory or _writable(directories())
    # The signatures are the ones the JIT compiles for the kernel's calls from Python: one no-op
    # tick through each entry point. _run first: _step's call of _run adds a second signature
    # (its start is the constant 0, typed as a literal), which must not be the exported one.
    kernel = MetricKernel(load_metric_set(default_metrics_path()).rolling)
    arrays = kernel.one_event_arrays()
    arrays["kind"][0] = TICK
    arrays["ts"][0] = _NO_TIME
    kernel_numba._run(0, *(arrays[name] for name in _RUN_ORDER))
    kernel_numba._step(kernel.table(), TICK, _NO_TIME, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
    entries = {"run": kernel_numba._run, "step": kernel_numba._step}

    name = _PREFIX + k
    build_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=directory))  # beside it: an atomic rename
    try:
        cc = CC(name)
        cc.output_dir = str(build_dir)
        for export, fn in entries.items():
            signature = fn.signatures[0]
            if any(isinstance(t, Literal) for t in signature):
                raise RuntimeError(f"_{export}'s first signature has a literal: {signature}")
            cc.export(export, signature)(fn.py_func)
        cc.compile()
        built = build_dir / _file_name(k)
        if not built.is_file():
            raise RuntimeError(f"pycc did not write {built.name}")
        for old in directory.glob(_PREFIX + "*"):
            old.unlink()
        path = directory / built.name
        os.replace(built, path)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return path


def _writable(candidates: list[Path]) -> Path:
    for d in candidates:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK | os.X_OK):
            return d
    raise RuntimeError("no writable directory among " + ", ".join(map(str, candidates)))


def main() -> int:
    """Build the module unless the current one is there; one line on stderr either way."""
    try:
        path = find() or build()
    except Exception as e:  # noqa: BLE001 (whatever went wrong, the JIT still works)
        reason = " ".join(str(e).split())  # one line
        print(f"could not compile the metric kernel ahead of time ({type(e).__name__}: {reason}); numba's "
              "JIT will be used", file=sys.stderr)
        return 1
    print(f"metric kernel compiled ahead of time: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
