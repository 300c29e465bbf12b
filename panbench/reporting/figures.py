"""The figure helpers of every plot: matplotlib (headless), the bar styles and legend handles of a set of runs,
the legend below the axes, and saving a figure to PNG.

A leaf of the plotting modules (:mod:`.plots`, :mod:`.robustness`): it imports no
plotting module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.records.schema import RunRecord
from panbench.reporting.labels import dataset_key, model_label

HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def plt() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


Colors = dict[str, Any]  # a model's label (:func:`panbench.reporting.labels.model_label`) -> its colour


def palette(records: list[RunRecord]) -> Colors:
    """One colour per model label, the same in every plot drawn with it (a report's, a ``plot`` run's): the
    labels (each within its dataset's runs, and within the runs on its dataset fingerprint, as the plots of one
    fingerprint label them) sorted, coloured in that order from tab10 (tab20 past ten)."""
    labels = sorted({model_label(r, [x for x in records if x.dataset == r.dataset]) for r in records} |
                    {model_label(r, [x for x in records if dataset_key(x) == dataset_key(r)]) for r in records})
    cmap = plt().get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {m: cmap(k % cmap.N) for k, m in enumerate(labels)}


def styles(records: list[RunRecord], colors: Colors | None = None, context: list[RunRecord] | None = None
           ) -> tuple[list[dict[str, Any]], list[Any]]:
    """Bar styles (colour by model from ``colors``, by default :func:`palette` of ``context``, hatch by
    post-processing) and legend handles that name each model and each post-processing once, never a model
    twice; with runs of several frameworks, each model's framework.  ``context`` (default ``records``): the runs
    the labels are told apart among (a plot of some of a dataset's runs labels them as the dataset's plots do)."""
    from matplotlib.patches import Patch

    context = context or records
    colors = colors or palette(context)
    labels = [model_label(r, context) for r in records]  # other settings or data: another colour
    models = list(dict.fromkeys(labels))
    pps = list(dict.fromkeys(r.postprocess for r in records))
    out = [{"color": colors[m], "edgecolor": "white" if len(pps) == 1 else "black",
            "linewidth": 0.5, "hatch": HATCHES[pps.index(r.postprocess) % len(HATCHES)]}
           for r, m in zip(records, labels)]
    fw = {m: r.framework for r, m in zip(records, labels)}
    mixed = len(set(fw.values())) > 1  # an mmdet and a transformers model side by side: say which is which
    handles = [Patch(color=colors[m], label=f"{m} ({fw[m]})" if mixed else m) for m in models]
    if len(pps) > 1:
        handles += [Patch(facecolor="white", edgecolor="black", hatch=HATCHES[k % len(HATCHES)],
                          label=f"post-processing: {p}") for k, p in enumerate(pps)]
    return out, handles


def wrap(text: str, width: int = 60) -> str:
    """A long legend label (a model with its --cfg-options) on lines of at most ``width`` characters, broken at
    spaces where it can."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def legend_below(fig: Any, handles: list[Any], note: str = "") -> None:
    """The legend under the axes, where it covers no bar: long labels wrapped, in as many columns as fit the
    figure's width (measured with the renderer), the figure made taller by the legend's height so that the axes
    keep theirs; ``note`` (a line such as what was left out) under the legend, wrapped to the width."""
    labels = [hd.get_label() for hd in handles]
    w, h = fig.get_size_inches()
    renderer = fig.canvas.get_renderer()
    leg = None
    for width in (60, 45, 30, 20):  # narrower lines only where one column of them is still too wide
        for hd, label in zip(handles, labels):
            hd.set_label(wrap(label, width))
        for ncol in range(max(1, min(len(handles), int(w / 2.2))), 0, -1):
            leg = fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
                             bbox_to_anchor=(0.5, 0.0))
            if leg.get_window_extent(renderer).width <= 0.96 * fig.bbox.width:
                break
            leg.remove()
            leg = None
        if leg is not None:
            break
    if leg is None:  # labels of unbreakable 20-character words: one column, as narrow as it gets
        leg = fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=8, frameon=False,
                         bbox_to_anchor=(0.5, 0.0))
    assert leg is not None
    leg_h = leg.get_window_extent(renderer).height / fig.dpi
    note_h = 0.0
    txt = None
    if note:
        import textwrap

        txt = fig.text(0.5, 0.02, "\n".join(textwrap.wrap(note, int(w * 14))), ha="center", va="bottom", fontsize=8)
        note_h = txt.get_window_extent(renderer).height / fig.dpi + 0.08
    extra = leg_h + note_h + 0.15
    fig.set_figheight(h + extra)
    H = h + extra
    leg.set_bbox_to_anchor((0.5, (note_h + 0.04) / H), transform=fig.transFigure)
    if txt is not None:
        txt.set_position((0.5, 0.04 / H))
    fig.tight_layout(rect=(0, extra / H, 1, 1))


def save(fig: Any, path: Path, layout: bool = True, dpi: int = 100) -> Path:
    """Save ``fig`` as a PNG at ``path`` (its folder made), close it; returns ``path``.  The image holds every text
    of the figure (``bbox_inches="tight"``): a label past the figure's edge widens it, never cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    plt().close(fig)
    return path


def plot_title(records: list[RunRecord], what: str) -> str:
    """A plot's title: the dataset (its name and fingerprint when the runs share one) and what it shows."""
    keys = {dataset_key(r) for r in records}
    return f"{keys.pop() if len(keys) == 1 else records[0].dataset}: {what}"


def place_labels(ax: Any, labels: list[Any], points: list[tuple[float, float]]) -> None:
    """Move each label (an annotation placed in offset points from its point, in order) to the nearest place
    around its point where its box overlaps no label placed before and no point (``points``, data
    coordinates), measured with the renderer on the figure as it is laid out; a label moved off its point's
    side gets a thin line to it.  Lay the figure out (``tight_layout``) before: the places are in pixels."""
    from matplotlib.text import Text

    fig = ax.figure
    fig.canvas.draw()  # the axes' limits settled (autoscaling is lazy) and the layout done
    renderer = fig.canvas.get_renderer()
    half = 4.0 * fig.dpi / 72  # a marker's half width in pixels (a point of size 50-60)
    marks = [ax.transData.transform(p) for p in points]
    taken = [(x - half, y - half, x + half, y + half) for x, y in marks]
    step = max((Text.get_window_extent(t, renderer).height for t in labels), default=10.0) * 72 / fig.dpi + 1
    # right of the point, then a line further up or down each time; then the same on the left
    spots = [(dx, dy, ha) for dx, ha in ((6.0, "left"), (-6.0, "right")) for k in range(12)
             for dy in ((0.0,) if k == 0 else (k * step, -k * step))]
    inside = ax.get_window_extent(renderer)

    def box(text: Any) -> Any:  # the text's own box (an annotation's extent also spans its line to the point)
        text.update_positions(renderer)
        return Text.get_window_extent(text, renderer)

    def free(b: Any) -> bool:
        return not any(b.x0 < x1 and x0 < b.x1 and b.y0 < y1 and y0 < b.y1 for x0, y0, x1, y1 in taken)

    def within(b: Any) -> bool:
        return inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0 and b.y1 <= inside.y1

    def move(text: Any, spot: tuple[float, float, str]) -> Any:
        text.xyann = spot[:2]
        text.set_horizontalalignment(spot[2])
        return box(text)

    for text in labels:  # a free place inside the axes, else a free place, else its first place
        if not any(free(b := move(text, sp)) and within(b) for sp in spots) and \
                not any(free(move(text, sp)) for sp in spots):
            move(text, spots[0])
        if text.arrow_patch is not None:  # the line to the point, where the label left its side
            text.arrow_patch.set_visible(abs(text.xyann[1]) > step / 2)
        b = box(text)
        taken.append((b.x0, b.y0, b.x1, b.y1))
