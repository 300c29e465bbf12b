"""The plots' layout decisions, from the fixture record (invented numbers, tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from panbench.reporting import plots

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def _rec(**changes) -> dict:
    r = copy.deepcopy(json.loads(GOLDEN.read_text()))
    r.update(changes)
    return r


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


def test_one_point_gets_an_axis_from_zero_and_labels_do_not_overlap(tmp_path) -> None:
    import matplotlib.pyplot as plt

    recs = [_rec(), _rec(postprocess="maskwise")]  # same speed, close PQ: labels would overlap
    recs[1]["metrics"] = {**recs[1]["metrics"], "PQ": 9.5}
    seen = {}
    orig = plots._save

    def keep(fig, path, layout=True):
        fig.canvas.draw()
        ax = fig.axes[0]
        seen["xlim"] = ax.get_xlim()
        seen["ys"] = [t.xyann[1] for t in ax.texts]
        seen["ylim"] = ax.get_ylim()
        return orig(fig, path, layout)

    plots._save = keep
    try:
        plots.pq_vs_speed(recs, tmp_path)
    finally:
        plots._save = orig
    plt.close("all")
    assert seen["xlim"][0] == 0 and seen["xlim"][1] == pytest.approx(1.4 * 1.5)
    a, b = seen["ys"]
    assert abs(a - b) >= 0.1 * (seen["ylim"][1] - seen["ylim"][0])  # labels a line apart, not on each other


def test_legend_below_the_bars(tmp_path) -> None:
    recs = [_rec(), _rec(postprocess="maskwise"), _rec(model="other")]
    seen = {}
    orig = plots._save

    def keep(fig, path, layout=True):
        fig.canvas.draw()
        seen["legend"] = fig.legends[0].get_window_extent()
        seen["axes"] = [ax.get_window_extent() for ax in fig.axes]
        return orig(fig, path, layout)

    plots._save = keep
    try:
        plots.pq_bars(recs, tmp_path)
        assert all(not seen["legend"].overlaps(ax) for ax in seen["axes"])
        plots.per_class_differences(recs, tmp_path)
        assert all(not seen["legend"].overlaps(ax) for ax in seen["axes"])
    finally:
        plots._save = orig
