"""A machine written for the diagram tests: every label shape (or/and clauses, a negated
comparison, a derived threshold, for:, after: with entries()), independent of the shipped
machines, loaded next to them as an extra machine nobody reads."""

from pathlib import Path

from framework.spec.machines import load_machine_set
from framework.spec.metrics import load_metric_set

GATE = """\
machine: gate
doc: A test gate.
reads: [metrics, risk]
params:
  wide_spread_bps: {value: 5.0, doc: Spread at or above this closes the gate.}
  stale_quote_ms: {value: 2000, doc: Quotes older than this close the gate.}
  exit_ratio: {value: 0.7, doc: Hysteresis factor.}
  hold_s: {value: 0.25, doc: How long a blow-out must last.}
  reopen_s: {value: 30, doc: Base wait before reopening.}
  reopen_max_s: {value: 600, doc: The longest wait.}
  window_s: {value: 1800, doc: Repeats counted in this window.}
initial: CLOSED
states:
  OPEN: {doc: Open for business.}
  CLOSED: {doc: Closed.}
  WAITING: {doc: Waiting it out.}
transitions:
  - from: OPEN
    to: CLOSED
    when: >-
      metrics.spread_bps >= params.wide_spread_bps
      or not (metrics.quote_age_ms < params.stale_quote_ms)
      or risk.stale
    doc: A wide spread or stale data closes at once.
  - from: OPEN
    to: CLOSED
    when: metrics.spread_to_median_60s >= 200
    for: params.hold_s
    doc: A blow-out, sustained.
  - from: CLOSED
    to: WAITING
    when: >-
      metrics.spread_bps < params.wide_spread_bps * params.exit_ratio
      and metrics.quote_age_ms < params.stale_quote_ms * params.exit_ratio
    doc: Calm again.
  - from: WAITING
    to: CLOSED
    when: metrics.trade_rate_hz_10s > 100
    doc: A burst while waiting.
  - from: WAITING
    to: OPEN
    after: min(params.reopen_s * 2 ** max(entries('CLOSED', params.window_s) - 1, 0), params.reopen_max_s)
    doc: Wait, longer after repeats.
"""


def load_with(machines_dir: Path, *extra: Path):
    """The machines in ``machines_dir`` (shipped names) plus ``extra`` machine files."""
    metrics = load_metric_set(machines_dir / "metrics.yaml")
    shipped = [machines_dir / f"{n}.yaml" for n in ("regime", "permission", "health")]
    return load_machine_set([*shipped, *extra], machines_dir / "decision.yaml", metrics.names)
