"""The streaming panoptic evaluator: ``reset / process / evaluate``.

Memory does not grow with the number of images: each image is reduced to per-category sums
as soon as it is processed.  Predictions come from memory (an id map and its segments_info,
as a model produces them) or from PNG files; ground truth from the COCO panoptic PNGs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.panoptic_io import _SENTINEL, index_map, intersections, parse_segments
from panbench.pq import CategoryTable, ImageStats, PQStats, match_segments, summarize


def evaluate_image(
    cats: CategoryTable,
    gt_ids: np.ndarray,
    gt_segments_info: list[dict[str, Any]],
    pred_ids: np.ndarray,
    pred_segments_info: list[dict[str, Any]],
    where: str,
) -> ImageStats:
    """Per-category contributions of one image from two id maps (``R + 256G + 256^2B``)."""
    if gt_ids.shape != pred_ids.shape:
        raise InputError(
            f"{where}: prediction is {pred_ids.shape[1]}x{pred_ids.shape[0]} but the image is "
            f"{gt_ids.shape[1]}x{gt_ids.shape[0]}; predict at the original image size"
        )
    gt = parse_segments(gt_segments_info, cats, f"{where} (ground truth)", gt=True)
    pred = parse_segments(pred_segments_info, cats, f"{where} (prediction)", gt=False)

    cols = len(pred) + 1
    step = cols if (len(gt) + 2) * cols < int(_SENTINEL) else 1  # fast path: one uint16 add per pixel
    gt_index = index_map(gt_ids, gt.ids, step, slot="gt_index")
    unknown = gt_index == _SENTINEL
    if unknown.any():
        raise InputError(
            f"{where} (ground truth): PNG segment id {int(gt_ids[unknown][0])} is absent from segments_info; "
            "the annotation PNG and JSON do not belong together"
        )
    pred_index = index_map(pred_ids, pred.ids, slot="pred_index")
    unknown = pred_index == _SENTINEL
    if unknown.any():
        raise InputError(
            f"{where} (prediction): PNG segment id {int(pred_ids[unknown][0])} is absent from segments_info; "
            "list every segment of the PNG in segments_info"
        )
    inter = intersections(gt_index, len(gt), pred_index, len(pred), gt_step=step)
    pred.areas = inter[:, 1:].sum(axis=0).astype(np.int64)
    missing = np.nonzero(pred.areas == 0)[0]
    if len(missing):
        raise InputError(
            f"{where} (prediction): segments_info id {int(pred.ids[missing[0]])} is absent from the PNG; "
            "drop empty segments from segments_info"
        )
    return match_segments(inter, gt, pred)


class PanopticEvaluator:
    """Accumulates PQ statistics image by image; ``evaluate()`` gives the metrics.

    Instances add: ``a.stats + b.stats`` merges shards evaluated in other processes.
    """

    def __init__(self, categories: CategoryTable) -> None:
        self.categories = categories
        self.reset()

    def reset(self) -> None:
        self.stats = PQStats.zeros(len(self.categories))

    def process(
        self,
        gt_ids: np.ndarray,
        gt_segments_info: list[dict[str, Any]],
        pred_ids: np.ndarray,
        pred_segments_info: list[dict[str, Any]],
        where: str = "image",
    ) -> ImageStats:
        """Score one image and add it to the running sums."""
        s = evaluate_image(self.categories, gt_ids, gt_segments_info, pred_ids, pred_segments_info, where)
        self.stats.add_image(s)
        return s

    def merge(self, other: PQStats) -> None:
        """Add sums computed elsewhere (another worker, rank or a resumed cache)."""
        self.stats = self.stats + other

    def evaluate(self) -> dict[str, Any]:
        """The nine metrics (0-100), ``per_class`` keyed by category id, ``n_images``."""
        return summarize(self.stats, self.categories.ids, self.categories.isthing)
