"""Past runs: the runs of a folder with their key figures, and several runs side by side.

Both read each run's ``summary.json`` (written when a run ends); a run without one was killed
or is still going, and is listed as such.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..spec.errors import SpecError, SpecErrors


def _summary(run: Path) -> dict[str, Any] | None:
    path = run / "summary.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _is_run(path: Path) -> bool:
    return path.is_dir() and ((path / "session.json").is_file() or (path / "summary.json").is_file())


def _utc(ns: int | None) -> str:
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _totals(summary: dict[str, Any]) -> dict[str, Any]:
    """Execution figures summed over the run's symbols."""
    orders = fills = with_fill = 0
    pnl = fees = 0.0
    ordered = filled = 0.0
    for s in summary.get("symbols", {}).values():
        ex = s.get("execution", {})
        a = ex.get("all", {})
        orders += a.get("orders", 0)
        fills += a.get("fills", 0)
        with_fill += a.get("orders_with_fill", 0)
        ordered += a.get("notional_ordered_usd", 0.0) or 0.0
        filled += a.get("notional_filled_usd", 0.0) or 0.0
        pnl += ex.get("net_pnl_usd") or 0.0
        fees += ex.get("fees_usd") or 0.0
    return {"orders": orders, "orders_with_fill": with_fill, "fills": fills,
            "fill_ratio": round(filled / ordered, 4) if ordered else None,
            "net_pnl_usd": round(pnl, 4), "fees_usd": round(fees, 4)}


def list_runs(folder: Path) -> list[dict[str, Any]]:
    """One row per run directory in ``folder`` (oldest first by event time, then name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SpecErrors([SpecError(str(folder), 0, 0, "no such folder; expected a folder of runs (default: the workspace's runs/)")])
    rows = []
    for run in sorted(p for p in folder.iterdir() if _is_run(p)):
        s = _summary(run)
        if s is None:
            rows.append({"run": run.name, "path": str(run), "complete": False})
            continue
        rows.append({"run": run.name, "path": str(run), "complete": True, "session": s.get("session"),
                     "start_utc": _utc(s.get("event_time_start_ns")), "events": s.get("events"),
                     "duration_s": s.get("duration_s"), "end_reason": s.get("end_reason"),
                     "symbols": sorted(s.get("symbols", {})), **_totals(s)})
    return rows


def compare_runs(runs: list[Path]) -> list[tuple[str, list[Any]]]:
    """(figure, one value per run) rows: the runs' scorecards and execution quality side by side."""
    summaries = []
    for run in runs:
        s = _summary(Path(run))
        if s is None:
            raise SpecErrors([SpecError(str(run), 0, 0, "no summary.json; expected the folder of a finished run")])
        summaries.append(s)
    rows: list[tuple[str, list[Any]]] = [
        ("session", [s.get("session") for s in summaries]),
        ("config hash", [(s.get("config_hash") or "")[:12] for s in summaries]),
        ("input", [", ".join(Path(f["path"]).name for f in (s.get("source") or {}).get("files", []))
                   or (s.get("source") or {}).get("kind", "-") for s in summaries]),
        ("events", [s.get("events") for s in summaries]),
        ("event time s", [s.get("duration_s") for s in summaries]),
        ("end", [s.get("end_reason") for s in summaries]),
    ]
    totals = [_totals(s) for s in summaries]
    for key, label in (("orders", "orders"), ("orders_with_fill", "orders with fills"), ("fills", "fills"),
                       ("fill_ratio", "fill ratio"), ("net_pnl_usd", "net PnL USD"), ("fees_usd", "fees USD")):
        rows.append((label, [t[key] for t in totals]))
    symbols = sorted({sym for s in summaries for sym in s.get("symbols", {})})
    for sym in symbols:
        per = [s.get("symbols", {}).get(sym) for s in summaries]
        machines = sorted({m for p in per if p for m in p.get("time_in_state_s", {})})
        for m in machines:
            rows.append((f"{sym} {m} transitions", [p["transitions"].get(m) if p else None for p in per]))
            rows.append((f"{sym} {m} time in state", [_shares(p["time_in_state_s"].get(m, {})) if p else None for p in per]))
        alls = [p["execution"]["all"] if p else {} for p in per]
        for key in ("slippage_decision_bps", "slippage_arrival_bps", "latency_ms_mean", "time_to_first_fill_ms_mean"):
            rows.append((f"{sym} {key.replace('_', ' ')}", [a.get(key) for a in alls]))
        horizons = sorted({h for a in alls for h in (a.get("markout_bps") or {})}, key=_seconds)
        for h in horizons:
            rows.append((f"{sym} markout {h} bps", [(a.get("markout_bps") or {}).get(h) for a in alls]))
        rows.append((f"{sym} passive fills plausible", [_plausible(p) for p in per]))
    return rows


def _shares(times: dict[str, float]) -> str:
    total = sum(times.values()) or 1.0
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(times.items(), key=lambda kv: -kv[1]))


def _plausible(p: dict | None) -> str | None:
    if not p:
        return None
    fp = p["execution"].get("fill_plausibility", {})
    return f"{fp.get('plausible', 0)}/{fp.get('plausible', 0) + fp.get('implausible', 0)}"


def _seconds(h: str) -> float:
    try:
        return float(h.rstrip("s"))
    except ValueError:
        return float("inf")
