"""GFLOPs per image in `table` (a column beside the parameters) and the PQ-against-GFLOPs plot."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from panbench.records.io import record_from_json
from panbench.records.rows import csv_row
from panbench.records.schema import RunRecord
from panbench.reporting.plots import make_plots, pq_vs_gflops
from panbench.reporting.tables import comparison

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fixture_record.json"


def _records() -> list[RunRecord]:
    base = json.loads(FIXTURE.read_text())
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    a["model"], b["model"] = "counted", "not-counted"
    a["flops"] = {"gflops": 12.3456, "images": 2}  # an example value, not a measurement
    b.pop("flops", None)
    b["date"] = "2099-01-01T00:00:00"
    return [record_from_json(a), record_from_json(b)]


def test_table_has_a_gflops_column_blank_where_not_counted() -> None:
    df = comparison(_records())
    cols = list(df.columns)
    assert cols.index("GFLOPs") == cols.index("params_M") + 1
    assert df.loc["counted", "GFLOPs"] == 12.346 and df["GFLOPs"].isna()["not-counted"]
    assert csv_row(_records()[0])["gflops"] == 12.346 and csv_row(_records()[1])["gflops"] is None


def test_pq_against_gflops_is_plotted_when_a_record_has_gflops(tmp_path, figures, monkeypatch) -> None:
    """make_plots draws it for records of which one has GFLOPs, not for one without (its figures drawn, not
    written: the conftest fixture ``figures``); pq_vs_gflops itself writes the figure."""
    recs = _records()
    paths, _ = make_plots(recs, tmp_path)
    assert tmp_path / "pq_vs_gflops.png" in paths and "pq_vs_gflops.png" in figures
    paths, _ = make_plots([recs[1]], tmp_path / "none")
    assert not any(p.name == "pq_vs_gflops.png" for p in paths)
    monkeypatch.undo()  # the figures written again: pq_vs_gflops as a command draws it
    assert pq_vs_gflops(recs, tmp_path / "direct").stat().st_size > 0
