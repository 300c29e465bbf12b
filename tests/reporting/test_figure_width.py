"""Figures as a paper prints them: every figure of `plot`, `report` and the robustness figures exactly as wide as
`--figure-width` asks (single 3.5 in, double 7.2 in, or inches), read back from the files; every text at 7 pt or
more and every title one size; per-class PQ says which classes it shows and marks things and stuff; the error
types' colours far from every model's; no colour bar for one value.  Records made for real
(tests/reporting/analysis_records.py: generated ground truth, perturbed predictions; speeds and GFLOPs invented)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from analysis_records import add_run, ground_truth
from PIL import Image

from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting import figure_style, plot_parts, robustness
from panbench.reporting.colors import ERROR_COLORS, ERROR_DISTANCE, MODEL_PALETTE, lab_distance
from panbench.reporting.figure_style import MIN_TEXT_PT, TITLE_PT, WIDTHS, figure_width
from panbench.reporting.labels import short_label
from panbench.reporting.tables import ranked_records

INCHES = {"single": 3.5, "double": 7.2, "5": 5.0}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Three runs with every analysis, a speed and GFLOPs, written in an order other than their rank, and a
    robustness sweep's cell of one of them (its clean run's copy with the corruption fields set)."""
    root = tmp_path_factory.mktemp("figure_width")
    gt_json, images = ground_truth(root / "data", n_images=10)  # enough for the intervals
    models = (("beta-panoptic-fpn", 3), ("alpha-mask2former", None), ("gamma-maskformer", 1))  # names a column
    for k, (model, seed) in enumerate(models, 1):  # cannot hold on one line
        add_run(root, model, gt_json, images, pred_seed=seed, date=f"2001-01-01T00:00:0{k}+00:00",
                timings={"images_per_s": 2.0 * k}, flops={"gflops": 10.0 * k, "images": 10}, device="test device")
    clean = json.loads(next((root / "runs").glob("*_beta-panoptic-fpn_synth.json")).read_text())
    cell = {**clean, "dataset": "synth+fog-2", "date": "2001-01-01T00:00:09+00:00",
            "corruption": {"name": "fog", "severity": 2, "group": "weather", "implementation": "test"},
            "metrics": {**clean["metrics"], "PQ": clean["metrics"]["PQ"] - 4}}
    (root / "runs" / "x_beta-panoptic-fpn_synth+fog-2.json").write_text(json.dumps(cell))
    return root


def _widths(folder: Path, dpi: float) -> dict[str, float]:
    """Each PNG under ``folder``: its width in inches (pixels / dpi)."""
    return {str(p.relative_to(folder)): Image.open(p).width / dpi for p in sorted(folder.rglob("*.png"))}


def _results_copy(results: Path, tmp_path: Path) -> Path:
    """A results folder of its own whose records are those of ``results``."""
    res = tmp_path / "res"
    res.mkdir()
    (res / "runs").symlink_to(results / "runs")
    (res / "analysis").symlink_to(results / "analysis")
    return res


def test_every_figure_plot_writes_is_the_default_width_double(results, tmp_path, capsys) -> None:
    res = _results_copy(results, tmp_path)
    assert main(["plot", "--results", str(res), "--dpi", "80"]) == 0
    capsys.readouterr()
    found = _widths(res / "plots", 80)
    assert len(found) == 7 and set(found.values()) == {WIDTHS["double"]}, found


@pytest.fixture(scope="module")
def report_single(results, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """`report --figure-width single` of the results in a folder of its own, and the figures of the dataset's plots
    it wrote (each kept as it was written: its texts fitted by plot_parts.save), by file name.  make_plots is given the
    report's runs in the reverse of the table's order: the figures' order is its own ranking."""
    from panbench.reporting import report

    res = _results_copy(results, tmp_path_factory.mktemp("report_single"))
    kept: dict[str, Any] = {}
    real, make_plots = plot_parts.write_figure, report.make_plots

    def keep(fig: Any, path: Path, *args: Any, **kwargs: Any) -> Path:
        if path.parent.name == "synth":
            kept[path.name] = fig
        return real(fig, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plot_parts, "write_figure", keep)
        mp.setattr(report, "make_plots", lambda records, *args: make_plots(records[::-1], *args))
        assert main(["report", "--results", str(res), "--figure-width", "single"]) == 0
    return res, kept


def test_every_figure_of_the_report_is_the_width_asked_the_robustness_ones_too(report_single) -> None:
    res, _ = report_single
    plots_dpi, robustness_dpi = 100, 110  # each figure's own resolution
    found = {**_widths(res / "report_files" / "synth", plots_dpi),
             **_widths(res / "report_files" / "robustness", robustness_dpi)}
    assert {"robustness_severity.png", "robustness_drop.png", "pq_bars.png"} <= set(found), found
    assert set(found.values()) == {WIDTHS["single"]}, found


def test_an_svg_figure_s_page_is_the_width_asked(results, tmp_path, capsys) -> None:
    res = _results_copy(results, tmp_path)
    assert main(["plot", "--results", str(res), "--figure-width", "5", "--figure-format", "svg"]) == 0
    capsys.readouterr()
    svgs = sorted((res / "plots").rglob("*.svg"))
    assert len(svgs) == 7
    for p in svgs:
        head = p.read_text()[:2000]
        assert re.search(r'<svg[^>]* width="360pt"', head), (p.name, head[:400])  # 5 in = 360 pt


@pytest.mark.parametrize("value", ["wide", "1", "31", "nan", "-7.2"])
@pytest.mark.parametrize("command", ["plot", "report", "robustness --model m", "viz --model m --image 1"])
def test_a_width_that_is_no_width_is_a_one_line_usage_error(command, value, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main([*command.split(), "--figure-width", value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "argument --figure-width: must be single (3.5 in), double (7.2 in) or a width in inches" in err


@pytest.mark.parametrize("command", ["plot", "report", "robustness --model m", "viz --model m --image 1"])
def test_the_commands_that_draw_take_the_figure_width(command) -> None:
    from panbench.cli import build_parser

    for value, inches in (("single", 3.5), ("double", 7.2), ("5", 5.0)):
        assert build_parser().parse_args([*command.split(), "--figure-width", value]).figure_width == inches


@pytest.fixture(scope="module")
def drawn(report_single, tmp_path_factory) -> Any:
    """Every figure of `plot` (those `report --figure-width single` drew of the dataset) and the robustness figures
    of the sweep, drawn at a column's width, the narrowest (the sweep's kept in memory, the manifest in a temporary
    folder; the commands' tests above read the files of the other widths), by (width, file name)."""
    out = tmp_path_factory.mktemp("drawn")
    figs: dict[tuple[str, str], Any] = {("single", name): fig for name, fig in report_single[1].items()}
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    summaries = [{"model": "beta-panoptic-fpn", "postprocess": "default", "dataset": "synth", "clean": {"PQ": 40.0},
                  "corruptions": ["fog", "gaussian_noise"],
                  "runs": [{"corruption": c, "severity": s, "PQ": 40.0 - s * k} for k, c in
                           enumerate(["fog", "gaussian_noise"], 1) for s in (1, 2, 3)]}]
    with pytest.MonkeyPatch.context() as mp:
        for width in ("single",):
            def keep(fig: Any, path: Path, *args: Any, width: str = width, **kwargs: Any) -> Path:
                figs[width, path.name] = fig  # as it would be written: its texts fitted (plot_parts.save)
                return path

            mp.setattr(plot_parts, "write_figure", keep)
            with figure_width(width):
                robustness.plots(summaries, out)
    for fig in figs.values():  # save closed them: a canvas to measure on again
        FigureCanvasAgg(fig).draw()
    yield figs
    for fig in figs.values():
        figure_style.plt().close(fig)


def _texts(fig: Any) -> list[Any]:
    """Every text the figure shows (a tick's label only where the tick is inside its axis' view)."""
    from matplotlib.text import Text

    axes = [axis for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]
    ticks = {id(lb) for axis in axes for t in axis.get_major_ticks() + axis.get_minor_ticks()
             for lb in (t.label1, t.label2)}
    shown = {id(lb) for axis in axes for t in axis._update_ticks() for lb in (t.label1, t.label2)}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
            and (id(t) not in ticks or id(t) in shown)]


def _titles(fig: Any) -> list[Any]:
    return [t for t in [fig._suptitle, *(ax.title for ax in fig.axes)] if t is not None and t.get_text().strip()]


def test_every_figure_is_drawn_at_the_width_with_text_of_7_pt_or_more_and_one_title_size(drawn) -> None:
    assert len(drawn) == 9  # 7 plots and 2 robustness figures
    for (width, name), fig in drawn.items():
        assert fig.get_figwidth() == INCHES[width], (width, name)
        small = [(t.get_text()[:30], t.get_fontsize()) for t in _texts(fig) if t.get_fontsize() < MIN_TEXT_PT]
        assert not small, (width, name, small)
        assert {t.get_fontsize() for t in _titles(fig)} == {TITLE_PT}, (width, name)


def test_every_label_lies_inside_the_figure(drawn) -> None:
    """A fixed width, no cropping: nothing may stick out of the page (a tick label, a legend, a note)."""
    for (width, name), fig in drawn.items():
        r = fig.canvas.get_renderer()
        page = fig.bbox
        for t in _texts(fig):
            b = t.get_window_extent(r)
            assert page.x0 - 1 <= b.x0 and b.x1 <= page.x1 + 1 and page.y0 - 1 <= b.y0 and b.y1 <= page.y1 + 1, \
                (width, name, t.get_text()[:40], b, page)


def _apart(a: Any, b: Any, gap: float) -> bool:
    return a.x1 + gap <= b.x0 or b.x1 + gap <= a.x0 or a.y1 + gap <= b.y0 or b.y1 + gap <= a.y0


def test_no_text_reaches_past_the_figure_and_no_two_labels_of_an_axis_meet(drawn) -> None:
    """At a column's width, with models of long names: every title, label and value inside the figure (2 pt from
    its edge) and on no other text, the tick labels of an axis an em apart, the values of an axes on no other
    value and, where they are values of bars or intervals, inside their axes."""
    from matplotlib.text import Text

    for (width, name), fig in drawn.items():
        r = fig.canvas.get_renderer()
        edge, em = 2 * fig.dpi / 72, MIN_TEXT_PT * fig.dpi / 72
        page = fig.bbox
        shown = _texts(fig)
        every = [Text.get_window_extent(t, r) for t in shown]
        for t, b in zip(shown, every):
            assert page.x0 + edge <= b.x0 and b.x1 <= page.x1 - edge and page.y0 + edge <= b.y0 \
                and b.y1 <= page.y1 - edge, (width, name, t.get_text()[:60], b.extents, page.extents)
        meet = [(shown[i].get_text(), shown[j].get_text()) for i in range(len(shown)) for j in range(i + 1, len(shown))
                if not _apart(every[i], every[j], 0)]
        assert not meet, (width, name, meet)  # a legend on an axis label, a title on a tick label
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                ticks = [t for t in axis.get_ticklabels() if t in shown]
                boxes = [t.get_window_extent(r) for t in ticks]
                meet = [(ticks[i].get_text(), ticks[j].get_text()) for i in range(len(ticks))
                        for j in range(i + 1, len(ticks)) if not _apart(boxes[i], boxes[j], em)]
                assert not meet, (width, name, meet)
            values = [t for t in ax.texts if t in shown]
            boxes = [Text.get_window_extent(t, r) for t in values]
            meet = [(values[i].get_text(), values[j].get_text()) for i in range(len(values))
                    for j in range(i + 1, len(values)) if not _apart(boxes[i], boxes[j], 0)]
            assert not meet, (width, name, meet)
            if name not in ("pq_vs_speed.png", "pq_vs_gflops.png"):  # names beside points may leave the axes
                inside = ax.get_window_extent(r)
                out = [t.get_text() for t, b in zip(values, boxes) if b.x0 < inside.x0 - 1 or b.x1 > inside.x1 + 1]
                assert not out, (width, name, out)


def test_the_figures_order_and_name_the_runs_as_the_table_ranks_them(drawn, results) -> None:
    records = [r for r in load_records(results) if not r.corruption]
    ranked = [short_label(r, records) for r in ranked_records(records)]
    assert ranked != ["beta-panoptic-fpn", "alpha-mask2former", "gamma-maskformer"]  # not the records' order
    figs = {name: fig for (width, name), fig in drawn.items() if width == "single"}
    assert [t.get_text() for t in figs["pq_bars.png"].legends[0].get_texts()] == ranked
    assert [t.get_text() for t in figs["per_class_pq.png"].legends[0].get_texts()] == ranked
    intervals = figs["pq_intervals.png"].axes[0]
    top_down = sorted(intervals.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in top_down] == ranked
    names = [t.get_text().replace("-\n", "-") for t in figs["errors.png"].axes[0].get_xticklabels()]
    assert names == ranked  # on more lines where they do not fit on one
    for name in ("pq_vs_speed.png", "pq_vs_gflops.png"):  # each point named as the verdict names it
        assert sorted(t.get_text() for t in figs[name].axes[0].texts) == sorted(ranked), name
    every = " ".join(t.get_text() for fig in figs.values() for t in _texts(fig))
    assert "[default]" not in every


def test_per_class_pq_says_which_classes_it_shows_and_marks_things_and_stuff(drawn) -> None:
    fig = drawn["single", "per_class_pq.png"]
    (ax,) = fig.axes
    assert re.search(r"per-class PQ, (all \d+ classes|the \d+ of \d+ classes)", ax.get_title())
    names = [t.get_text() for t in ax.get_xticklabels()]
    kinds = [n.rstrip("0123456789") for n in names]  # the generated classes are named thing<k> and stuff<k>
    assert kinds == sorted(kinds, key=lambda k: k != "thing") and set(kinds) == {"thing", "stuff"}
    groups = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert set(groups) == {"things", "stuff"}
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    ticks = ax.get_xticks()
    split = line.get_xdata()[0]
    assert all((x < split) == (k == "thing") for x, k in zip(ticks, kinds))
    assert groups["things"] < split < groups["stuff"]


def test_no_error_type_has_a_colour_near_a_model_s_or_another_type_s() -> None:
    near = [(t, c, m, round(lab_distance(c, m), 1)) for t, c in ERROR_COLORS.items() for m in MODEL_PALETTE
            if lab_distance(c, m) < ERROR_DISTANCE]
    assert not near, near
    types = list(ERROR_COLORS.values())
    assert min(lab_distance(a, b) for i, a in enumerate(types) for b in types[i + 1:]) >= 25


def test_the_colour_distance_is_cie_lab_s() -> None:
    assert lab_distance("#000000", "#ffffff") == pytest.approx(100.0, abs=0.01)
    assert lab_distance("#44BB99", "#44AA99") < ERROR_DISTANCE  # Tol's light mint beside its muted teal


def test_a_heatmap_of_one_value_has_no_colour_bar_and_of_two_has_one() -> None:
    with figure_width("single"):
        one, _ = robustness.drop_figure(np.array([[6.2]]), ["gaussian_noise"], ["demo-mask2former"])
        two, _ = robustness.drop_figure(np.array([[6.2], [3.0]]), ["gaussian_noise", "fog"], ["demo-mask2former"])
    assert len(one.axes) == 1 and len(two.axes) == 2
    figure_style.plt().close(one)
    figure_style.plt().close(two)
