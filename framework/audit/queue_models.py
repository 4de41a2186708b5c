"""Passive orders under each configured queue model, side by side.

The paper engine runs one queue model as the acting one and the others as shadows on the same
passive orders (docs/execution.md, *Queue models*); each ``order_result`` of a passive order then
carries ``queue_models``: a list, the acting model first, giving per model the quantity it filled, the filled notional and the
notional-weighted markouts. Aggregated here per symbol and model: orders, fill ratio
(quantity-weighted), orders with a fill, markouts per horizon (weighted by each order's filled
notional under that model), and the range across models: what the fill assumption is worth.
"""

from __future__ import annotations

import html
from typing import Any


def aggregate(order_results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """symbol -> model -> figures (the acting model first), over the order results that carry
    ``queue_models``."""
    acc: dict[str, dict[str, dict[str, Any]]] = {}
    for r in order_results:
        models = r.get("queue_models")
        if not isinstance(models, list):
            continue
        qty = float(r.get("qty") or 0.0)
        per = acc.setdefault(str(r.get("symbol", "")), {})
        for m in models:
            a = per.setdefault(str(m.get("model")), {"orders": 0, "with_fill": 0, "qty": 0.0, "filled": 0.0,
                                      "mk_sum": {}, "mk_w": {}})
            a["orders"] += 1
            a["qty"] += qty
            filled = float(m.get("filled_qty") or 0.0)
            a["filled"] += filled
            if filled > 0:
                a["with_fill"] += 1
            w = float(m.get("notional_filled_usd") or 0.0)
            for h, v in (m.get("markout_bps") or {}).items():
                if v is not None and w > 0:
                    a["mk_sum"][h] = a["mk_sum"].get(h, 0.0) + v * w
                    a["mk_w"][h] = a["mk_w"].get(h, 0.0) + w
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sym, per in acc.items():
        out[sym] = {}
        for name, a in per.items():
            out[sym][name] = {
                "orders": a["orders"], "orders_with_fill": a["with_fill"],
                "fill_ratio": a["filled"] / a["qty"] if a["qty"] else None,
                "markout_bps": {h: a["mk_sum"][h] / a["mk_w"][h] for h in a["mk_sum"]},
            }
    return out


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def queue_models_section(order_results: list[dict[str, Any]]) -> str:
    """HTML: one table per symbol, a row per model (the acting one first) and a range row."""
    figures = aggregate(order_results)
    if not figures:
        return ("<p class='muted'>One queue model only (execution.passive.queue.shadows is empty): "
                "no comparison.</p>")
    parts = ["<p class='muted'>The same passive orders under each configured queue model; the first "
             "acts (its fills are the run's), the others are shadows. Markouts in bps, positive in our "
             "favour, weighted by filled notional.</p>"]
    for sym, per in sorted(figures.items()):
        horizons = sorted({h for m in per.values() for h in m["markout_bps"]}, key=lambda h: float(h.rstrip("s")))
        head = ["model", "orders", "with a fill", "fill ratio", *[f"markout {h}" for h in horizons]]
        rows = []
        for i, (name, m) in enumerate(per.items()):
            label = html.escape(name) + (" (acting)" if i == 0 else "")
            rows.append([label, str(m["orders"]), str(m["orders_with_fill"]), _f(m["fill_ratio"], ".3f"),
                         *[_f(m["markout_bps"].get(h), "+.2f") for h in horizons]])
        ratios = [m["fill_ratio"] for m in per.values() if m["fill_ratio"] is not None]
        rng = ["<b>range</b>", "", "", f"{min(ratios):.3f} .. {max(ratios):.3f}" if ratios else "-"]
        for h in horizons:
            vals = [m["markout_bps"][h] for m in per.values() if h in m["markout_bps"]]
            rng.append(f"{min(vals):+.2f} .. {max(vals):+.2f}" if vals else "-")
        rows.append(rng)
        table = "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
        for row in rows:
            table += "<tr>" + "".join(f"<td{' class=l' if j == 0 else ''}>{c}</td>" for j, c in enumerate(row)) + "</tr>"
        parts.append(f"<h3>{html.escape(sym)}</h3>" + table + "</table>")
    return "".join(parts)
