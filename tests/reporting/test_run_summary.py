"""What `panbench eval` prints after each model, as a new user reads it: the record's path is one that exists from
the working directory and that `compare` and `images` take back; no interval line without a word on why; no note
about a shared speed where no speed was measured (nor a '~' footnote, nor a `shared` flag in the CSV)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from analysis_records import add_run, ground_truth

from panbench.cli import main
from panbench.cli.eval import shared_note
from panbench.records.io import load_records
from panbench.records.schema import RunRecord
from panbench.reporting.text import format_comparison, format_record

OVERLAPPED = {"overlapped": True, "overlapped_runs": [{"pid": 1, "command": "panbench eval"}]}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two runs on the same 3 images, timed on too few images for a speed, beside another panbench run."""
    root = tmp_path_factory.mktemp("summary")
    res = root / "results"
    gt, images = ground_truth(root / "gt", n_images=3, seed=4)
    for k, model in enumerate(("model-a", "model-b")):
        add_run(res, model, gt, images, pred_seed=k + 1, date=f"2001-01-0{k + 1}T00:00:00+00:00",
                speed_context=OVERLAPPED, timings={"images_per_s": None, "speed_images": 2})
    return res


def _records(results: Path) -> list[RunRecord]:
    return load_records(results)


def test_the_printed_record_path_exists_from_the_working_directory(results) -> None:
    rec = _records(results)[0]
    line = next(x for x in format_record(rec, results).splitlines() if x.strip().startswith("record:"))
    path = Path(line.split("record:", 1)[1].strip())
    assert path == results / "runs" / Path(str(rec.record)).name and path.is_file(), line


def test_compare_and_images_take_the_record_path_below_results(results, monkeypatch) -> None:
    """`runs/X.json` (the record's own `record` field) is found under --results, from any working directory."""
    from panbench.cli.records import find_records

    monkeypatch.chdir(results.parent)
    rec = _records(results)[1]
    runs, root = find_records(str(rec.record), results, None)
    assert [r.record for r in runs] == [rec.record] and root == results


def test_too_few_images_for_an_interval_is_said(results) -> None:
    text = format_record(_records(results)[0], results)
    line = next((x for x in text.splitlines() if "95% interval" in x), "")
    assert "3 images: too few for a bootstrap interval" in line, text


def test_no_shared_speed_note_without_a_speed(results) -> None:
    recs = _records(results)
    assert shared_note(recs[0]) is None  # overlapped, but no images/s to be marked
    assert "~ after img/s" not in format_comparison(recs)


def test_the_csv_flags_no_shared_speed_without_a_speed(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col=0)
    assert "images_per_s_shared" not in df.columns or not df["images_per_s_shared"].any()


def test_saved_predictions_are_named_with_their_paths(results) -> None:
    rec = _records(results)[0]
    saved = {"json": "/tmp/p/panoptic_val2017_m_results.json", "dir": "/tmp/p/panoptic_val2017_m_results"}
    text = format_record(rec.with_fields(provenance={**rec.provenance, "predictions": saved}), results)
    line = next((x for x in text.splitlines() if "predictions:" in x), "")
    assert saved["json"] in line and saved["dir"] in line, text
    assert "predictions:" not in format_record(rec, results)


@pytest.mark.parametrize("source", ["semantic", "panoptic"])
def test_the_summary_prints_one_miou_named_by_its_source(results, source) -> None:
    """A transformers model's record holds the panoptic map's mIoU (``semantic``) and its semantic output's
    (``miou``): the summary prints the record's one mIoU, with its source, and the pixel accuracy and Dice beside."""
    rec = _records(results)[0]
    rec = rec.with_fields(semantic={"pixel_acc": 0.9, "mIoU": 0.343, "mDice": 0.5}, miou=0.551, miou_source=source)
    text = format_record(rec, results)
    assert text.count("mIoU") == 1 and f"mIoU 0.551 (from the {source} output)" in text, text
    assert "pixel accuracy 0.900" in text and "mean Dice 0.500" in text
