"""Every figure of a demo-like results folder and of a robustness sweep, drawn as `panbench plot` and `panbench
robustness` draw them (laid out as `save` lays them out, written nowhere) and read back: every line and point
inside its axes, each legend off the data, every text at a contrast of at least 4.5:1 (WCAG 2) on the pixels
around it.  The records are made for real (tests/reporting/analysis_records.py: generated ground truth, perturbed
predictions); the speeds, GFLOPs and the sweep's PQs are invented numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from analysis_records import add_run, ground_truth

from panbench.records.io import load_records
from panbench.reporting import analysis_plots, figure_style, plot_parts, plots, robustness
from panbench.reporting.colors import contrast, model_colors
from panbench.robustness.corruptions import GROUP_OF

MODELS = (("demo-mask2former", 2.0, 60.0), ("demo-maskformer", 3.5, 45.0), ("demo-panoptic-fpn", 40.0, 30.0))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Three runs on one generated set, each with every analysis, a speed (2 to 40 images/s: a 20x span) and
    GFLOPs."""
    root = tmp_path_factory.mktemp("read_back")
    gt_json, images = ground_truth(root / "data", n_images=10)  # enough for the intervals
    for k, (model, speed, gflops) in enumerate(MODELS, 1):
        add_run(root, model, gt_json, images, pred_seed=k, date=f"2001-01-01T00:00:0{k}+00:00",
                timings={"images_per_s": speed}, flops={"gflops": gflops, "images": 10}, device="test device")
    return root


SWEPT = ("gaussian_noise", "shot_noise", "defocus_blur", "fog", "contrast", "pixelate")  # every group, two rows


def sweep(models: list[str]) -> list[dict[str, Any]]:
    """Robustness summaries as `panbench robustness` makes them, for the fields the figures read: six corruptions
    at severities 1-5 (invented PQs; shot_noise's above the clean PQ, as noise can raise PQ on a small set, and so
    above every point of the first panel)."""
    out = []
    for m, model in enumerate(models):
        clean = 40.0 + 5 * m
        runs = [{"corruption": c, "severity": s, "PQ": clean - s * (k % 4) * (m + 1) + (22.0 if k == 1 else 0.0)}
                for k, c in enumerate(SWEPT) for s in range(1, 6)]
        out.append({"model": model, "postprocess": "default", "dataset": "synth", "clean": {"PQ": clean},
                    "corruptions": list(SWEPT), "runs": runs})
    return out


def _lay_out(monkeypatch, drawn: dict[str, Any]) -> None:
    """``save`` keeps the figure, laid out as ``save`` lays it out, and draws it; nothing is written."""

    def keep(fig: Any, path: Path, *args: Any, **kwargs: Any) -> Path:
        fig.canvas.draw()
        drawn[path.name] = fig
        return path

    monkeypatch.setattr(plot_parts, "save", keep)
    monkeypatch.setattr(robustness, "save", keep)


@pytest.fixture(scope="module")
def drawn(results, tmp_path_factory) -> Any:
    """Every figure of `plot` and `robustness` for the three runs, by file name."""
    figs: dict[str, Any] = {}
    records = load_records(results)
    colors = model_colors(results, records)
    with pytest.MonkeyPatch.context() as mp:
        _lay_out(mp, figs)
        out = tmp_path_factory.mktemp("figures")
        paths, notes = plots.make_plots(records, out, colors)
        assert not [n for n in notes if n.startswith(plots.FAILED)], notes
        robustness.plots(sweep([m for m, _, _ in MODELS]), out, colors)
    yield figs
    for fig in figs.values():
        figure_style.plt().close(fig)


FIGURES = ("pq_bars.png", "pq_vs_speed.png", "per_class_pq.png", "pq_vs_gflops.png", "pq_intervals.png",
           "pq_by_size.png", "errors.png", "robustness_severity.png", "robustness_drop.png")


def lines_outside(fig: Any) -> list[str]:
    """The lines (and scatter points) of each axes with data outside the axes' limits."""
    out = []
    for ax in (a for a in fig.axes if a.axison):
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        data = [(ln.get_label(), ln.get_xydata()) for ln in ax.lines if ln.get_transform() == ax.transData]
        data += [(c.get_label(), c.get_offsets()) for c in ax.collections if c.get_offset_transform() == ax.transData]
        for label, xy in data:
            xy = np.asarray(xy, float).reshape(-1, 2)
            xy = xy[~np.isnan(xy).any(1)]
            tol = 1e-9 * max(1.0, abs(y1))
            if len(xy) and (xy[:, 0].min() < x0 - tol or xy[:, 0].max() > x1 + tol or xy[:, 1].min() < y0 - tol
                            or xy[:, 1].max() > y1 + tol):
                out.append(f"{ax.get_title()!r} {label}: {xy.min(0)}..{xy.max(0)} outside {x0, x1} x {y0, y1}")
    return out


def data_boxes(fig: Any) -> list[Any]:
    """The display boxes of the data drawn in the axes: each line's and scatter's points, each bar."""
    from matplotlib.transforms import Bbox

    boxes = []
    for ax in fig.axes:
        for ln in ax.lines:
            boxes += [Bbox.from_extents(x - 2, y - 2, x + 2, y + 2) for x, y in ln.get_transform().transform(
                ln.get_xydata())]
        for c in ax.collections:
            boxes += [Bbox.from_extents(x - 3, y - 3, x + 3, y + 3)
                      for x, y in c.get_offset_transform().transform(c.get_offsets())]
        boxes += [p.get_window_extent() for p in ax.patches if p.get_height() != 0 and p.get_visible()]
    return [b for b in boxes if np.isfinite(b.get_points()).all()]


def low_contrast(fig: Any) -> list[str]:
    """Each text of the figure (inside the canvas) whose colour contrasts less than 4.5:1 with the most common
    pixel colour of its box in the rendered figure (its background)."""
    from matplotlib.text import Text

    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    height, width = pixels.shape[:2]
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        b = Text.get_window_extent(t)
        if b.x0 < 0 or b.y0 < 0 or b.x1 > width or b.y1 > height or b.width < 1:
            continue
        box = pixels[int(height - b.y1):int(np.ceil(height - b.y0)), int(b.x0):int(np.ceil(b.x1))].reshape(-1, 3)
        values, counts = np.unique(box, axis=0, return_counts=True)
        background = values[counts.argmax()] / 255
        if (c := contrast(t.get_color(), background)) < 4.5:
            out.append(f"{t.get_text()!r}: {c:.2f} on {background.round(2)}")
    return out


@pytest.mark.parametrize("name", FIGURES)
def test_every_line_of_a_figure_lies_inside_its_axes(drawn, name) -> None:
    assert name in drawn, sorted(drawn)
    assert not lines_outside(drawn[name])


@pytest.mark.parametrize("name", FIGURES)
def test_every_text_of_a_figure_contrasts_4_5_to_1_with_its_background(drawn, name) -> None:
    assert not low_contrast(drawn[name])


# the others have none: their labels name the points (pq_vs_gflops) or the rows (pq_intervals, the heatmap)
LEGENDS = ("pq_bars.png", "pq_vs_speed.png", "per_class_pq.png", "pq_by_size.png", "errors.png",
           "robustness_severity.png")


@pytest.mark.parametrize("name", LEGENDS)
def test_no_legend_covers_the_data(drawn, name) -> None:
    fig = drawn[name]
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    boxes = data_boxes(fig)
    assert legends and boxes
    for leg in legends:
        box = leg.get_window_extent()
        assert not [b for b in boxes if b.overlaps(box)], name


def test_the_severity_panels_share_an_axis_that_holds_the_highest_panel(drawn) -> None:
    """shot_noise's PQ rises 22 points above the clean PQ (and above every point of the first panel)."""
    fig = drawn["robustness_severity.png"]
    top = max(float(ln.get_ydata().max()) for ax in fig.axes for ln in ax.lines)
    assert fig.axes[0].get_ylim()[0] == 0 and top <= fig.axes[0].get_ylim()[1]
    shot = next(ax for ax in fig.axes if ax.get_title().startswith("shot_noise"))
    assert max(float(ln.get_ydata().max()) for ln in shot.lines) == top


def test_the_heatmap_numbers_are_white_on_dark_cells_and_black_on_light_ones(drawn) -> None:
    ax = drawn["robustness_drop.png"].axes[0]
    colours = {t.get_color() for t in ax.texts}
    assert colours == {"black", "white"}  # the sweep's drops span light and dark cells


def test_a_corruption_is_named_in_its_groups_colour(drawn) -> None:
    from matplotlib.colors import same_color

    from panbench.reporting.colors import GROUP_COLORS, MODEL_PALETTE

    ax = drawn["robustness_drop.png"].axes[0]
    for tick in ax.get_yticklabels():
        assert same_color(tick.get_color(), GROUP_COLORS[GROUP_OF[tick.get_text()]])
    assert not set(GROUP_COLORS.values()) & set(MODEL_PALETTE)


def test_every_heatmap_number_reads_on_its_cell_whatever_its_shade() -> None:
    """Drops from 0 to 33 in steps of 3: every shade of the colour map, the mid-dark ones too."""
    fig, _ = robustness.drop_figure(np.arange(12, dtype=float).reshape(6, 2) * 3, list(SWEPT), ["a", "b"])
    fig.canvas.draw()
    assert not low_contrast(fig)
    figure_style.plt().close(fig)


def _titles(fig: Any) -> list[str]:
    return [t.get_text() for t in ([fig._suptitle] if fig._suptitle else []) + [ax.title for ax in fig.axes]
            if t.get_text()]


def test_every_title_names_the_dataset_and_no_figure_shows_the_fingerprint_of_its_only_image_set(drawn) -> None:
    from matplotlib.text import Text

    for name in FIGURES:
        fig = drawn[name]
        assert _titles(fig)[0].startswith("synth: "), (name, _titles(fig))
        assert not [t for t in fig.findobj(Text) if "f1a2b3c4" in t.get_text()], name


def test_the_fingerprint_is_a_footnote_where_the_results_hold_two_image_sets_of_the_dataset(results, figures,
                                                                                            tmp_path) -> None:
    records = load_records(results)
    other = [r.with_fields(provenance={**r.provenance, "dataset": {**r.provenance["dataset"],
                                                                   "fingerprint": "0badc0de" * 2}}) for r in records]
    note = plot_parts.image_set_note(records, records + other)
    assert plot_parts.image_set_note(records, records) == "" and note.startswith("image set synth f1a2b3c4 (10 images)")
    ap = analysis_plots
    for plot in (plots.pq_bars, ap.pq_intervals, ap.plot_pq_by_size, ap.error_bars):  # titles 2 ways
        plot(records, tmp_path, note=note)
    for name, fig in figures.items():
        assert "f1a2b3c4" not in _titles(fig)[0] and [t for t in fig.texts if t.get_text() == note], name


def test_the_speed_axis_is_logarithmic_past_a_tenfold_span_and_the_pareto_front_joins_the_unbeaten_runs(
        drawn, results) -> None:
    ax = drawn["pq_vs_speed.png"].axes[0]
    points = [(r.timings["images_per_s"], r.metrics["PQ"]) for r in load_records(results)]
    unbeaten = {p for p in points if not any(q != p and q[0] >= p[0] and q[1] >= p[1] for q in points)}
    (front,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    corners = {tuple(p) for p in front.get_xydata()}
    assert ax.get_xscale() == "log" and unbeaten == corners & set(points) and len(unbeaten) >= 2


def test_the_speed_names_sit_beside_their_points_on_no_other_name_nor_point(drawn) -> None:
    from matplotlib.text import Text

    ax = drawn["pq_vs_speed.png"].axes[0]
    boxes = [Text.get_window_extent(t) for t in ax.texts]
    assert sorted(t.get_text() for t in ax.texts) == sorted(m for m, _, _ in MODELS)
    points = [ax.transData.transform(t.xy) for t in ax.texts]
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:])
        assert not any(a.x0 - 4 < x < a.x1 + 4 and a.y0 - 4 < y < a.y1 + 4 for x, y in points)
        x, y = points[i]
        assert min(abs(a.x0 - x), abs(a.x1 - x)) < 30 and a.y0 - 30 < y < a.y1 + 30  # beside its own point


def test_a_models_line_in_the_sweep_has_its_colour_of_the_other_figures(drawn, results) -> None:
    from matplotlib.colors import same_color

    colors = model_colors(results, load_records(results))
    lines = drawn["robustness_severity.png"].axes[0].lines
    assert [ln.get_color() for ln in lines] == [colors[m] for m, _, _ in MODELS]
    bars = drawn["errors.png"].axes[0].containers
    assert not any(same_color(b.patches[0].get_facecolor(), c) for b in bars for c in colors.values())


def test_a_sweep_over_two_image_sets_of_a_dataset_names_each_line_by_its_fingerprint() -> None:
    a, b = sweep(["m", "m"])
    a["fingerprint"], b["fingerprint"] = "aaaaaaaa11111111", "bbbbbbbb22222222"
    assert [robustness._label(s, [a, b]) for s in (a, b)] == ["m (synth aaaaaaaa)", "m (synth bbbbbbbb)"]
    assert robustness._label(a, [a]) == "m"


def test_two_lines_of_one_model_in_the_sweep_are_told_apart_by_their_style(monkeypatch, tmp_path) -> None:
    """One model swept on two image sets (or with two post-processings): one colour, so each line and its legend
    entry get a line style of their own."""
    a, b = sweep(["m", "m"])
    a["fingerprint"], b["fingerprint"] = "aaaaaaaa11111111", "bbbbbbbb22222222"
    figs: dict[str, Any] = {}
    _lay_out(monkeypatch, figs)
    robustness.plots([a, b], tmp_path, {"m": "#0072B2"})
    fig = figs["robustness_severity.png"]
    styles = {(ln.get_label(), ln.get_linestyle()) for ln in fig.axes[0].lines}
    assert len(styles) == 2 and len({s for _, s in styles}) == 2, styles
    legend = {(h.get_label(), h.get_linestyle()) for h in fig.legends[0].get_lines()}
    assert legend == styles
    figure_style.plt().close(fig)


def test_a_sweep_recorded_without_a_fingerprint_is_named_so_beside_one_with() -> None:
    a, b = sweep(["m", "m"])
    a["fingerprint"], b["fingerprint"] = "aaaaaaaa11111111", None
    assert [robustness._label(s, [a, b]) for s in (a, b)] == ["m (synth aaaaaaaa)", "m (synth, no fingerprint)"]
