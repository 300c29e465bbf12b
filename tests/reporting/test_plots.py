"""The plots' layout decisions, from the fixture record (invented numbers, tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from panbench.records.io import record_from_json
from panbench.records.schema import RunRecord
from panbench.reporting import plot_parts, plots

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def _raw(**changes) -> dict:
    r = copy.deepcopy(json.loads(GOLDEN.read_text()))
    r.update(changes)
    return r


def _rec(**changes) -> RunRecord:
    return record_from_json(_raw(**changes))


def test_legend_names_each_model_once_with_several_postprocessings() -> None:
    recs = [_rec(), _rec(postprocess="maskwise"), _rec(model="other")]
    _, handles = plots.styles(recs)
    labels = [h.get_label() for h in handles]
    assert labels == ["fixture-model", "other", "post-processing: default", "post-processing: maskwise"]


def test_runs_of_one_model_with_other_settings_or_data_get_their_own_colour_and_entry() -> None:
    """--cfg-options, AMP, batch size or another demo set: another bar colour and legend entry (not one model
    drawn twice in the same colour)."""
    demo4 = {**_rec()["provenance"], "dataset": {"fingerprint": "bbbbbbbb22222222"}}
    recs = [_rec(), _rec(provenance={**_rec()["provenance"], "cfg_options": {"a.b": 0.9}}),
            _rec(amp="bf16", batch_size=2), _rec(provenance=demo4)]
    style, handles = plots.styles(recs)
    assert [h.get_label() for h in handles] == [
        "fixture-model (coco)", "fixture-model (a.b=0.9) (coco)", "fixture-model (batch 2; amp bf16) (coco)",
        "fixture-model (coco bbbbbbbb)"]
    assert len({s["color"] for s in style}) == 4


def test_legend_names_the_framework_when_runs_mix_frameworks() -> None:
    recs = [_rec(), _rec(model="hf:m2f", framework="transformers"), _rec(model="ext", architecture="external")]
    labels = [h.get_label() for h in plots.styles(recs)[1]]
    assert labels == ["fixture-model (mmdet)", "hf:m2f (transformers)", "ext (external)"]
    assert [h.get_label() for h in plots.styles(recs[:1])[1]] == ["fixture-model"]  # one framework: not repeated


def test_absent_categories_are_left_out_of_the_ranking() -> None:
    a = _rec()
    b = _rec(per_class={**a["per_class"], "5": {"PQ": 0.0, "SQ": 0.0, "RQ": 0.0, "TP": 0, "FP": 0, "FN": 0}})
    a["per_class"]["5"] = {"PQ": 90.0, "SQ": 90.0, "RQ": 100.0, "TP": 1, "FP": 0, "FN": 0}
    b["per_class"]["1"] = {**b["per_class"]["1"], "PQ": 50.0}
    cids, _, order = plots.ranked_classes([a, b])
    assert [cids[i] for i in order] == ["1", "92"]  # '5' (PQ undefined for b) is not ranked first, nor at all


def test_the_per_class_plot_says_when_it_shows_only_the_classes_present_in_every_run(figures, tmp_path) -> None:
    a = _rec()
    b = _rec(per_class={**a["per_class"], "5": {"PQ": 0.0, "SQ": 0.0, "RQ": 0.0, "TP": 0, "FP": 0, "FN": 0}})
    a["per_class"]["5"] = {"PQ": 90.0, "SQ": 90.0, "RQ": 100.0, "TP": 1, "FP": 0, "FN": 0}
    name = a.provenance.get("category_names", {}).get("5", "5")
    plots.per_class_differences([a, b], tmp_path)
    notes = [" ".join(t.get_text().split()) for t in figures["per_class_pq.png"].texts]
    (note,) = [n for n in notes if "present in every run" in n]
    n = len(a.per_class)
    assert f"only classes present in every run are compared ({n - 1} of {n})" in note and note.endswith(name)
    plots.per_class_differences([a, _rec(per_class=a["per_class"])], tmp_path)  # every class in both: no note
    assert not any("present in every run" in t.get_text() for t in figures["per_class_pq.png"].texts)


def test_speeds_within_ten_times_get_a_linear_axis_from_zero_and_names_apart(figures, tmp_path) -> None:
    """Two runs of one speed and close PQs: a linear axis from 0 (one speed gets a meaningful axis), the names
    beside their points, neither on the other nor on a point."""
    from matplotlib.text import Text

    recs = [_rec(), _rec(postprocess="maskwise")]
    recs[1] = recs[1].with_fields(metrics={**recs[1].metrics, "PQ": recs[0].metrics["PQ"] - 0.2})
    plots.pq_vs_speed(recs, tmp_path)
    fig = figures["pq_vs_speed.png"]
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim() == pytest.approx((0, 1.25 * 1.5))
    a, b = (Text.get_window_extent(t) for t in ax.texts)
    assert not _overlap(a, b)
    points = [ax.transData.transform((1.5, r.metrics["PQ"])) for r in recs]
    assert not any(box.x0 < x < box.x1 and box.y0 < y < box.y1 for box in (a, b) for x, y in points)


def test_legend_below_the_bars(tmp_path) -> None:
    recs = [_rec(), _rec(postprocess="maskwise"), _rec(model="other")]
    seen = {}
    orig = plot_parts.save

    def keep(fig, path, dpi=100):
        fig.canvas.draw()
        seen["legend"] = fig.legends[0].get_window_extent()
        seen["axes"] = [ax.get_window_extent() for ax in fig.axes]
        return orig(fig, path, dpi)

    plot_parts.save = keep
    try:
        plots.pq_bars(recs, tmp_path)
        assert all(not seen["legend"].overlaps(ax) for ax in seen["axes"])
        plots.per_class_differences(recs, tmp_path)
        assert all(not seen["legend"].overlaps(ax) for ax in seen["axes"])
    finally:
        plot_parts.save = orig


EIGHT = ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn",
         "mask2former_swin-l-p4-w12-384-in21k_8xb2-lsj-100e_coco-panoptic", "hf-mask2former_swin-t", "demo-mask2former",
         "demo-mask2former", "Mask DINO (detectron2) saved predictions"]


def _eight() -> list[RunRecord]:
    """Eight runs with long labels (a long config name, --cfg-options, a post-processing with parameters), close
    speeds and PQs, two of them without a measured speed: one a run of a model that has others."""
    recs = []
    for i, name in enumerate(EIGHT):
        r = _raw(model=name)
        r["metrics"] = {k: v + 3 * i for k, v in r["metrics"].items()}
        r["timings"] = {"images_per_s": None if i in (5, 7) else 1.5 + (i % 3) * 0.02}
        if i == 1:
            r["provenance"] = {**r["provenance"], "cfg_options": {"model.test_cfg.max_per_image": 50,
                                                                  "model.panoptic_head.num_queries": 50}}
        if i == 2:
            r.update(batch_size=8, amp="bf16", provenance={**r["provenance"], "dataset": {"fingerprint": "0" * 16}})
        if i == 5:
            r["provenance"] = {**r["provenance"], "cfg_options": {"model.test_cfg.object_mask_thr": 0.95,
                                                                  "model.test_cfg.iou_thr": 0.95}}
        if i == 6:
            r["postprocess"] = "maskwise(alpha=0.5,beta=0.3)"
        recs.append(record_from_json(r))
    return recs


def _layout(monkeypatch, tmp_path, plot) -> dict:
    """Draw one plot and keep the window extents (pixels) of the figure, its legends, axes and every text."""
    seen: dict = {}
    orig = plot_parts.save

    def keep(fig, path, dpi=100):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        seen["fig"] = fig.bbox
        seen["legends"] = [leg.get_window_extent(r) for leg in fig.legends]
        seen["axes"] = [ax.get_window_extent(r) for ax in fig.axes if ax.axison]
        seen["axes_full"] = [ax.get_tightbbox(r) for ax in fig.axes if ax.axison]  # with ticks and labels
        seen["fig_texts"] = [(t.get_text(), t.get_window_extent(r)) for t in fig.texts]
        seen["annotations"] = [t.get_window_extent(r) for ax in fig.axes for t in ax.texts]
        seen["drawn"] = fig.get_tightbbox(r).transformed(fig.dpi_scale_trans)  # all that is drawn, in pixels
        return orig(fig, path, dpi)

    monkeypatch.setattr(plot_parts, "save", keep)
    plot(_eight(), tmp_path)
    return seen


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """``_layout`` of a plot at a width, each (plot, width) drawn once for the module's tests."""
    from panbench.reporting.figure_style import figure_width

    drawn: dict = {}

    def layout(plot, width: str) -> dict:
        if (plot, width) not in drawn:
            with pytest.MonkeyPatch.context() as mp, figure_width(width):
                drawn[plot, width] = _layout(mp, tmp_path_factory.mktemp("layout"), plot)
        return drawn[plot, width]

    return layout


def _inside(inner, outer, tol: float = 1.0) -> bool:
    return (inner.x0 >= outer.x0 - tol and inner.y0 >= outer.y0 - tol and inner.x1 <= outer.x1 + tol
            and inner.y1 <= outer.y1 + tol)


@pytest.mark.parametrize("width", ["double", "single"])
@pytest.mark.parametrize("plot", [plots.pq_bars, plots.pq_vs_speed, plots.per_class_differences])
def test_eight_runs_legend_and_every_text_inside_the_figure_and_off_the_axes(layouts, plot, width) -> None:
    """At a page's width and at a column's (a figure of fixed width: nothing may stick out of it)."""
    seen = layouts(plot, width)
    assert seen["legends"] and all(_inside(leg, seen["fig"]) for leg in seen["legends"])
    assert _inside(seen["drawn"], seen["fig"])  # no label, tick or legend entry cut at the figure's edges
    assert all(_inside(a, seen["fig"]) for a in seen["annotations"])  # nor a name beside its point
    for leg in seen["legends"]:  # the legend covers no axes, tick or axis label
        assert not any(leg.overlaps(ax) for ax in seen["axes_full"])
    for _, t in seen["fig_texts"]:  # a note under the legend, not on it
        assert not any(t.overlaps(leg) for leg in seen["legends"])


def test_eight_runs_speed_names_stay_inside_the_axes_and_the_note_names_each_run_left_out(layouts) -> None:
    seen = layouts(plots.pq_vs_speed, "double")  # the default width
    (ax,) = seen["axes"]
    assert len(seen["annotations"]) == 6 and all(_inside(a, ax) for a in seen["annotations"])
    (note,) = [text for text, _ in seen["fig_texts"] if "left out" in text]
    flat = " ".join(note.split())
    assert "demo-mask2former (model.test_cfg.iou_thr=0.95; model.test_cfg.object_mask_thr=0.95)" in flat
    assert "Mask DINO (detectron2) saved predictions" in flat


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_gflops_labels_overlap_no_other_label_nor_point(figures, tmp_path) -> None:
    """Two small models of nearly the same GFLOPs and PQ beside a large one, and a cluster of five: in the rendered
    figure no label's box overlaps another label's or a point (its own or another's)."""
    from matplotlib.text import Text

    cases = [[("demo-maskformer", 10.0, 40.0), ("demo-mask2former", 10.4, 40.3), ("mask2former_swin-l", 900.0, 57.0)],
             [(f"model-{k}", 50.0 + k, 30.0 + 0.2 * k) for k in range(5)]]
    for k, case in enumerate(cases):
        recs = [_rec(model=m, flops={"gflops": g, "images": 1}, metrics={**_rec().metrics, "PQ": pq})
                for m, g, pq in case]
        plots.pq_vs_gflops(recs, tmp_path / str(k))
        fig = figures["pq_vs_gflops.png"]
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        ax = fig.axes[0]
        boxes = [Text.get_window_extent(t, r) for t in ax.texts]  # the text (an annotation's spans its line too)
        assert [t.get_text() for t in ax.texts] == [m for m, _, _ in case]
        points = [ax.transData.transform((g, pq)) for _, g, pq in case]
        for i, a in enumerate(boxes):
            assert not any(_overlap(a, b) for b in boxes[i + 1:]), (k, case[i][0])
            assert not any(a.x0 < x < a.x1 and a.y0 < y < a.y1 for x, y in points), (k, case[i][0])
