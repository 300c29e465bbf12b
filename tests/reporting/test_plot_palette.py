"""What every plot shares: a model's colour (one palette keyed by the model's label), the dataset in the title, no
plot without data (PQ against speed of score-only runs), labels inside the image (the robustness heatmap's colour
bar).  From the fixture record (invented numbers, tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from panbench.records.io import record_from_json
from panbench.records.schema import RunRecord
from panbench.reporting import plots

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def _rec(**changes: Any) -> RunRecord:
    r = copy.deepcopy(json.loads(GOLDEN.read_text()))
    r.update(changes)
    return record_from_json(r)


def _same(a: Any, b: Any) -> bool:
    from matplotlib.colors import to_rgba

    return to_rgba(a) == to_rgba(b)


def test_a_model_has_one_colour_in_every_plot(figures, tmp_path) -> None:
    """'b' is the second model of the bars; in the interval plot (where 'a' has no interval, so 'b' is drawn
    first) it keeps its colour."""
    ci = {k: [v - 1, v + 1] for k, v in _rec().metrics.items()}
    recs = [_rec(model="a", metrics={**_rec().metrics, "PQ": 30.0}), _rec(model="b", ci=ci), _rec(model="c", ci=ci)]
    plots.make_plots(recs, tmp_path)
    bars = figures["pq_bars.png"].axes[0].containers  # one per run, in the records' order
    colour = {r.model: c.patches[0].get_facecolor() for r, c in zip(recs, bars)}
    assert len({tuple(v) for v in colour.values()}) == 3
    intervals = figures["pq_intervals.png"].axes[0]
    names = [t.get_text() for t in intervals.get_yticklabels()]  # bottom to top: 'c', then 'b'
    points = [ln.get_color() for ln in intervals.lines if ln.get_marker() == "o"][::-1]  # drawn top to bottom
    drawn = dict(zip(reversed(names), points))
    assert _same(drawn["b"], colour["b"]) and _same(drawn["c"], colour["c"])


def test_plot_titles_name_the_dataset(figures, tmp_path) -> None:
    recs = [_rec(model="a", timings={"images_per_s": 2.0}), _rec(model="b")]
    plots.make_plots(recs, tmp_path)
    for name in ("pq_bars.png", "pq_vs_speed.png", "per_class_pq.png"):
        fig = figures[name]
        titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
        assert any(t.startswith("coco") for t in titles), (name, titles)


def test_no_speed_plot_for_runs_without_a_measured_speed(tmp_path) -> None:
    """`score --name` runs have no speed: no empty 'no measured speed' PNG, a note instead."""
    recs = [_rec(model="ext1", timings={"images_per_s": None}), _rec(model="ext2", timings={"images_per_s": None})]
    paths, notes = plots.make_plots(recs, tmp_path)
    assert not (tmp_path / "pq_vs_speed.png").exists() and (tmp_path / "pq_bars.png") in paths
    assert any("pq_vs_speed.png: skipped, no run has a measured speed" in n for n in notes), notes


def test_robustness_heatmap_colour_bar_label_inside_the_figure() -> None:
    """Two corruptions (a short heatmap): the colour bar's label lies inside the figure, not cut at its edge."""
    import numpy as np

    from panbench.reporting.figure_style import plt
    from panbench.reporting.robustness import drop_figure

    fig, _ = drop_figure(np.array([[3.0, 5.0], [1.0, 2.0]]), ["gaussian_noise", "defocus_blur"],
                         ["demo-mask2former", "demo-maskformer"])
    fig.canvas.draw()
    label = fig.axes[-1].yaxis.label
    box, page = label.get_window_extent(), fig.bbox
    assert label.get_text().startswith("PQ drop")
    assert page.y0 <= box.y0 and box.y1 <= page.y1 and box.x1 <= page.x1, (box, page)
    plt().close(fig)
