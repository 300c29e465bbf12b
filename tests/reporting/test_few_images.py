"""Runs on fewer images than an interval needs (`--limit 3`, the 2-image COCO sample): every place that leaves the
interval or the paired difference out says that the images are too few, never that the record lacks the analysis
(re-running would not help), and a run alone on its images is nobody's reference."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from analysis_records import add_run, ground_truth

from panbench.analysis.bootstrap import MIN_IMAGES
from panbench.cli import main
from panbench.records.io import load_records

TOO_FEW = "too few for a bootstrap interval"  # and the count: "2 images: ...", "fewer than 10 images, ..."


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two runs on the same 3 images, and one run alone on 12 other images."""
    root = tmp_path_factory.mktemp("few")
    res = root / "results"
    gt3, images3 = ground_truth(root / "gt3", n_images=3, seed=1)
    add_run(res, "model-a", gt3, images3, pred_seed=1, fingerprint="aaaaaaaa11111111", date="2001-01-01T00:00:00+00:00")
    add_run(res, "model-b", gt3, images3, pred_seed=2, fingerprint="aaaaaaaa11111111", date="2001-01-02T00:00:00+00:00")
    gt12, images12 = ground_truth(root / "gt12", n_images=12, seed=2)
    add_run(res, "model-c", gt12, images12, pred_seed=3, fingerprint="cccccccc22222222",
            date="2001-01-03T00:00:00+00:00")
    return res


def test_the_verdict_of_runs_on_too_few_images_says_so(results, capsys) -> None:
    assert main(["table", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("no paired difference on these 3 images"))
    assert TOO_FEW in line and "no per-image analysis files" not in line, line


def test_table_ci_names_too_few_images_not_a_missing_analysis(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--ci"]) == 0
    out = capsys.readouterr().out
    note = next(x for x in out.splitlines() if x.startswith("--ci: blank for"))
    assert "model-a" in note and "model-b" in note and "model-c" not in note, note
    assert TOO_FEW in note and "schema 2" not in note and "re-run" not in note, note


def test_a_run_alone_on_its_images_is_not_a_reference(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--ci", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col=0)
    assert pd.isna(df.loc["model-c", "PQ_diff_vs"])  # the only run on its 12 images: compared with nothing
    assert df.loc["model-a", "PQ_diff_vs"] == "reference"  # the best of two runs (too few images: a note says)


def test_the_interval_plot_says_too_few_images(results) -> None:
    from panbench.reporting.analysis_plots import _left_out

    records = load_records(results)
    note = _left_out(records, "ci")
    assert "model-a" in note and "model-b" in note and "model-c" not in note and TOO_FEW in note, note
    assert "no `ci` in the record" not in note, note


def test_the_skipped_interval_plot_says_too_few_images(results, tmp_path, figures) -> None:
    """make_plots's note (the figures it draws kept in memory, not written: the conftest fixture ``figures``)."""
    from panbench.reporting.plots import make_plots

    few = [r for r in load_records(results) if r.n_images < MIN_IMAGES]
    _, notes = make_plots(few, tmp_path)
    note = next(x for x in notes if "pq_intervals.png" in x)
    assert TOO_FEW in note and "schema 2" not in note, note


def test_the_report_names_skipped_plots_without_a_temporary_folder(results, tmp_path) -> None:
    """`report --out` draws its plots in a temporary folder: its notes name the plot, not that folder."""
    out = tmp_path / "r.html"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    page = out.read_text()
    assert "pq_intervals.png: skipped" in page or "too few for a bootstrap interval" in page
    assert "panbench-plots-" not in page
