"""The end-of-run table people read: time in state, transitions, orders, fills, costs by regime."""

from __future__ import annotations

from typing import Any


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        text = f"{v:.{digits}f}"
        return text.lstrip("-") if float(text) == 0 else text  # no "-0.00"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[_fmt(c) for c in r] for r in rows]]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def render_summary(summary: dict[str, Any]) -> str:
    out = [f"session {summary['session']}: {summary['events']:,} events, {summary['duration_s']:.1f} s of event time "
           f"({summary['end_reason']})"]
    wall = summary.get("wall") or {}
    if wall.get("events_per_s"):
        out[-1] += f"; {wall['wall_s']:.1f} s wall, {wall['events_per_s']:,} events/s"
        if wall.get("path") == "blocks":
            out[-1] += " (a block at a time)"
    if summary.get("feed"):
        out.append("feed: " + ", ".join(f"{k} {v}" for k, v in summary["feed"].items()))
    for symbol, s in summary["symbols"].items():
        out.append("")
        out.append(f"== {symbol}")
        rows = []
        for machine, times in s["time_in_state_s"].items():
            total = sum(times.values()) or 1.0
            rows.append([machine, s["transitions"][machine],
                         ", ".join(f"{k} {v:.0f}s ({100 * v / total:.0f}%)" for k, v in times.items())])
        out.append(_table(["machine", "transitions", "time in state"], rows))
        ex = s["execution"]
        a = ex["all"]
        out.append("")
        out.append(f"orders {a.get('orders', 0)} ({a.get('orders_with_fill', 0)} with fills, {a.get('fills', 0)} fills), fill ratio {_fmt(a.get('fill_ratio'))}, "
                   f"net PnL {_fmt(ex.get('net_pnl_usd'))} USD, fees {_fmt(ex.get('fees_usd'))} USD, "
                   f"passive fills plausible {ex['fill_plausibility']['plausible']}/"
                   f"{ex['fill_plausibility']['plausible'] + ex['fill_plausibility']['implausible']}")
        by_regime = ex.get("by_label", {}).get("regime", {})
        if by_regime:
            horizons = ex.get("markout_horizons_s", [])
            headers = ["regime", "orders", "fill ratio", "slip vs decision bps", "slip vs arrival bps",
                       *[f"markout {h:g}s bps" for h in horizons]]
            rows = []
            for regime, r in by_regime.items():
                marks = r.get("markout_bps") or {}
                rows.append([regime, r.get("orders"), r.get("fill_ratio"), r.get("slippage_decision_bps"),
                             r.get("slippage_arrival_bps"), *[marks.get(f"{h:g}s") if isinstance(marks, dict) else None for h in horizons]])
            out.append(_table(headers, rows))
    return "\n".join(out)
