"""Golden tests of `panbench table` against a fixed results record (cells compared with a tolerance).

The record is a fixture (tests/fixtures/README.md): its numbers are invented, not measured."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from panbench.cli import main

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


@pytest.fixture
def results(tmp_path) -> Path:
    (tmp_path / "runs").mkdir()
    shutil.copy(GOLDEN, tmp_path / "runs" / GOLDEN.name)
    older = json.loads(GOLDEN.read_text())
    older["date"], older["metrics"]["PQ"] = "1999-01-01T00:00:00+00:00", 1.0  # an older run: not shown
    (tmp_path / "runs" / "older.json").write_text(json.dumps(older))
    return tmp_path


def test_csv_cells_match_the_record(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "csv", "--vs-published"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="model")
    row = df.loc["fixture-model"]
    expected = {"PQ": 10.0, "SQ": 20.0, "RQ": 30.0, "PQ_th": 11.0, "SQ_th": 21.0, "RQ_th": 31.0,
                "PQ_st": 12.0, "SQ_st": 22.0, "RQ_st": 32.0, "N_all": 133, "N_th": 80, "N_st": 53,
                "images_per_s": 1.5, "PQ_pub": 12.5, "PQ_delta": -2.5, "params_M": 1.0}
    for k, v in expected.items():
        assert row[k] == pytest.approx(v, abs=1e-3), k
    assert len(df) == 1 and row["device"] == "fixture (no device: not a measurement)"


@pytest.mark.parametrize("fmt,marker", [("md", "| fixture-model"), ("latex", "\\begin{tabular}"),
                                        ("html", "<table")])
def test_formats(results, capsys, fmt, marker) -> None:
    assert main(["table", "--results", str(results), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert marker in out and "10" in out and "fixture-model" in out


def test_per_class(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--per-class", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="category_id")
    assert df.loc[1, "name"] == "person" and df.loc[92, "fixture-model"] == pytest.approx(40.0)


def test_no_records_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["table", "--results", str(tmp_path)]) == 2
    assert "run `panbench eval` first" in capsys.readouterr().err
