"""Runs named in the figures: a run's label on as many lines as its place needs, broken between words only (a word
too long for a line shortened in its middle with an ellipsis), and the figures that name several runs
(reliability.png's panel titles, pq_intervals.png's and errors.png's tick labels) with no text on another at
`--figure-width single` and `double`, measured with matplotlib's renderer.  Five `score --name` runs of long names, two
of them with a post-processing label of settings (tests/helpers.py's scored runs, renamed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import scored_runs
from test_figure_width import _texts

from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting import figure_style, plot_parts
from panbench.reporting.labels import fold_label, short_label

MASKWISE = "maskwise(a=0.25,b=1,conf=0.25,keep=0.6)"
# the records of the scored runs in turn (the odd ones rank first); at double width the second and third panels (the
# fourth run's and the first's) side by side, each title's first line wide
RUNS = (("PanopticFPN ResNeXt-101 DCN Mask Scoring", "external"),
        ("OneFormer Mmmmmmmmmm", MASKWISE),
        ("demo-mask2former", MASKWISE),
        ("Mask2Former SwinL-IN21k WWWW", "external"),
        ("my external segmentation system trained longer", "external"))
FIGURES = ("reliability.png", "pq_intervals.png", "errors.png")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """The five runs: copies of the scored runs' records under long names (their analysis files shared)."""
    res = scored_runs(tmp_path_factory.mktemp("run_labels"))
    sources = sorted((res / "runs").glob("*.json"))
    for k, (model, postprocess) in enumerate(RUNS):
        rec = json.loads(sources[k % len(sources)].read_text())
        rec.update(model=model, postprocess=postprocess, date=f"2001-01-01T00:00:0{k}+00:00")
        (res / "runs" / f"run{k}.json").write_text(json.dumps(rec))
    for p in sources:
        p.unlink()
    return res


@pytest.fixture(scope="module", params=["single", "double"])
def figures(request, results) -> Any:
    """`panbench plot --figure-width WIDTH`'s figures of the runs, as they would be written, by file name: the three
    of FIGURES, the ones that name several runs; plot's other figures (the PQ bars, per-class PQ, PQ by size and
    the score threshold's, read by no test here) are not drawn, each figure being drawn on its own."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from panbench.reporting import analysis_plots, plots

    figs: dict[str, Any] = {}

    def keep(fig: Any, path: Path, *args: Any, **kwargs: Any) -> Path:
        figs[path.name] = fig
        return path

    def undrawn(records: Any, out: Path, *args: Any) -> Path:
        return out / "undrawn.png"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plot_parts, "write_figure", keep)
        for name in ("pq_bars", "per_class_differences"):
            mp.setattr(plots, name, undrawn)
        mp.setattr(plots, "PLOTS", [(key, name, fn if name in FIGURES else undrawn)
                                    for key, name, fn in analysis_plots.PLOTS])
        assert main(["plot", "--results", str(results), "--figure-width", request.param]) == 0
    for fig in figs.values():  # saving closed them: a canvas to measure on again
        FigureCanvasAgg(fig).draw()
    yield request.param, figs
    for fig in figs.values():
        figure_style.plt().close(fig)


def names(shown: str, label: str) -> bool:
    """Whether ``shown`` (a tick label, or a title whose first lines are the run's) is ``label`` on lines broken
    only where :func:`fold_label` may break it: a space turned into a line break, or a break after ',', ';', '/',
    '_' or '-'."""
    j = 0
    for ch in shown:
        if j == len(label):
            return ch == "\n"  # the rest of a title: its own lines
        if ch == "\n" and label[j] == " ":
            j += 1
        elif ch == "\n" and not (0 < j and label[j - 1] in ",;/_-"):
            return False
        elif ch != "\n":
            if ch != label[j]:
                return False
            j += 1
    return j == len(label)


def test_fold_label_breaks_between_words_and_shortens_a_word_too_long_with_an_ellipsis() -> None:
    label = f"demo-mask2former [{MASKWISE}]"
    assert fold_label(label, 24) == "demo-mask2former\n[maskwise(a=0.25,b=1,\nconf=0.25,keep=0.6)]"
    assert fold_label("my external segmentation system", 24) == "my external segmentation\nsystem"
    assert fold_label("a" * 30, 10) == "aaaaa…aaaa"  # its start and end kept
    assert fold_label("one two three four five six", 9, lines=2) == "one two\n… six"  # the last line kept
    assert fold_label("short", 24) == "short"


def test_plot_names_each_run_broken_between_words_only(figures, results) -> None:
    """The user's labels in the three figures: every line break at a space or after ',', ';', '/', '_' or '-'."""
    width, figs = figures
    records = load_records(results)
    labels = {short_label(r, records) for r in records}
    assert any(MASKWISE in x for x in labels)
    for name in FIGURES:
        fig = figs[name]
        shown = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()]
        shown += [ax.get_title() for ax in fig.axes]
        for label in labels:
            assert any(names(s, label) for s in shown), (width, name, label, [s for s in shown if "\n" in s])


def test_no_two_titles_or_labels_meet_at_single_and_double_width(figures) -> None:
    """No text of reliability.png, pq_intervals.png or errors.png on another: the neighbouring panels' titles stand
    apart (their boxes as matplotlib's renderer measures them)."""
    from matplotlib.text import Text

    width, figs = figures
    for name in FIGURES:
        fig = figs[name]
        r = fig.canvas.get_renderer()
        titles = [ax.title for ax in fig.axes if ax.get_title()]
        boxes = [t.get_window_extent(r) for t in titles]
        assert not [(titles[i].get_text(), titles[j].get_text()) for i in range(len(boxes))
                    for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])], (width, name)
        shown = _texts(fig)
        every = [Text.get_window_extent(t, r) for t in shown]
        meet = [(shown[i].get_text(), shown[j].get_text()) for i in range(len(shown))
                for j in range(i + 1, len(shown)) if every[i].overlaps(every[j])]
        assert not meet, (width, name, meet)
