"""The metric kernel compiled ahead of time (``framework.state.kernel_aot``) against numba's JIT
of the same functions (``kernel_numba``): the same events give the same bits everywhere, a
block at a time (every row, then every state array) and one event at a time (every value and
counter after every event, then every state array). NaNs are compared by their bits too.

The module is the installed one when it matches this source, else one built for the test (it
takes about 20 s); the tests are skipped only when it cannot be built on this machine. The
events are hypothesis' streams of ``test_kernel`` and the shipped recordings with ticks.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import build_events
from test_kernel import (
    DEFAULT,
    FEW,
    MANY,
    MS,
    RECORDINGS,
    blocks,
    columns,
    quote,
    run_blocks,
    step,
    trade,
)

from framework.bench.measure import with_ticks
from framework.market.decode import FrameDecoder
from framework.market.events import FeedEvent
from framework.market.replay import read_frames
from framework.state import kernel, kernel_aot, kernel_build, kernel_numba
from framework.state.kernel import KernelMetrics, MetricKernel

COUNTERS = ("late_events", "invalid_events", "gaps", "quotes", "trades")


@pytest.fixture(scope="module")
def aot(tmp_path_factory):
    path = kernel_aot.find()
    if path is None:
        try:
            path = kernel_build.build(tmp_path_factory.mktemp("aot"))
        except Exception as e:  # noqa: BLE001 (any reason it cannot be built is a reason to skip)
            pytest.skip(f"the ahead-of-time kernel cannot be built on this machine: {type(e).__name__}: {e}")
    module = kernel_aot.load(path)
    assert module is not None, path
    return module


@contextmanager
def compiled_with(run, step_fn):
    """``kernel``'s Python side running on these compiled functions."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel, "_run", run)
        mp.setattr(kernel, "_step", step_fn)
        yield


def state(k: MetricKernel) -> dict[str, bytes]:
    return {name: a.tobytes() for name, a in k.one_event_arrays().items()}


def outputs(run, step_fn, ms, events: list, sizes) -> dict:
    """What the kernel gives for ``events`` on these compiled functions, as bytes."""
    with compiled_with(run, step_fn):
        block = MetricKernel(ms)
        # The block path gets only this symbol's feed events (the live path ignores the others).
        mine = [ev for ev in events if not (type(ev) is FeedEvent and ev.symbol == "OTHER")]
        rows = run_blocks(block, columns(mine), sizes)
        live = KernelMetrics(ms, "X")
        after = []
        for ev in events:
            live.on_event(ev)
            values = list(live.values.values())
            after.append(struct.pack(f"{len(values)}d", *values)
                         + struct.pack("6q", live.now_ns or 0, *(getattr(live, c) for c in COUNTERS)))
        return {"block rows": rows.tobytes(), "block state": state(block),
                "values after each event": after, "live state": state(live._kernel)}


def assert_same_outputs(aot, ms, events: list, sizes) -> None:
    got = outputs(aot.run, aot.step, ms, events, sizes)
    want = outputs(kernel_numba._run, kernel_numba._step, ms, events, sizes)
    for what in ("block state", "live state"):
        differ = [name for name in want[what] if got[what][name] != want[what][name]]
        assert not differ, f"{what}: {differ} differ"
    assert got["block rows"] == want["block rows"]
    a, b = got["values after each event"], want["values after each event"]
    differ = [i for i in range(len(b)) if a[i] != b[i]]
    assert not differ, f"one event at a time: values differ after event {differ[0]} {events[differ[0]]!r}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=150), blocks, st.sampled_from([MANY, FEW, DEFAULT]))
def test_random_streams_give_the_jits_bits(aot, steps, sizes, ms):
    assert_same_outputs(aot, ms, build_events(steps), sizes)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2).map(lambda x: x * MS), st.one_of(quote, trade)),
                min_size=100, max_size=600), blocks)
def test_dense_bursts_growing_the_rings_give_the_jits_bits(aot, steps, sizes):
    assert_same_outputs(aot, MANY, build_events(steps), sizes)


@pytest.mark.parametrize("path", RECORDINGS)
def test_recordings_give_the_jits_bits(aot, path):
    decode = FrameDecoder().decode
    events = [ev for ev in (decode(raw, ns) for ns, raw in read_frames(path)) if ev is not None]
    events = with_ticks(events, 100 * MS)
    assert len(events) > 10_000
    assert_same_outputs(aot, DEFAULT, events, [1, 7, 1000, 5000])


def imports_numba(cache_dir) -> bool:
    """Whether a process loading the kernel and replaying a few events imports numba, with the
    ahead-of-time module looked for in ``cache_dir`` only."""
    code = ("import sys, numpy as np\n"
            "from framework.state import default_metrics_path, load_metric_set\n"
            "from framework.state.kernel import MetricKernel, QUOTE\n"
            "k = MetricKernel(load_metric_set(default_metrics_path()).rolling)\n"
            "one = np.ones(3)\n"
            "k.run(np.full(3, QUOTE, np.int8), np.arange(3), one, one, one * 2, one, one, one, one > 2)\n"
            "k.step(QUOTE, 5, 1.0, 1.0, 2.0, 1.0, 0.0, 0.0, False)\n"
            "assert k.quotes == 4, k.quotes\n"
            "print('numba' in sys.modules)\n")
    env = {**os.environ, kernel_aot.ENV_DIR: str(cache_dir)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "True"


def test_a_process_with_the_module_never_imports_numba_and_one_without_uses_the_jit(aot, tmp_path):
    with_module = tmp_path / "with"
    with_module.mkdir()
    (with_module / os.path.basename(aot.__file__)).symlink_to(aot.__file__)
    assert not imports_numba(with_module)
    stale = tmp_path / "stale"  # a module built for another source: not taken
    stale.mkdir()
    (stale / os.path.basename(aot.__file__).replace(kernel_aot.key(), "0" * 20)).symlink_to(aot.__file__)
    assert imports_numba(stale)
