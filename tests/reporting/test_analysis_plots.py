"""`panbench plot`: PQ with interval bars, PQ by size, errors by type (records made for real,
tests/reporting/analysis_records.py), skipped in one line without the data; one folder per dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from analysis_records import add_run, ground_truth

from panbench.analysis.breakdown import ERROR_TYPES
from panbench.cli import main
from panbench.records.io import load_records
from panbench.records.schema import ANALYSIS_FIELDS
from panbench.reporting import analysis_plots, plot_parts, plots

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # schema 1, invented numbers


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plot_results")
    gt_json, images = ground_truth(root / "data", n_images=10)
    add_run(root, "noisy", gt_json, images, pred_seed=1, date="2001-01-01T00:00:01+00:00")
    add_run(root, "noisier", gt_json, images, pred_seed=2, date="2001-01-01T00:00:02+00:00")
    add_run(root, "old", gt_json, images, pred_seed=3, date="2001-01-01T00:00:03+00:00")
    old = next(p for p in (root / "runs").glob("*_old_synth.json"))
    rec = json.loads(old.read_text())
    for k in ANALYSIS_FIELDS:
        rec.pop(k, None)
    old.write_text(json.dumps(rec))  # a record without the analyses, on the same dataset
    return root


def _drawn(fn, records, out):
    """Call a plot function and keep what its axes hold when it is saved (the artists' data and texts: saving
    draws the figure, the tick labels read after it)."""
    seen = {}
    orig = plot_parts.save

    def keep(fig, path, dpi=100):
        seen["fig"] = fig
        seen["axes"] = fig.axes
        seen["texts"] = [t.get_text() for ax in fig.axes for t in [*ax.texts, ax.xaxis.label, ax.title]] + \
            [t.get_text() for t in fig.texts]
        seen["fig_texts"] = [t.get_text() for t in fig.texts]
        seen["bars"] = [[(p.get_x(), p.get_y(), p.get_height()) for p in ax.patches] for ax in fig.axes]
        seen["lines"] = [[line.get_xydata().copy() for line in ax.lines] for ax in fig.axes]
        return orig(fig, path, dpi)

    plot_parts.save = keep
    try:
        path = fn(records, out)
    finally:
        plot_parts.save = orig
    return path, seen


def test_intervals_are_the_records_ci(results, tmp_path) -> None:
    recs = load_records(results)
    path, seen = _drawn(analysis_plots.pq_intervals, recs, tmp_path)
    assert path.name == "pq_intervals.png" and path.is_file()
    have = [r for r in recs if r.get("ci")]
    for ax, key in zip(seen["axes"], ("PQ", "PQ_th", "PQ_st")):
        # each errorbar draws its whisker as one segment from (low, y) to (high, y)
        whiskers = sorted(tuple(np.round(seg[:, 0], 9)) for coll in ax.collections for seg in coll.get_segments())
        want = sorted((round(r["ci"][key][0], 9), round(r["ci"][key][1], 9)) for r in have)
        assert whiskers == want, key
    assert any("left out: old" in t for t in seen["texts"])


def test_stacked_error_bars_are_the_counts_by_type(results, tmp_path) -> None:
    recs = [r for r in load_records(results) if r.get("errors")]
    _, seen = _drawn(analysis_plots.error_bars, recs, tmp_path)
    bars = seen["bars"][0]  # type by type, run by run
    for k, r in enumerate(recs):
        heights = [bars[t * len(recs) + k][2] for t in range(len(ERROR_TYPES))]
        assert heights == [r["errors"][t]["count"] for t in ERROR_TYPES]
        bottoms = [bars[t * len(recs) + k][1] for t in range(len(ERROR_TYPES))]
        assert bottoms == list(np.cumsum([0, *heights[:-1]]))  # stacked


def test_by_size_bars(results, tmp_path) -> None:
    recs = [r for r in load_records(results) if r.get("by_size")]
    _, seen = _drawn(analysis_plots.plot_pq_by_size, recs, tmp_path)
    heights = [p[2] for p in seen["bars"][0]]
    assert not any(r["by_size"]["large"]["n"] for r in recs)  # the generated images have no large things
    want = [r["by_size"][s]["PQ"] if r["by_size"][s]["n"] else np.nan for r in recs for s in ("small", "medium")]
    assert np.array_equal(heights, want, equal_nan=True)  # the empty bucket is not drawn, not drawn as 0 either
    ticks = [t.get_text() for t in seen["axes"][0].get_xticklabels()]
    assert [t.split("\n")[0] for t in ticks] == ["small", "medium"]
    assert "not drawn, no ground-truth segment of things in it: large" in seen["fig_texts"]


def test_plot_and_report_draw_one_folder_per_image_set_skip_in_one_line_and_group_as_the_table(
        results, blank_figures, tmp_path, monkeypatch, capsys) -> None:
    """`plot` draws in RESULTS/plots/<dataset>/, `report` in RESULTS/report_files/<dataset>/; a plot no record has
    the data for is skipped with a note (the coco fixture record is schema 1: no analyses).  A 3-image run of the
    same dataset beside the 10-image runs: the table ranks it apart, and so do the plots and the gallery: one folder
    each (the set the table leads with in synth/, the other in synth-<fingerprint>/), no plot drawing runs of both
    image sets."""
    from panbench.reporting import report

    res = tmp_path / "res"
    shutil.copytree(results, res)
    shutil.copy(FIXTURE, res / "runs" / FIXTURE.name)
    gt_json, images = ground_truth(tmp_path / "data3", n_images=3)
    for k, model in enumerate(("noisy", "three")):
        add_run(res, model, gt_json, images, pred_seed=5 + k, fingerprint="3" * 16,
                date=f"2001-01-01T00:00:1{k}+00:00")
    drawn: list[set[str | None]] = []
    real = plots.make_plots

    def make_plots(records, out, colors=None, note=""):
        drawn.append({(r.provenance.get("dataset") or {}).get("fingerprint") for r in records})
        return real(records, out, colors, note)

    monkeypatch.setattr(plots, "make_plots", make_plots)
    monkeypatch.setattr(report, "make_plots", make_plots)
    assert main(["plot", "--results", str(res)]) == 0
    out = capsys.readouterr().out.splitlines()
    for name in ("pq_bars.png", "per_class_pq.png", "pq_intervals.png", "pq_by_size.png", "errors.png"):
        assert (res / "plots" / "synth" / name).is_file(), name
    assert not (res / "plots" / "synth" / "pq_vs_speed.png").exists()  # generated runs: no measured speed
    assert (res / "plots" / "coco" / "pq_bars.png").is_file()
    assert not (res / "plots" / "pq_bars.png").exists()  # nothing at the top, where one dataset overwrote another
    assert not (res / "plots" / "coco" / "errors.png").exists()
    skipped = [line for line in out if "skipped" in line]
    three = [line for line in skipped if str(res / "plots" / "synth-33333333") in line]  # the 3-image set's
    skipped = [line for line in skipped if line not in three]
    assert sorted(line.split(":")[0] for line in three) == [
        str(res / "plots" / "synth-33333333" / n)
        for n in ("pq_intervals.png", "pq_score_threshold.png", "pq_vs_speed.png", "reliability.png")]
    # the generated runs' predictions have no scores: the score figures skipped in every folder
    assert len(skipped) == 8 and sum(str(res / "plots" / "coco") in line for line in skipped) == 5
    assert any(str(res / "plots" / "synth" / "pq_vs_speed.png") in line for line in skipped)
    assert main(["report", "--results", str(res)]) == 0
    capsys.readouterr()
    assert drawn == [{None}, {"f1a2b3c4d5e6f7a8"}, {"3" * 16}] * 2  # one image set per plot set, as the table
    for under in ("plots", "report_files"):  # plot's and the report's
        folders = sorted(p.name for p in (res / under).iterdir())
        assert folders == ["coco", "synth", "synth-33333333"], (under, folders)
    page = (res / "report.html").read_text()
    assert "<h4>synth 33333333 (3 images)</h4>" in page and "where each model loses most · synth 33333333" in page


def test_an_interval_end_past_its_point_by_rounding_draws(results, tmp_path) -> None:
    # one image: every resample is that image, and the interval ends differ from PQ by float rounding
    recs = [r for r in load_records(results) if r.get("ci")]
    for r in recs:
        pq = r.metrics["PQ"]
        r.ci["PQ"] = [pq + 4.4e-12, pq - 4.4e-12]
    path, seen = _drawn(analysis_plots.pq_intervals, recs, tmp_path)
    assert path.is_file()


def test_a_failing_plot_costs_neither_the_others_nor_the_report(results, blank_figures, tmp_path, monkeypatch,
                                                                capsys) -> None:
    """`plot` with one plot function broken exits 1, the others drawn and the failure told in one line (the paths and
    notes of its make_plots call); the report is written all the same."""
    from panbench.reporting.report import write_report

    def broken(records, out, colors=None, note=""):
        raise ValueError("a plotting bug")

    calls = []
    real = plots.make_plots

    def make_plots(records, out, colors=None, note=""):
        calls.append((out, *real(records, out, colors, note)))
        return calls[-1][1:]

    monkeypatch.setattr(plots, "pq_bars", broken)
    monkeypatch.setattr(plots, "make_plots", make_plots)
    assert main(["plot", "--results", str(results)]) == 1
    ((folder, paths, notes),) = calls
    assert "pq_bars.png" not in {p.name for p in paths} and {"per_class_pq.png", "pq_intervals.png"} <= {
        p.name for p in paths}
    assert [n for n in notes if n.startswith(plots.FAILED)] == [
        f"error: {folder / 'pq_bars.png'}: not drawn (ValueError: a plotting bug); the other plots are; please "
        "report it with the records"]
    capsys.readouterr()
    out = write_report(results, out=tmp_path / "report.html")
    assert "per_class_pq" in out.read_text() and "a plotting bug" in capsys.readouterr().err
