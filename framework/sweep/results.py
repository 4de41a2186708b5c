"""The results table: one row per trial, every param, input, objective and figure, as Parquet
(``OUT/results.parquet``), to query with DuckDB or Polars:

    duckdb -c "SELECT \"param.permission.cooldown_s\", avg(\"decision.tradable_share\")
               FROM 'runs/sweeps/NAME/results.parquet' WHERE status = 'ok' GROUP BY 1"

Rows come in plan order. No wall-clock or worker column: the table is a function of the sweep
file and its inputs only, the same whichever backend ran it (those are in each trial.json).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .objectives import score
from .spec import Sweep

TABLE_FILE = "results.parquet"
PARAM_PREFIX = "param."
OBJECTIVE_PREFIX = "objective."


def rows(sweep: Sweep, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    figure_names = sorted({k for r in records for k in (r.get("figures") or {})})
    out = []
    for r in records:
        figures = r.get("figures") or {}
        row: dict[str, Any] = {
            "trial": r["key"], "point": r["point_key"], "status": r["status"], "error": r.get("error") or "",
            "recording": Path(r["recording"]).name, "recording_sha256": r["recording_sha256"],
            "labels_sha256": r.get("labels_sha256") or "", "symbol": ",".join(r["symbols"]),
            "sets": " ".join(r["sets"]),
        }
        for p in sweep.params:
            value = r["point"].get(p.name)
            row[PARAM_PREFIX + p.name] = float(value) if value is not None else math.nan
        if r["status"] == "ok":
            values, feasible, _ = score(sweep, figures)
        else:
            values, feasible = [math.nan] * len(sweep.objectives), False
        for o, v in zip(sweep.objectives, values, strict=True):
            row[OBJECTIVE_PREFIX + o.name] = v
        row["feasible"] = feasible
        for name in figure_names:
            row[name] = float(figures.get(name, math.nan))
        out.append(row)
    return out


def write_table(sweep: Sweep, records: list[dict[str, Any]], out: Path) -> Path | None:
    """Write ``OUT/results.parquet``; None when pyarrow is not installed (the trials are kept)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    data = rows(sweep, records)
    columns: dict[str, list[Any]] = {}
    for row in data:
        for k in row:
            columns.setdefault(k, [])
    for row in data:
        for k in columns:
            columns[k].append(row.get(k))
    table = pa.table(columns) if data else pa.table({"trial": pa.array([], pa.string())})
    path = out / TABLE_FILE
    tmp = path.with_name(".part-" + path.name)
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def table_difference(a: Path, b: Path) -> str | None:
    """The first difference between two results tables (columns, rows, then a cell; NaN
    equals NaN), or None when they hold the same."""
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    if ta.column_names != tb.column_names:
        return f"columns differ: {sorted(set(ta.column_names) ^ set(tb.column_names)) or 'order'}"
    if ta.num_rows != tb.num_rows:
        return f"{ta.num_rows} rows against {tb.num_rows}"
    for x, y in zip(ta.to_pylist(), tb.to_pylist(), strict=True):
        for k in x:
            if not _same_value(x[k], y[k]):
                return f"trial {x['trial'][:16]}: {k} is {x[k]!r} against {y[k]!r}"
    return None


def same_tables(a: Path, b: Path) -> bool:
    """Whether two results tables hold the same columns and rows (NaN equal to NaN)."""
    return table_difference(a, b) is None
