"""The report's side-by-side of queue models, on a real run of configs/queue-models.yaml."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from framework.audit.queue_models import aggregate, queue_models_section
from framework.audit.report import write_report
from tests.audit.conftest import make_run

MODELS = ["conservative", "linear", "power2", "power3", "log", "quote_through"]


@pytest.fixture(scope="module")
def queue_run(tmp_path_factory):
    return make_run("configs/queue-models.yaml", tmp_path_factory.mktemp("queue") / "run")


def _results(run):
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in recs if r.get("kind") == "order_result"]


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._in = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in = False

    def handle_data(self, data):
        if self._in:
            self.rows[-1][-1] += data


def test_every_model_gets_a_row_and_the_range_spans_them(queue_run):
    results = _results(queue_run)
    assert results and all([m["model"] for m in r["queue_models"]] == MODELS for r in results)
    figures = aggregate(results)["BTCUSDT"]
    assert list(figures) == MODELS
    # brute force: the fill ratio of each model straight from the orders
    for i, m in enumerate(MODELS):
        qty = sum(r["qty"] for r in results)
        filled = sum(r["queue_models"][i]["filled_qty"] for r in results)
        assert figures[m]["fill_ratio"] == pytest.approx(filled / qty)
        assert figures[m]["orders"] == len(results)
    # the acting model's row is the run's own passive fills
    assert figures["conservative"]["fill_ratio"] == pytest.approx(
        sum(r["filled_qty"] for r in results) / sum(r["qty"] for r in results))
    # cancellations can only move an order up: every probabilistic model fills at least as much
    assert all(figures[m]["fill_ratio"] >= figures["conservative"]["fill_ratio"] for m in MODELS)
    assert max(f["fill_ratio"] for f in figures.values()) > figures["conservative"]["fill_ratio"]

    cells = _Cells()
    cells.feed(queue_models_section(results))
    rows = {r[0]: r for r in cells.rows if r}
    assert "conservative (acting)" in rows and all(m in rows for m in MODELS[1:])
    lo = min(f["fill_ratio"] for f in figures.values())
    hi = max(f["fill_ratio"] for f in figures.values())
    assert rows["range"][3] == f"{lo:.3f} .. {hi:.3f}"


def test_the_report_carries_the_section_and_says_so_when_there_is_one_model(queue_run, tmp_path):
    text = write_report(queue_run, tmp_path / "r.html").read_text()
    assert "Passive fills under each queue model" in text and "quote_through" in text
    assert "no comparison" in queue_models_section([{"kind": "order_result", "qty": 1.0}])
