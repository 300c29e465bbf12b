"""What the figures of ``plot`` and ``report`` share: the bar styles, the title, the image-set footnote, the
save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.records.schema import RunRecord
from panbench.reporting.colors import Colors, model_colors
from panbench.reporting.figure_files import write_figure
from panbench.reporting.figure_style import (
    fit_texts,
    plt,
)
from panbench.reporting.labels import (
    dataset_key,
    images,
    model_label,
)

HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def styles(records: list[RunRecord], colors: Colors | None = None, context: list[RunRecord] | None = None
           ) -> tuple[list[dict[str, Any]], list[Any]]:
    """Bar styles (colour by model, hatch by post-processing) and legend handles naming each once."""
    from matplotlib.patches import Patch

    context = context or records
    colors = colors or model_colors(None, context)
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


def save(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Save ``fig`` at ``path`` in the figure format in effect, its texts fitted first, and close it; the path."""
    fit_texts(fig)
    path = write_figure(fig, path, dpi)
    plt().close(fig)
    return path


def plot_title(records: list[RunRecord], what: str) -> str:
    """A figure's title: the dataset's name, then what the figure shows."""
    return f"{', '.join(dict.fromkeys(r.dataset for r in records))}: {what}"


def image_set_note(group: list[RunRecord], records: list[RunRecord]) -> str:
    """The footnote naming the image set of ``group`` where ``records`` hold several of its dataset; else ''."""
    name = group[0].dataset
    sets = list(dict.fromkeys(dataset_key(r) for r in records if r.dataset == name))
    return (f"image set {dataset_key(group[0])} ({images(group[0].n_images)}), one of the {len(sets)} image sets of "
            f"{name} in these results") if len(sets) > 1 else ""

SIDE_BY_SIDE = 6.0  # inches: narrower figures stack the interval panels (PQ, PQ_th, PQ_st) one under the other
