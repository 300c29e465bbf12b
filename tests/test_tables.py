"""Golden tests of `panbench table` against a fixed results record (cells compared with a tolerance)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from panbench.cli import main

GOLDEN = Path(__file__).parent / "data" / "record_mask2former_r50.json"


@pytest.fixture
def results(tmp_path) -> Path:
    (tmp_path / "runs").mkdir()
    shutil.copy(GOLDEN, tmp_path / "runs" / GOLDEN.name)
    older = json.loads(GOLDEN.read_text())
    older["date"], older["metrics"]["PQ"] = "2025-01-01T00:00:00+00:00", 1.0  # an older run: not shown
    (tmp_path / "runs" / "older.json").write_text(json.dumps(older))
    return tmp_path


def test_csv_cells_match_the_record(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "csv", "--vs-published"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="model")
    row = df.loc["mask2former_r50"]
    expected = {"PQ": 51.865, "SQ": 83.071, "RQ": 61.591, "PQ_th": 57.737, "SQ_th": 84.043, "RQ_th": 68.129,
                "PQ_st": 43.003, "SQ_st": 81.604, "RQ_st": 51.722, "N_all": 133, "N_th": 80, "N_st": 53,
                "images_per_s": 8.5, "PQ_pub": 52.0, "PQ_delta": -0.135, "params_M": 44.037}
    for k, v in expected.items():
        assert row[k] == pytest.approx(v, abs=1e-3), k
    assert len(df) == 1 and row["device"] == "NVIDIA A100"


@pytest.mark.parametrize("fmt,marker", [("md", "| mask2former_r50"), ("latex", "\\begin{tabular}"),
                                        ("html", "<table")])
def test_formats(results, capsys, fmt, marker) -> None:
    assert main(["table", "--results", str(results), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert marker in out and "51.865" in out


def test_per_class(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--per-class", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="category_id")
    assert df.loc[1, "name"] == "person" and df.loc[92, "mask2former_r50"] == pytest.approx(40.0)


def test_no_records_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["table", "--results", str(tmp_path)]) == 2
    assert "run `panbench eval` first" in capsys.readouterr().err
