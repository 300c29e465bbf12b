"""``panbench viz``: one image with the panoptic overlays of one or two models beside the ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.datasets import PanopticDataset, Sample
from panbench.errors import InputError
from panbench.pq.png import read_ids
from panbench.reporting.figure_files import write_figure
from panbench.reporting.figure_style import MIN_TEXT_PT, TITLE_PT, current_width, new_figure, plt, styled, wrap

PANEL_INCHES = 1.7  # the narrowest panel: its title and the segments' names legible in print


@dataclass
class Prediction:
    model: str
    ids: np.ndarray
    segments: list[dict[str, Any]]
    query_maps: list[tuple[str, float, np.ndarray]] = field(default_factory=list)  # (label, score, HxW in [0,1])


def find_sample(dataset: PanopticDataset, image_id: int) -> Sample:
    if (found := next((s for s in dataset.samples if s.image_id == image_id), None)) is not None:
        return found
    ids = sorted((s.image_id for s in dataset.samples),
                 key=lambda i: (not isinstance(i, int), i if isinstance(i, int) else 0, str(i)))
    some = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
    raise InputError(f"{dataset.ann_file}: image {image_id} is not in the dataset; its {len(ids)} image ids are "
                     f"{some} (its 'images'); pass one of them to --image")


def predict(lm: Any, spec_name: str, sample: Sample, top_queries: int = 4) -> Prediction:
    """Run a loaded model on one image, with the masks of its best queries when it has them."""
    import torch

    data = lm.pipeline({"img_path": str(sample.image_path), "img_id": sample.image_id})
    with torch.inference_mode():
        out, queries = lm.family.query_masks(data, str(next(lm.model.parameters()).device), top_queries)
    ids, segs = lm.family.to_segments(out)
    return Prediction(spec_name, ids, segs, [(lm.names[label], score, mask) for label, score, mask in queries])


def overlay(image: np.ndarray, ids: np.ndarray, segments: list[dict[str, Any]], colors, isthing) -> np.ndarray:
    """The segments over ``image`` in their category's colour (jittered per thing, as panopticapi), edges white."""
    col = np.zeros(ids.shape + (3,), np.uint8)
    rng = np.random.default_rng(0)
    for s in segments:
        base = np.array(colors.get(s["category_id"], [128, 128, 128]), np.int32)
        if isthing.get(s["category_id"], False):
            base = np.clip(base + rng.integers(-40, 41, 3), 0, 255)
        col[ids == s["id"]] = base
    out = image.astype(np.float32)
    labelled = ids > 0
    out[labelled] = 0.45 * out[labelled] + 0.55 * col[labelled]
    edge = np.zeros(ids.shape, bool)
    edge[:-1] |= ids[:-1] != ids[1:]
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    out[edge] = 255
    return out.astype(np.uint8)


def semantic(ids: np.ndarray, segments: list[dict[str, Any]]) -> np.ndarray:
    sem = np.zeros(ids.shape, np.int64)
    for s in segments:
        sem[ids == s["id"]] = s["category_id"]
    return sem


def label_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the segment's pixel farthest from its edge: on the segment itself, also for a C or a ring."""
    import cv2

    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def _labels(ax: Any, ids: np.ndarray, segments: list[dict[str, Any]], names: dict[int, str]) -> None:
    """The category name of each segment larger than 0.2% of the image, on a pixel of that segment."""
    for s in segments:
        mask = ids == s["id"]
        if mask.sum() > 0.002 * ids.size:
            x, y = label_point(mask)
            ax.text(x, y, names.get(s["category_id"], str(s["category_id"])), fontsize=MIN_TEXT_PT,
                    ha="center", va="center", color="black",
                    bbox={"facecolor": "white", "alpha": 0.6, "pad": 0.5, "linewidth": 0})


def draw_overlay(sample: Sample, dataset: PanopticDataset, preds: list[Prediction], out: Path,
           image: np.ndarray | None = None, heading: str = "") -> Path:
    """Write the figure (:func:`figure`) at ``out`` in the figure format in effect, 110 dpi by default; its path."""
    fig = figure(sample, dataset, preds, image, heading)
    out = write_figure(fig, out, 110)
    plt().close(fig)
    return out


@styled
def figure(sample: Sample, dataset: PanopticDataset, preds: list[Prediction], image: np.ndarray | None = None,
           heading: str = "") -> Any:
    """Image, ground truth, each model, their disagreement and query masks, panels :data:`PANEL_INCHES` wide or more."""
    import json

    from PIL import Image

    cats = json.loads(dataset.ann_file.read_text())["categories"]
    colors = {c["id"]: c.get("color", [128, 128, 128]) for c in cats}
    isthing = {c["id"]: bool(c.get("isthing")) for c in cats}
    names = {c["id"]: c.get("name", str(c["id"])) for c in cats}
    if image is None:  # else the image the models saw (a corrupted one: viz --corruption)
        image = np.asarray(Image.open(sample.image_path).convert("RGB"))
    segmented = [("ground truth", read_ids(sample.gt_png, f"image {sample.image_id}"), sample.gt_ann["segments_info"]),
                 *((p.model, p.ids, p.segments) for p in preds)]
    panels: list[tuple[str, np.ndarray, Any, np.ndarray | None]] = [
        ("image", image, None, None),
        *((title, overlay(image, ids, segs, colors, isthing), (ids, segs), None) for title, ids, segs in segmented)]
    if len(preds) == 2:
        a, b = (semantic(p.ids, p.segments) for p in preds)
        dis = a != b
        gray = np.repeat(image.mean(-1, keepdims=True), 3, -1) * 0.6
        gray[dis] = [230, 30, 30]
        panels.append((f"labels differ ({100 * dis.mean():.1f}% of pixels)", gray.astype(np.uint8), None, None))
    panels += [(f"{p.model}\nquery '{label}' ({score:.2f})", image, None, m) for p in preds
               for label, score, m in p.query_maps]
    width = current_width()
    ncols = max(1, min(len(panels), int(width // PANEL_INCHES)))
    nrows = -(-len(panels) // ncols)
    aspect = image.shape[0] / max(image.shape[1], 1)
    chars = max(12, int(width / ncols * 72 / (0.6 * TITLE_PT)))  # a title's line as wide as its panel
    fig, axes = new_figure(nrows * (0.92 * width / ncols * aspect + 0.45) + 0.3, nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(panels):]:  # no empty panel
        fig.delaxes(ax)
    for ax, (title, img, seg, mask) in zip(axes.ravel(), panels):
        ax.axis("off")
        ax.imshow(img)
        if mask is not None:
            ax.imshow(mask, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(wrap(title, chars))
        if seg is not None:
            _labels(ax, seg[0], seg[1], names)
    fig.suptitle(f"image {sample.image_id}{heading}")
    return fig
