"""The report's gallery (panbench/reporting/report.py): for two runs on the same images, each model's largest
losses to the best other run, as viz overlays when the images and both runs' saved predictions are there, else
as a table; none with one run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting.report import N_IMAGES, losses, write_report

# the page's plots written blank (read by no test here: the gallery's overlays are viz's own, drawn in full)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("blank_figures")]
LIMIT = 4


@pytest.fixture(scope="module")
def two_runs(demo_root, tmp_path_factory) -> Path:
    """Two demo models' runs on the first LIMIT images, their predictions saved (no AP, no GFLOPs pass: the gallery
    reads neither)."""
    results = tmp_path_factory.mktemp("gallery")
    for model in ("mask2former", "panoptic-fpn"):
        assert main(["eval", "--model", model, "--dataset", "demo", "--data-root", str(demo_root), "--results",
                     str(results), "--workers", "0", "--cpu-procs", "1", "--no-progress", "--device", "cpu",
                     "--limit", str(LIMIT), "--no-resume", "--no-ap", "--flops-images", "0", "--save-predictions",
                     str(results / "pred")]) == 0
    return results


def _gallery(page: str) -> str:
    start = page.find("where each model loses most")
    if start < 0:
        return ""
    ends = [e for e in (page.find("<h3>", start), page.find("<h2>", start)) if e >= 0]
    return page[start: min(ends, default=len(page))]


def test_gallery_lists_each_models_largest_losses_with_overlays(two_runs, tmp_path) -> None:
    recs = load_records(two_runs)
    found = losses(recs, two_runs)
    assert sorted(a.model for a, _, _ in found) == ["demo-mask2former", "demo-panoptic-fpn"]
    for a, b, rows in found:
        assert b is not a and 0 < len(rows) <= N_IMAGES
        assert [r["key"] for r in rows] == sorted(r["key"] for r in rows)  # largest loss first
        assert all(r["key"] < 0 for r in rows)  # a loss: an image where it does as well or better is none
        assert all(r["key"] == pytest.approx(r["PQ"] - r["PQ_vs"]) for r in rows)
    page = write_report(two_runs, out=tmp_path / "r.html").read_text()
    gallery = _gallery(page)
    assert "demo-mask2former vs demo-panoptic-fpn" in gallery and "demo-panoptic-fpn vs demo-mask2former" in gallery
    assert gallery.count("<img") == sum(len(rows) for _, _, rows in found)  # one overlay per listed image
    first = found[0][2][0]
    assert re.search(rf"<td>{first['image_id']}</td><td>{first['file_name']}</td>", gallery)


def test_without_saved_predictions_the_gallery_is_a_table(two_runs, tmp_path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(two_runs, copy)
    for p in (copy / "runs").glob("*.json"):  # the records point to predictions that are gone
        p.write_text(p.read_text().replace(str(two_runs / "pred"), str(tmp_path / "gone")))
    gallery = _gallery(write_report(copy, out=tmp_path / "r.html").read_text())
    assert gallery.count("<table>") == 2 and "<img" not in gallery


def test_one_run_has_no_gallery(two_runs, tmp_path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(two_runs, copy)
    for p in (copy / "runs").glob("*panoptic-fpn*"):
        p.unlink()
    page = write_report(copy, out=tmp_path / "r.html").read_text()
    assert "where each model loses most" not in page and "<h3>plots</h3>" in page
