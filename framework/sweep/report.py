"""``execlab sweep report SWEEP.yaml``: one self-contained HTML page (inline CSS and SVG, no
script, nothing fetched): the points ranked, each param's effect on each objective, the Pareto
front of the objectives, and links to the best trials' run reports (written next to them).
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

from .rank import PointResult, pareto_front, rank_points
from .runner import trial_dir
from .spec import Sweep

BEST_REPORTS = 3  # run reports written for the best points' trials
_CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}tr.bad td{color:#999}tr.front td{background:#eef7ee}
svg{background:#fff;border:1px solid #ddd;margin:4px 12px 12px 0}.figs{display:flex;flex-wrap:wrap}
code{background:#f5f5f5;padding:0 3px}"""


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return html.escape(str(v))


def _scatter(title: str, xlabel: str, ylabel: str, pts: list[tuple[float, float, bool]],
             line: list[tuple[float, float]] | None = None, w: int = 360, h: int = 240) -> str:
    """An inline SVG scatter plot; highlighted points in green, an optional polyline."""
    pts = [(x, y, hi) for x, y, hi in pts if not (math.isnan(x) or math.isnan(y))]
    if not pts:
        return ""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    ml, mb, mt, mr = 52, 34, 22, 12

    def sx(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * (w - ml - mr)

    def sy(y: float) -> float:
        return h - mb - (y - y0) / (y1 - y0) * (h - mb - mt)

    e = html.escape
    parts = [f"<svg width='{w}' height='{h}' xmlns='http://www.w3.org/2000/svg'>",
             f"<text x='{w / 2}' y='14' text-anchor='middle' font-size='12'>{e(title)}</text>",
             f"<line x1='{ml}' y1='{h - mb}' x2='{w - mr}' y2='{h - mb}' stroke='#888'/>",
             f"<line x1='{ml}' y1='{mt}' x2='{ml}' y2='{h - mb}' stroke='#888'/>",
             f"<text x='{w / 2}' y='{h - 4}' text-anchor='middle' font-size='11'>{e(xlabel)}</text>",
             f"<text x='12' y='{h / 2}' font-size='11' transform='rotate(-90 12 {h / 2})' text-anchor='middle'>{e(ylabel)}</text>"]
    for v, anchor in ((x0, "start"), (x1, "end")):
        parts.append(f"<text x='{sx(v)}' y='{h - mb + 13}' font-size='10' text-anchor='{anchor}'>{_fmt(v)}</text>")
    for v in (y0, y1):
        parts.append(f"<text x='{ml - 4}' y='{sy(v) + 4}' font-size='10' text-anchor='end'>{_fmt(v)}</text>")
    if line:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line if not (math.isnan(x) or math.isnan(y)))
        parts.append(f"<polyline points='{path}' fill='none' stroke='#1f77b4' stroke-width='2'/>")
    for x, y, hi in pts:
        parts.append(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='{4 if hi else 3}' "
                     f"fill='{'#2ca02c' if hi else '#999'}' fill-opacity='0.8'/>")
    parts.append("</svg>")
    return "".join(parts)


def _effects(sweep: Sweep, ranked: list[PointResult]) -> str:
    """Per param and objective: every point's value against the param, and the mean per value."""
    out = []
    for p in sweep.params:
        figs = []
        for i, o in enumerate(sweep.objectives):
            pts, groups = [], {}
            for r in ranked:
                x = r.point.get(p.name)
                if r.values is None or not isinstance(x, (int, float)):
                    continue
                pts.append((float(x), r.values[i], r.feasible))
                groups.setdefault(float(x), []).append(r.values[i])
            means = sorted((x, sum(v) / len(v)) for x, v in groups.items() if not any(math.isnan(y) for y in v))
            figs.append(_scatter(f"{o.name} vs {p.name}", p.name, f"{o.name} ({'max' if o.maximize else 'min'})",
                                 pts, means))
        out.append(f"<h3>{html.escape(p.name)}</h3><div class='figs'>{''.join(figs)}</div>")
    return "".join(out)


def _trial_links(sweep: Sweep, point: PointResult, out_html: Path, write_runs: bool) -> str:
    links = []
    for t in point.trials:
        d = trial_dir(sweep.out, t["key"])
        report = d / "report.html"
        if write_runs and t["status"] == "ok" and not report.is_file():
            try:
                from ..audit.report import write_report as write_run_report

                write_run_report(d, report)
            except Exception as exc:  # a run report needs Graphviz; the sweep page does not
                links.append(f"{html.escape(Path(t['recording']).name)}: no report ({html.escape(str(exc))})")
                continue
        target = report if report.is_file() else d
        rel = os.path.relpath(target, out_html.parent)
        links.append(f"<a href='{html.escape(rel)}'>{html.escape(Path(t['recording']).name)} {html.escape(','.join(t['symbols']))}</a>")
    return "<br>".join(links)


def render(sweep: Sweep, records: list[dict[str, Any]], out_html: Path, best: int = BEST_REPORTS) -> str:
    e = html.escape
    ranked = rank_points(sweep, records)
    front = pareto_front(sweep, ranked)
    front_ids = {id(p) for p in front}
    ok = sum(1 for r in records if r["status"] == "ok")
    head = "".join(f"<th>{e(p.name)}</th>" for p in sweep.params)
    head += "".join(f"<th>{e(o.name)}<br><small>{'max' if o.maximize else 'min'} {e(o.text)} ({sweep.aggregate})</small></th>"
                    for o in sweep.objectives)
    rows = []
    for i, p in enumerate(ranked):
        cls = "front" if id(p) in front_ids else ("" if p.feasible else "bad")
        cells = "".join(f"<td>{_fmt(p.point.get(q.name))}</td>" for q in sweep.params)
        cells += "".join(f"<td>{_fmt(v)}</td>" for v in (p.values or [math.nan] * len(sweep.objectives)))
        links = _trial_links(sweep, p, out_html, i < best and p.feasible)
        rows.append(f"<tr class='{cls}'><td>{i + 1}</td>{cells}<td class='l'>{'yes' if p.feasible else e(p.note)}</td>"
                    f"<td class='l'>{links}</td></tr>")
    pareto = ""
    if len(sweep.objectives) >= 2:
        a, b = sweep.objectives[0], sweep.objectives[1]
        pts = [(p.values[0], p.values[1], id(p) in front_ids) for p in ranked if p.values is not None]
        line = sorted((p.values[0], p.values[1]) for p in front)
        pareto = ("<h2>Pareto front</h2><p>Feasible points no other feasible point beats on every objective "
                  f"(green; {len(front)} of {len(ranked)}), {e(a.name)} against {e(b.name)}.</p>"
                  + _scatter(f"{a.name} vs {b.name}", a.name, b.name, pts, line, w=480, h=320))
    failed = [r for r in records if r["status"] != "ok"]
    failures = ""
    if failed:
        failures = "<h2>Failed trials</h2><table><tr><th class='l'>trial</th><th class='l'>recording</th><th class='l'>error</th></tr>" + "".join(
            f"<tr><td class='l'>{e(r['key'][:16])}</td><td class='l'>{e(Path(r['recording']).name)}</td><td class='l'>{e(r.get('error', ''))}</td></tr>"
            for r in failed) + "</table>"
    constraints = "".join(f"<li><code>{e(t)}</code></li>" for t, _ in sweep.constraints) or "<li>none</li>"
    recordings = "".join(f"<li>{e(r.path.name)} ({e(', '.join(r.symbols))}){' + labels' if r.labels else ''}</li>"
                         for r in sweep.recordings)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {e(sweep.name)}</title>"
            f"<style>{_CSS}</style></head><body><h1>Sweep {e(sweep.name)}</h1><p>{e(sweep.doc)}</p>"
            f"<p>{len(records)} trials ({ok} ok, {len(failed)} failed), {len(ranked)} points, base config "
            f"<code>{e(sweep.base.path)}</code>, search {e(sweep.method)}.</p>"
            f"<p>Recordings:</p><ul>{recordings}</ul><p>Constraints (on every recording):</p><ul>{constraints}</ul>"
            f"<h2>Ranking</h2><table><tr><th>#</th>{head}<th class='l'>feasible</th><th class='l'>trials</th></tr>"
            f"{''.join(rows)}</table>{pareto}<h2>Each param's effect</h2>"
            f"<p>Every point's objective against the param's value (green: feasible); the line is the mean per value.</p>"
            f"{_effects(sweep, ranked)}{failures}</body></html>\n")


def write_report(sweep: Sweep, records: list[dict[str, Any]], path: Path, best: int = BEST_REPORTS) -> Path:
    """The page at ``path``; the run reports of the ``best`` points' trials are written too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(sweep, records, path, best), encoding="utf-8")
    return path
