"""Every plot of `panbench plot` is titled the same way: the dataset (its name and fingerprint when the runs share
one, as in the tables' `dataset` column), then what the plot shows (docs/reporting.md#plots).  Records made for
real (tests/reporting/analysis_records.py), so that the analysis plots are drawn too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from analysis_records import add_run, ground_truth

from panbench.records.io import load_records
from panbench.reporting import plots

ANALYSIS_PLOTS = {name for _, name, _ in plots.PLOTS}  # pq_intervals.png, pq_by_size.png, errors.png


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two runs on one generated set (fingerprint f1a2b3c4...), each with every analysis and a measured speed."""
    root = tmp_path_factory.mktemp("title_results")
    gt_json, images = ground_truth(root / "data", n_images=10)
    for k, model in enumerate(("model-a", "model-b"), 1):
        add_run(root, model, gt_json, images, pred_seed=k, date=f"2001-01-01T00:00:0{k}+00:00",
                timings={"images_per_s": 10.0 * k})
    return root


def _title(fig: Any) -> str:
    """A figure's title: its suptitle where it has one (the axes' titles then name the panels), else the title
    of its first axes."""
    return fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()


def test_every_plot_title_starts_with_the_dataset_and_its_fingerprint(results, figures, tmp_path) -> None:
    paths, notes = plots.make_plots(load_records(results), tmp_path)
    assert not [n for n in notes if n.startswith(plots.FAILED)], notes
    assert ANALYSIS_PLOTS | {"pq_bars.png", "pq_vs_speed.png", "per_class_pq.png"} <= set(figures), sorted(figures)
    titles = {name: _title(fig) for name, fig in figures.items()}
    assert all(t.startswith("synth f1a2b3c4: ") for t in titles.values()), titles


@pytest.mark.parametrize("name", sorted(ANALYSIS_PLOTS))
def test_an_analysis_plot_title_starts_as_the_other_plots_titles(results, figures, tmp_path, name) -> None:
    """The analysis plots (pq_intervals, pq_by_size, errors) name the dataset as pq_bars does, and then what they
    show."""
    recs = load_records(results)
    plots.pq_bars(recs, tmp_path)
    fn = next(f for _, n, f in plots.PLOTS if n == name)
    fn(recs, tmp_path)
    dataset = _title(figures["pq_bars.png"]).split(": ")[0]
    assert dataset == "synth f1a2b3c4"
    assert _title(figures[name]).startswith(f"{dataset}: ") and len(_title(figures[name])) > len(dataset) + 2
