"""``execlab report RUN``: one self-contained HTML page about a run.

Offline by construction: the timeline is a base64 PNG (matplotlib, Agg), the machine diagrams
are inline SVG, the style sheet is inline, and there is no script. Sections: the run, the
timeline (mid price; regime, permission and health as coloured bands; fills as markers;
refused intents as crosses), the annotated machine diagrams, execution quality by regime and
health, refused intents, exchange rejects, alerts and feed incidents, and optionally a diff
against an edited configuration.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from ..spec.machines import MachineSet
from .analysis import LAYERS, RunFacts, facts, quality_by, refusal_counts, states_of
from .annotate import annotated_graphs, inline_svg
from .queue_models import queue_models_section
from .runlog import NS, fmt_ts, load_records, log_path, run_machine_set, writing

FALLBACK_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left}
.meta td{text-align:left} .muted{color:#777} .bad{color:#b00} .ok{color:#070}
.diagram{margin:12px 0;overflow-x:auto} .diagram svg{max-width:100%;height:auto}
.pill{display:inline-block;padding:1px 6px;border-radius:8px;color:#fff;font-size:12px}
img.timeline{max-width:100%;border:1px solid #eee}
summary{cursor:pointer;color:#345;margin:6px 0}
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _num(v: Any, nd: int = 3) -> str:
    if v is None:
        return "<span class='muted'>-</span>"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return f"{v:.{nd}f}" if isinstance(v, float) else str(v)
    return _e(v)


def _colours(machine_set: MachineSet | None) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if machine_set is None:
        return out
    for m in machine_set.machines:
        out[m.name] = {}
        for i, (name, st) in enumerate(m.states.items()):
            out[m.name][name] = st.color or FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)]
    return out


def _pill(machine: str, state: str | None, colours: dict[str, dict[str, str]]) -> str:
    if state is None:
        return ""
    c = colours.get(machine, {}).get(state, "#777")
    return f"<span class='pill' style='background:{c}'>{_e(state)}</span>"


def _table(headers: list[str], rows: list[list[str]], left: int = 1, right_from: int | None = None) -> str:
    """``left``: how many leading columns are left-aligned; ``right_from``: columns from this
    one on are left-aligned again (labels after the numbers)."""
    def is_left(i: int) -> bool:
        return i < left or (right_from is not None and i >= right_from)

    th = "".join(f"<th class='l'>{_e(h)}</th>" if is_left(i) else f"<th>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td class='l'>{c}</td>" if is_left(i) else f"<td>{c}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


# --- the timeline ---------------------------------------------------------------------------

def timeline_png(f: RunFacts, symbol: str, colours: dict[str, dict[str, str]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    def dt(ns: int) -> datetime:
        return datetime.fromtimestamp(ns / NS, UTC)

    layers = [m for m in LAYERS if m in f.machines] + [m for m in f.machines if m not in LAYERS]
    fig = plt.figure(figsize=(14, 3.6 + 0.45 * len(layers)), dpi=100)
    gs = fig.add_gridspec(2, 1, height_ratios=[4, 0.45 * max(len(layers), 1)], hspace=0.08)
    ax = fig.add_subplot(gs[0])
    bands = fig.add_subplot(gs[1], sharex=ax)

    pts = [(r["ts_ns"], (r.get("values") or {}).get("mid")) for r in f.metrics if r.get("symbol") == symbol]
    pts = [(t, m) for t, m in pts if isinstance(m, (int, float))]
    if pts:
        ax.plot([dt(t) for t, _ in pts], [m for _, m in pts], color="#333", lw=1.0, label="mid (metrics samples)")
    fills = [r for r in f.fills if r.get("symbol") == symbol and isinstance(r.get("price"), (int, float))]
    for side, marker, colour in (("buy", "^", "#1a9850"), ("sell", "v", "#d73027")):
        xs = [dt(r["ts_ns"]) for r in fills if r.get("side") == side]
        ys = [r["price"] for r in fills if r.get("side") == side]
        if xs:
            ax.scatter(xs, ys, marker=marker, s=46, color=colour, edgecolor="black", linewidths=0.5, zorder=5,
                       label=f"{side} fills ({len(xs)})")
    refused = [r for r in f.refusals if r.get("symbol") == symbol]
    if refused and pts:
        import bisect

        times = [t for t, _ in pts]
        ys = []
        for r in refused:
            i = min(max(bisect.bisect_right(times, r["ts_ns"]) - 1, 0), len(pts) - 1)
            ys.append(pts[i][1])
        ax.scatter([dt(r["ts_ns"]) for r in refused], ys, marker="x", s=30, color="#7b3294", zorder=4,
                   label=f"refused intents ({len(refused)})")
    for r in f.feed:
        if r.get("symbol") in (symbol, "") and r.get("event") not in ("connect", "end"):
            ax.axvline(dt(r["ts_ns"]), color="#999", ls=":", lw=1)
    ax.set_ylabel("price")
    ax.grid(True, alpha=0.3)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_title(f"{symbol}: mid price, fills and the state of each layer", loc="right", fontsize=11)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=4, fontsize=9, frameon=False)
    plt.setp(ax.get_xticklabels(), visible=False)

    handles = []
    seen: set[tuple[str, str]] = set()
    for row, m in enumerate(reversed(layers)):
        for iv in f.intervals.get(symbol, {}).get(m, []):
            if iv.end_ns <= iv.start_ns:
                continue
            c = colours.get(m, {}).get(iv.state, "#999")
            x0 = mdates.date2num(dt(iv.start_ns))
            w = mdates.date2num(dt(iv.end_ns)) - x0
            bands.broken_barh([(x0, w)], (row + 0.1, 0.8), facecolors=c, edgecolor="none")
            if (m, iv.state) not in seen:
                seen.add((m, iv.state))
    for m in layers:
        for s, c in colours.get(m, {}).items():
            if (m, s) in seen:
                handles.append(Patch(facecolor=c, label=f"{m} {s}"))
    bands.set_yticks([i + 0.5 for i in range(len(layers))])
    bands.set_yticklabels(list(reversed(layers)))
    bands.set_ylim(0, len(layers))
    bands.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    bands.set_xlabel("event time (UTC)")
    if handles:
        bands.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=min(len(handles), 6),
                     fontsize=8, frameon=False)
    bands.set_xlim(dt(f.start_ns), dt(max(f.end_ns, f.start_ns + 1)))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# --- sections -------------------------------------------------------------------------------

def _run_section(run: Path, f: RunFacts) -> str:
    s = f.start
    src = s.get("source") or {}
    files = src.get("files") or ([src] if src.get("path") else [])
    src_text = "; ".join(f"{_e(x.get('path'))} (sha256 {_e(str(x.get('sha256', ''))[:12])}...)" for x in files) or _e(src.get("kind"))
    rows = [
        ("session", _e(s.get("session"))), ("run directory", _e(run)),
        ("symbols", _e(", ".join(f.symbols))), ("input", src_text),
        ("event time", f"{fmt_ts(f.start_ns)} .. {fmt_ts(f.end_ns)} ({f.duration_s:.1f} s)"),
        ("config hash", _e(s.get("config_hash"))),
        ("log", "complete (session_end present, digest " + _e(str((f.end or {}).get("digest", ""))[:16]) + "...)"
         if f.end else "<span class='bad'>incomplete: no session_end</span>"),
    ]
    return "<table class='meta'>" + "".join(f"<tr><th class='l'>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _states_section(f: RunFacts, symbol: str, colours: dict[str, dict[str, str]]) -> str:
    tis = f.time_in_state(symbol)
    counts = f.transition_counts(symbol)
    out = []
    for m in [x for x in LAYERS if x in tis] + [x for x in tis if x not in LAYERS]:
        total = sum(tis[m].values()) or 1.0
        rows = [[_pill(m, st, colours), f"{sec:.1f}", f"{100 * sec / total:.1f}%"] for st, sec in tis[m].items()]
        n = sum(counts.get(m, {}).values())
        out.append(f"<div style='display:inline-block;vertical-align:top;margin-right:24px'><b>{_e(m)}</b> "
                   f"<span class='muted'>({n} transitions)</span>" + _table(["state", "seconds", "share"], rows) + "</div>")
    elig = f.eligible_s(symbol)
    out.append(f"<p>Eligible to trade for <b>{elig:.1f} s</b> of {f.duration_s:.1f} s "
               f"({100 * elig / f.duration_s if f.duration_s else 0:.1f}%).</p>")
    return "".join(out)


def _quality_section(f: RunFacts, symbol: str | None = None) -> str:
    results = [r for r in f.order_results if symbol is None or r.get("symbol") == symbol]
    if not results:
        return "<p class='muted'>No orders reached the paper engine.</p>"
    sub = RunFacts(start=f.start, end=f.end, start_ns=f.start_ns, end_ns=f.end_ns, symbols=f.symbols,
                   machines=f.machines, intervals={}, edge_counts={}, decisions={}, order_results=results)
    q = quality_by(sub)
    horizons = list(q["all"][0]["markout_bps"]) if q["all"] else []
    headers = ["group", "orders", "with fills", "rejected", "fill ratio", "slippage vs arrival (bps)",
               "slippage vs decision (bps)", "latency (ms)", *[f"markout {h} (bps)" for h in horizons]]
    out = []
    for dim, title in (("all", "All orders"), ("regime", "By regime at decision"), ("health", "By health at decision")):
        rows = [[_e(r["group"]), str(r["orders"]), str(r["filled_orders"]), str(r["rejected"]),
                 _num(r["fill_ratio"]), _num(r["slippage_arrival_bps"]), _num(r["slippage_decision_bps"]),
                 _num(r["latency_ms"], 1), *[_num(r["markout_bps"].get(h)) for h in horizons]] for r in q[dim]]
        out.append(f"<h3>{title}</h3>" + _table(headers, rows))
    out.append("<p class='muted'>Fill ratio = filled quantity / ordered quantity. Slippage and markouts are "
               "notional-weighted means over orders with fills; positive slippage is a cost, positive markout "
               "means the price moved in our favour after the fill.</p>")
    return "".join(out)


def _refusals_section(f: RunFacts, colours: dict[str, dict[str, str]], limit: int = 200) -> str:
    if not f.refusals:
        return "<p class='muted'>No intent was refused.</p>"
    intents = {r.get("intent_id"): r for r in f.intents}
    counts = refusal_counts(f)
    summary = _table(["stage", "rule", "refused"], [[_e(s), f"<b>{_e(r)}</b>", str(n)] for (s, r), n in
                                                      sorted(counts.items(), key=lambda kv: -kv[1])], left=2)
    rows = []
    for r in f.refusals[:limit]:
        it = intents.get(r.get("intent_id"), {})
        st = states_of(r)
        rows.append([fmt_ts(r["ts_ns"]), _e(r.get("symbol")), _e(r.get("intent_id")),
                     _e(r.get("side") or it.get("side")), _e(r.get("style") or it.get("style")),
                     _num(r.get("notional_usd") or it.get("notional_usd"), 2), _e(r.get("stage")),
                     f"<b>{_e(r.get('rule'))}</b>", _e(r.get("reason")),
                     " ".join(_pill(m, st.get(m), colours) for m in LAYERS if m in st)])
    more = f" (first {limit})" if len(f.refusals) > limit else ""
    is_open = " open" if len(f.refusals) <= 50 else ""
    return summary + (f"<details{is_open}><summary>every refused intent{more}</summary>"
                      + _table(["time", "symbol", "intent", "side", "style", "notional (USD)", "stage", "rule", "reason",
                                "states"], rows, left=5, right_from=6) + "</details>")


def _orders_section(f: RunFacts, colours: dict[str, dict[str, str]], limit: int = 200) -> str:
    if not f.order_results:
        return "<p class='muted'>No orders.</p>"
    rows = []
    for r in f.order_results[:limit]:
        lab = r.get("labels") or {}
        rows.append([_e(r.get("order_id")), _e(r.get("side")), _e(r.get("style")), _e(r.get("status")),
                     _e(r.get("reason")), _num(r.get("fill_ratio")), _num(r.get("avg_fill_price"), 2),
                     _num(r.get("slippage_arrival_bps")),
                     " ".join(_pill(m, lab.get(m), colours) for m in LAYERS if m in lab)])
    by: dict[tuple[str, str], int] = {}
    for r in f.order_results:
        k = (str(r.get("status", "")), str(r.get("reason", "") or ""))
        by[k] = by.get(k, 0) + 1
    summary = _table(["status", "reason", "orders"], [[_e(s), _e(r), str(n)] for (s, r), n in
                                                      sorted(by.items(), key=lambda kv: -kv[1])], left=2)
    more = f" (first {limit})" if len(f.order_results) > limit else ""
    return summary + (f"<details><summary>every order{more}</summary>"
                      + _table(["order", "side", "style", "status", "reason", "fill ratio", "avg price", "slippage (bps)",
                                "states at decision"], rows, left=5, right_from=8) + "</details>")


def _incidents_section(f: RunFacts) -> str:
    out = []
    if f.alerts:
        rows = []
        for r in f.alerts:
            on = r.get("tripped") if "tripped" in r else r.get("state") == "trip"
            rows.append([fmt_ts(r["ts_ns"]), _e(r.get("symbol")), f"<b>{_e(r.get('guard'))}</b>",
                         "<span class='bad'>trip</span>" if on else "<span class='ok'>clear</span>",
                         _num(r.get("value")), _num(r.get("limit")), _e(r.get("reasons") or r.get("reason") or "")])
        out.append("<h3>Risk alerts</h3>" + _table(["time", "symbol", "guard", "", "value", "limit", "detail"], rows, left=4))
    else:
        out.append("<p class='muted'>No risk alert.</p>")
    feed = [r for r in f.feed if r.get("event") not in ("connect",)]
    if feed:
        rows = [[fmt_ts(r["ts_ns"]), _e(r.get("symbol")), f"<b>{_e(r.get('event'))}</b>", _e(r.get("detail")),
                 _num(r.get("gap_ms"), 0)] for r in feed]
        out.append("<h3>Feed incidents</h3>" + _table(["time", "symbol", "event", "detail", "gap (ms)"], rows, left=4))
    else:
        out.append("<p class='muted'>No feed incident.</p>")
    if f.reloads:
        rows = [[fmt_ts(r["ts_ns"]), "accepted" if r.get("accepted") else "<span class='bad'>refused</span>",
                 _e(r.get("config_hash")), _e("; ".join(r.get("errors") or []))] for r in f.reloads]
        out.append("<h3>Config reloads</h3>" + _table(["time", "result", "config hash", "errors"], rows, left=4))
    return "".join(out)


def _scorecard_section(run: Path) -> str:
    """The gate's scorecard (``execlab score``): time tradable, flaps, labelled windows, and the
    markouts of sent orders against the counterfactual markouts of refused intents."""
    from .score import score_run

    card = score_run(run)

    def pct(x: Any) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    rows, marks = [], []
    for sym, s in card["symbols"].items():
        flaps = ", ".join(f"{m} {n}" for m, n in s["flaps"].items()) or "-"
        windows = s.get("windows")
        if windows:
            blocked = [w["to_blocked_s"] for w in windows if w["to_blocked_s"] is not None]
            win = (f"{len(windows)}: to BLOCKED max {max(blocked):.2f} s" if blocked else f"{len(windows)}: never BLOCKED") + \
                f"; orders inside {sum(w['orders_inside'] for w in windows)}"
        else:
            win = "no labels"
        rows.append([_e(sym), pct(s["tradable_share"]), _e(flaps), str(s["orders"]),
                     f"{pct(s['big_moves']['tradable_share'])} of {s['big_moves']['n']}", _e(win)])
        for group, m in (s.get("markouts") or {}).items():
            horizons = ", ".join(f"{h}: {v:+.2f}" for h, v in m["markout_bps"].items() if v is not None)
            marks.append([_e(sym), _e(group), str(m["n"]), _e(horizons or "-")])
    out = (f"<p class='muted'>After a {card['warmup_s']:g} s warm-up; a flap is a state visit shorter than a "
           "second; labelled windows come from the sidecar next to the input (execlab scenario inject).</p>")
    out += _table(["symbol", "tradable", "flaps", "orders", "tradable in the largest 1 s moves", "labelled windows"], rows)
    if marks:
        out += ("<h3>What the gate saved and what it cost</h3><p class='muted'>Mean markouts in bps (positive: in "
                "the intent's favour) of the orders sent and, as if sent, of the intents each rule refused.</p>")
        out += _table(["symbol", "orders sent / refused by", "n", "markout bps by horizon"], marks)
    return out


def equity_png(curves: dict[str, list[tuple[int, float]]]) -> bytes:
    """The equity curve of each symbol (realized + position at the mid - fees), in USD."""
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(14, 3.2), dpi=100)
    for sym, pts in curves.items():
        if pts:
            ax.step([datetime.fromtimestamp(t / NS, UTC) for t, _ in pts], [v for _, v in pts], where="post",
                    lw=1.2, label=f"{sym} net PnL at mid")
    ax.axhline(0, color="#999", lw=0.8)
    ax.set_ylabel("USD")
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=9, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _costs_section(records: list[dict[str, Any]]) -> str:
    """Transaction costs (framework/audit/tca.py) and the money: PnL, fees, position, equity."""
    from .tca import analyse_records, fmt_ci, money_rows

    a = analyse_records(records, ["regime", "health", "style"])
    if not a["orders"]:
        return "<p class='muted'>No orders: no costs.</p>"
    hs = a["horizons"]
    headers = ["group", "orders", "IS vs decision (bps)", "IS vs arrival (bps)", "opportunity (bps)",
               "effective spread (bps)", *[f"realized spread {h}" for h in hs], *[f"impact {h}" for h in hs],
               "fill ratio", "time to fill (ms)"]

    def row(name: str, st: dict[str, Any]) -> list[str]:
        return [_e(name), str(st["orders"]), _e(fmt_ci(st["is_decision_bps"])), _e(fmt_ci(st["is_arrival_bps"])),
                _e(fmt_ci(st["is_opportunity_decision_bps"])), _e(fmt_ci(st["effective_spread_bps"])),
                *[_e(fmt_ci(st["realized_spread_bps"][h])) for h in hs], *[_e(fmt_ci(st["price_impact_bps"][h])) for h in hs],
                _e(fmt_ci(st["fill_ratio"], 3)), _e(fmt_ci(st["time_to_fill_ms"], 1))]

    rows = [row("all", a["aggregate"]["all"])]
    for dim, groups in a["aggregate"]["by"].items():
        rows += [row(f"{dim} {v}", st) for v, st in groups.items()]
    out = [_table(headers, rows),
           "<p class='muted'>Means over orders with a 95% confidence interval [low, high] and the count. IS: "
           "implementation shortfall in bps of the decided quantity at the benchmark mid (execution + opportunity "
           "cost of the unfilled part + fees; positive is a cost). Effective spread 2·s·(price − mid)/mid at the "
           "fill; realized spread and price impact split it at each markout horizon (execlab tca RUN).</p>"]
    m = a["money"]
    out.append("<h3>PnL, fees and position</h3>" + _table(["", ""], [[_e(k), _e(v)] for k, v in money_rows(m)]))
    curves = {sym: s["equity_curve"] for sym, s in m["symbols"].items()}
    if any(curves.values()):
        png = base64.b64encode(equity_png(curves)).decode()
        out.append(f"<img class='timeline' alt='equity curve' src='data:image/png;base64,{png}'>")
    return "".join(out)


def build_report(run_dir: str | Path, diff_html: str | None = None) -> str:
    run = Path(run_dir)
    log_path(run)
    records = load_records(run)
    f = facts(records)
    machine_set = run_machine_set(run)
    colours = _colours(machine_set)
    parts = [f"<h1>Run report: {_e(f.start.get('session'))}</h1>",
             "<p class='muted'>Paper trading only. Generated from the run's audit log and spec snapshot.</p>",
             "<h2>The run</h2>", _run_section(run, f)]
    for sym in f.symbols:
        png = base64.b64encode(timeline_png(f, sym, colours)).decode()
        parts += [f"<h2>Timeline: {_e(sym)}</h2>",
                  f"<img class='timeline' alt='timeline of {_e(sym)}' src='data:image/png;base64,{png}'>",
                  f"<h3>Time in state: {_e(sym)}</h3>", _states_section(f, sym, colours)]
    parts.append("<h2>Machines, annotated with this run</h2><p class='muted'>Edge labels end with how many "
                 "times the rule fired (fired n×); states show the time spent in them (all symbols).</p>")
    for g in annotated_graphs(machine_set, f):
        parts.append(f"<div class='diagram' id='diagram-{_e(g.name)}'>{inline_svg(g)}</div>")
    parts += ["<h2>The gate's scorecard</h2>", _scorecard_section(run),
              "<h2>Execution quality</h2>", _quality_section(f),
              "<h2>Transaction costs and PnL</h2>", _costs_section(records),
              "<h2>Passive fills under each queue model</h2>", queue_models_section(f.order_results),
              "<h2>Alerts and feed incidents</h2>", _incidents_section(f)]
    if diff_html:
        parts += ["<h2>What if: the same input under an edited configuration</h2>", diff_html]
    parts += ["<h2>Refused intents</h2>", _refusals_section(f, colours),
              "<h2>Orders</h2>", _orders_section(f, colours)]
    title = f"execlab report: {f.start.get('session', '')}"
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(run_dir: str | Path, out: str | Path | None = None, diff_html: str | None = None) -> Path:
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    text = build_report(run_dir, diff_html)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path
