"""Calibration from data: per-symbol regime params proposed from recorded metric distributions.

Each recording is replayed through the state engine (one row of metrics per second); after the
baselines exist, the ratio of each intensity metric to its own baseline is collected per
symbol, and each param in ``RULES`` is proposed as a quantile of its ratio: the level the
symbol exceeds only that share of the time. The proposal is a session-config overlay
(``symbols:`` entries with ``overrides``) whose comments name the quantile and the recordings;
``compare`` replays each recording with the current and the proposed params and reports the
share of time each machine spent in each state.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..market.replay import open_replay
from ..runtime.run import run_session
from ..spec.session import Session, load_session
from ..state.series import sample

NS = 1_000_000_000

# param <- quantile of (metric / its baseline): what each multiplier of regime.yaml means
RULES: tuple[tuple[str, str, str, float], ...] = (
    ("regime.fast_rate_x", "trade_rate_hz_10s", "trade_rate_base_hz", 0.95),
    ("regime.fast_move_x", "mid_move_bps_1s", "move_base_bps_1s", 0.99),
    ("regime.fast_vol_x", "realized_vol_bps_10s", "vol_base_bps_10s", 0.95),
    ("regime.trend_x", "mid_move_bps_30s", "move_base_bps_30s", 0.95),
)


def ratios(session: Session, recordings: Iterable[str | Path], symbols: list[str] | None
           ) -> dict[str, dict[str, Any]]:
    """symbol -> {"recordings": [...], "ratios": {param: np.ndarray}} from 1 s samples."""
    names = session.metric_set.names
    idx = {n: i for i, n in enumerate(names)}
    out: dict[str, dict[str, Any]] = {}
    for rec in recordings:
        rows: dict[str, list[list[float]]] = {}
        for _, sym, values in sample(open_replay(rec, symbols), session.metric_set, NS):
            if symbols is None or sym in symbols:
                rows.setdefault(sym, []).append(values)
        for sym, table in rows.items():
            arr = np.asarray(table, dtype=float)
            entry = out.setdefault(sym, {"recordings": [], "ratios": {}})
            entry["recordings"].append(str(rec))
            for param, metric, base, _ in RULES:
                num, den = arr[:, idx[metric]], arr[:, idx[base]]
                ok = np.isfinite(num) & np.isfinite(den) & (den > 0)
                prev = entry["ratios"].get(param, np.empty(0))
                entry["ratios"][param] = np.concatenate([prev, num[ok] / den[ok]])
    return out


def propose(data: dict[str, dict[str, Any]]) -> dict[str, dict[str, tuple[float, str]]]:
    """symbol -> param -> (value, why)."""
    out: dict[str, dict[str, tuple[float, str]]] = {}
    for sym, entry in data.items():
        recs = ", ".join(Path(r).name for r in entry["recordings"])
        for param, metric, base, q in RULES:
            r = entry["ratios"].get(param)
            if r is None or len(r) < 30:  # too little after the warm-up to say anything
                continue
            value = round(float(np.quantile(r, q)), 2)
            out.setdefault(sym, {})[param] = (
                value, f"p{q * 100:g} of {metric} / {base} over {len(r)} s of {recs}")
    return out


def overlay_text(proposal: dict[str, dict[str, tuple[float, str]]], recordings: list[str]) -> str:
    lines = ["# Proposed by execlab calibrate from " + ", ".join(Path(r).name for r in recordings) + ".",
             "# Merge into a session config: each symbol's own overrides (docs/sessions.md).",
             "symbols:"]
    for sym, params in proposal.items():
        lines += [f"  - symbol: {sym}", "    overrides:"]
        for param, (value, why) in params.items():
            lines.append(f"      {param}: {value}  # {why}")
    return "\n".join(lines) + "\n"


def with_overrides(session: Session, symbol: str, overrides: dict[str, float] | None, recording: str) -> Session:
    """The session replaying ``recording`` for ``symbol`` alone, with its own overrides."""
    data = dict(session.data)
    data["symbols"] = [{"symbol": symbol, "overrides": overrides} if overrides else symbol]
    data["source"] = {**session.source, "kind": "replay", "path": str(Path(recording).resolve())}
    return load_session(session.path, text=yaml.safe_dump(data, sort_keys=False))


def time_shares(session: Session, symbol: str) -> dict[str, dict[str, float]]:
    summary = run_session(session, None).summary["symbols"][symbol]
    out = {}
    for machine, states in summary["time_in_state_s"].items():
        total = sum(states.values()) or 1.0
        out[machine] = {s: round(t / total, 4) for s, t in states.items()}
    return out


def compare(session: Session, proposal: dict[str, dict[str, tuple[float, str]]],
            data: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per symbol and recording: time share in each state, current params against proposed."""
    rows = []
    for sym, params in proposal.items():
        overrides = {p: v for p, (v, _) in params.items()}
        for rec in data[sym]["recordings"]:
            rows.append({"symbol": sym, "recording": rec,
                         "current": time_shares(with_overrides(session, sym, None, rec), sym),
                         "proposed": time_shares(with_overrides(session, sym, overrides, rec), sym)})
    return rows
