"""The figures of the segment-score analyses (panbench/reporting/analysis_plots.py): PQ against the score threshold,
a line per run with the model's own threshold and the best marked, and a reliability diagram per run with its ECE, read
back from the PNGs `panbench report` writes (width, the marks' colours where they are drawn); the report's sections
of both analyses; a run without scores skips both figures in one line each.  Two `score --name` runs of 12 small
generated images whose segments carry scores, one given the model's own threshold as `eval` gives it; the report is
written once, with the figures of the other analyses left out (drawn elsewhere: test_analysis_plots.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import scored_runs
from PIL import Image
from test_figures_read_back import lines_outside, low_contrast

from panbench.analysis import AnalysisSet, ScoreSums, score_threshold
from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting import plot_parts, plots
from panbench.reporting.colors import model_colors
from panbench.reporting.figure_style import WIDTHS

OWN = 0.5  # sys-b's own threshold
SCORE_PLOTS = ("score_threshold", "calibration")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two `score --name` runs (sys-a, sys-b) of predictions whose segments carry scores; sys-b's record has its
    model's own threshold."""
    res = scored_runs(tmp_path_factory.mktemp("score_figures"))
    (path,) = (res / "runs").glob("*_sys-b_*.json")
    rec = json.loads(path.read_text())
    a = AnalysisSet.load(res / rec["analysis_file"])
    rec["score_threshold"] = json.loads(json.dumps(score_threshold(ScoreSums.of(a), a.isthing, OWN)))
    path.write_text(json.dumps(rec))
    return res


def _stub(records: Any, out: Path, colors: Any = None, note: str = "") -> Path:
    """A figure of another analysis, not drawn here: an empty file in its place."""
    path = Path(out) / "other.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _only_score_figures(mp: pytest.MonkeyPatch) -> None:
    for name in ("pq_bars", "per_class_differences", "pq_vs_speed", "pq_vs_gflops"):
        mp.setattr(plots, name, _stub)
    mp.setattr(plots, "PLOTS", tuple((k, n, fn if k in SCORE_PLOTS else _stub) for k, n, fn in plots.PLOTS))


@pytest.fixture(scope="module")
def reported(results) -> tuple[str, dict[str, Any]]:
    """`panbench report`'s page and its score figures: each file's figure, as saved (its axes' transforms)."""
    figs: dict[str, Any] = {}
    real = plot_parts.save

    def keep(fig: Any, path: Path, dpi: int = 100) -> Path:
        figs[Path(path).name] = fig
        return real(fig, path, dpi)

    with pytest.MonkeyPatch.context() as mp:
        _only_score_figures(mp)
        mp.setattr(plot_parts, "save", keep)
        assert main(["report", "--results", str(results)]) == 0
    return (results / "report.html").read_text(), figs


def _drawn(fig: Any) -> Any:
    """``fig`` drawn again on a canvas of its own (saving closed it): the pixels :func:`low_contrast` reads."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig


def _pixel(path: Path, fig: Any, ax: Any, xy: tuple[float, float]) -> np.ndarray:
    """The RGB of the PNG at the data point ``xy`` of ``ax``."""
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    scale = img.shape[1] / (fig.get_figwidth() * fig.dpi)
    x, y = ax.transData.transform(xy) * scale
    return img[int(round(img.shape[0] - y)), int(round(x))]


def _rgb(color: str) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return np.round(255 * np.array(to_rgb(color))).astype(int)


def _near(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.abs(a - b).max() <= 12)


def test_pq_against_the_score_threshold_marks_each_runs_best_and_the_known_own_threshold(results, reported) -> None:
    _, figs = reported
    path = results / "report_files" / "syn" / "pq_score_threshold.png"
    fig = figs[path.name]
    assert Image.open(path).width == WIDTHS["double"] * 100  # the figures' one width, at the plots' 100 dpi
    recs = {r.model: r for r in load_records(results)}
    colors = model_colors(results, list(recs.values()))
    ax = fig.axes[0]  # All (PQ)
    assert [a.get_title() for a in fig.axes[:3]] == ["All (PQ)", "Things (PQ_th)", "Stuff (PQ_st)"]
    for model, r in recs.items():
        st, color = r.score_threshold, _rgb(colors[model])
        (line,) = [ln for ln in ax.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1
                   and np.array_equal(ln.get_ydata(), st["PQ"])]
        assert _near(_rgb(line.get_color()), color)
        best = (st["best"]["threshold"], st["best"]["PQ"])
        (star,) = [ln for ln in ax.lines if ln.get_marker() == "*" and _near(_rgb(ln.get_color()), color)]
        assert tuple(star.get_xydata()[0]) == best and _near(_pixel(path, fig, ax, best), color)
        circles = [ln for ln in ax.lines if ln.get_marker() == "o" and _near(_rgb(ln.get_color()), color)]
        if st["own"] is None:  # sys-a: a `score` run, its own threshold unknown
            assert model == "sys-a" and not circles
            continue
        own = (OWN, st["own"]["PQ"])
        assert model == "sys-b" and [tuple(c.get_xydata()[0]) for c in circles] == [own]
        assert _near(_pixel(path, fig, ax, own), _rgb("white"))  # an open circle on the line
        img = np.asarray(Image.open(path).convert("RGB")).astype(int)
        x, y = ax.transData.transform(own) * img.shape[1] / (fig.get_figwidth() * fig.dpi)
        ring = [img[int(round(img.shape[0] - y + dy)), int(round(x + dx))]  # 4 px around the centre
                for dx, dy in ((0, 4), (0, -4), (4, 0))]
        assert sum(_near(p, color) for p in ring) >= 2
    notes = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert "not marked: sys-a" in notes and "a threshold picked on val is not a test result" in notes
    assert lines_outside(fig) == [] and low_contrast(_drawn(fig)) == []


def test_a_reliability_diagram_per_run_with_its_ece_and_segments_per_bin(results, reported) -> None:
    _, figs = reported
    path = results / "report_files" / "syn" / "reliability.png"
    fig = figs[path.name]
    assert Image.open(path).width == WIDTHS["double"] * 100
    recs = load_records(results)
    colors = model_colors(results, recs)
    for k, r in enumerate(sorted(recs, key=lambda r: -r.metrics["PQ"])):  # the table's order, a panel each
        ax, hist = fig.axes[k], fig.axes[2 + k]  # two panels a row: the diagrams, then the bars under them
        c, color = r.calibration, _rgb(colors[r.model])
        assert ax.get_title().split("\n")[:2] == [r.model, f"ECE {c['ece']:.3f} [{c['low']['ece']:.3f}, "
                                                               f"{c['high']['ece']:.3f}]"]
        full = [b for b, n in enumerate(c["bins"]["count"]) if n]
        point = (c["bins"]["score"][full[-1]], c["bins"]["accuracy"][full[-1]])
        assert _near(_pixel(path, fig, ax, point), color)
        (curve,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
        assert np.allclose(curve.get_xydata(), [(c["bins"]["score"][b], c["bins"]["accuracy"][b]) for b in full])
        (diagonal,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        assert diagonal.get_xydata().tolist() == [[0, 0], [1, 1]]
        assert [p.get_height() for p in hist.patches] == c["bins"]["count"]
        top = max(range(len(full)), key=lambda b: c["bins"]["count"][full[b]])
        bar = (c["bins"]["edges"][full[top]] + 0.05, c["bins"]["count"][full[top]] / 2)
        assert _near(_pixel(path, fig, hist, bar), color)
    assert lines_outside(fig) == [] and low_contrast(_drawn(fig)) == []


def test_report_has_a_section_of_each_with_its_figure_and_the_note(reported) -> None:
    page, _ = reported
    section = page[page.index("<h4>PQ against the segment score threshold</h4>"):page.index("<h3>per-class PQ")]
    assert "<h4>calibration of the segment scores (ECE)</h4>" in section
    assert "<p class='note'>the best threshold is chosen on these images: a threshold picked on val is not a test " \
        "result</p>" in section  # the table's footnote (its row's note), as `table --score-threshold` gives it
    assert "Its figure, pq_score_threshold, is with the plots below." in section
    assert "Its figure, reliability, is with the plots below." in section
    assert 'alt="pq_score_threshold.png"' in page and 'alt="reliability.png"' in page


NEEDS = "predictions get them as a \"score\" per segment in segments_info, the model's, a float in [0, 1] (one " \
    "outside it leaves every score out, with a note)"
MMDET = "mmdet's own fusion (--fusion mmdet) gives none; leave --fusion mmdet out: panbench's fusion keeps each " \
    "segment's score"


@pytest.mark.parametrize(("fusion", "says"), [(None, NEEDS), ("mmdet", MMDET)], ids=["score-runs", "fusion-mmdet"])
def test_runs_without_scores_skip_both_figures_in_one_line_each(results, tmp_path, monkeypatch, fusion,
                                                                 says) -> None:
    """One line per figure, saying why by where the runs came from: --fusion mmdet only for runs of it."""
    recs = [dataclasses.replace(r, score_threshold=None, calibration=None, fusion=fusion)
            for r in load_records(results)]
    _only_score_figures(monkeypatch)
    paths, notes = plots.make_plots(recs, tmp_path)
    assert not {p.name for p in paths} & {"pq_score_threshold.png", "reliability.png"}
    why = f"no predicted segment has a usable score: {says}; or records written before segment scores"
    for key, name in (("score_threshold", "pq_score_threshold.png"), ("calibration", "reliability.png")):
        assert [n for n in notes if name in n] == [f"{tmp_path / name}: skipped, no record has `{key}` ({why})"]
    assert not (tmp_path / "pq_score_threshold.png").exists() and not (tmp_path / "reliability.png").exists()


def test_the_score_figures_have_the_project_style_text_sizes(reported) -> None:
    """The figure style (styled) applies: every title at TITLE_PT, no text under MIN_TEXT_PT."""
    from test_figure_width import _texts, _titles

    from panbench.reporting.figure_style import MIN_TEXT_PT, TITLE_PT

    _, figs = reported
    assert {"pq_score_threshold.png", "reliability.png"} <= set(figs)
    for name in ("pq_score_threshold.png", "reliability.png"):
        fig = _drawn(figs[name])
        assert {t.get_fontsize() for t in _titles(fig)} == {TITLE_PT}, name
        assert not [t.get_text() for t in _texts(fig) if t.get_fontsize() < MIN_TEXT_PT], name


def test_the_score_threshold_table_notes_the_best_threshold_only_where_a_run_has_it(results) -> None:
    from panbench.analyses import by_key
    from panbench.reporting.tables import comparison

    with_it = load_records(results)
    without = [dataclasses.replace(r, score_threshold=None, calibration=None) for r in with_it]
    for recs, noted in ((with_it, True), (without, False)):
        notes: list[str] = []
        comparison(recs, analyses=["score_threshold"], results_dir=results, notes=notes)
        assert (by_key("score_threshold").note in notes) is noted


@pytest.mark.parametrize("fmt", ["md", "csv", "latex", "html"])
def test_table_prints_the_scored_segments_as_a_count_beside_a_run_without_scores(results, tmp_path, capsys,
                                                                                fmt) -> None:
    """`table --score-threshold --calibration` of runs with scores and one without (mmdet's own fusion): each run's
    scored segments a whole number (282, not 282.0 nor 282.000), the run without them blank."""
    res = tmp_path / "res"
    shutil.copytree(results, res)
    (path,) = (res / "runs").glob("*_sys-a_*.json")
    rec = {**json.loads(path.read_text()), "model": "sys-c", "score_threshold": None, "calibration": None,
           "fusion": "mmdet"}
    (res / "runs" / path.name.replace("sys-a", "sys-c")).write_text(json.dumps(rec))
    assert main(["table", "--results", str(res), "--score-threshold", "--calibration", "--format", fmt]) == 0
    out = capsys.readouterr().out
    counts = {r.score_threshold["segments"] for r in load_records(results)} | {
        r.calibration["segments"] for r in load_records(results)}
    for n in counts:
        assert re.search(rf"(?<![\d.]){n}(?![\d.])", out), (n, out)
        assert not re.search(rf"(?<![\d.]){n}\.\d", out), (n, out)
