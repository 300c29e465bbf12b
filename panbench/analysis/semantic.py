"""mIoU beside PQ from the model's semantic output (docs/analysis.md, "AP and mIoU beside PQ"):
:class:`SemanticConfusion`, a ``(C + 1) x (C + 1)`` int64 pixel confusion matrix with VOID last (rows ground truth),
as ``PQStats.conf``.  Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panbench.pq.sums import semantic_metrics


@dataclass
class SemanticConfusion:
    """Pixels of (ground-truth category, predicted category) over the images added; index ``C`` is VOID."""

    category_ids: list[int]  # the dataset's categories, in the order of the matrix
    conf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_images: int = 0

    def __post_init__(self) -> None:
        n = len(self.category_ids) + 1
        if self.conf.size == 0:
            self.conf = np.zeros((n, n), np.int64)
        self._index = {c: k for k, c in enumerate(self.category_ids)}

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """One image from two maps of category indices (``-1``: VOID), the same shape."""
        n = len(self.category_ids) + 1
        g = np.asarray(gt, np.int64).ravel()
        p = np.asarray(pred, np.int64).ravel()
        if g.shape != p.shape:
            raise ValueError(f"SemanticConfusion: ground truth {np.shape(gt)}, prediction {np.shape(pred)}")
        g, p = (np.where((x < 0) | (x >= n - 1), n - 1, x) for x in (g, p))  # outside the categories: VOID
        self.conf += np.bincount(g * n + p, minlength=n * n).reshape(n, n)
        self.n_images += 1

    def add_image(self, ids: np.ndarray, segments_info: Sequence[dict[str, Any]], pred_categories: np.ndarray) -> None:
        """One image from its ground-truth id map and ``segments_info`` and a map of predicted category ids."""
        self.add(self.gt_indices(ids, segments_info), self.indices(pred_categories))

    def indices(self, category_map: np.ndarray) -> np.ndarray:
        """A map of dataset category ids as category indices (-1 for an id the dataset lacks)."""
        m = np.asarray(category_map)
        lut = np.full(max(self.category_ids, default=0) + 1, -1, np.int64)  # category id -> index (-1: none)
        lut[np.asarray(self.category_ids, np.int64)] = np.arange(len(self.category_ids))
        inside = (m >= 0) & (m < len(lut))
        return np.where(inside, lut[np.where(inside, m, 0)], -1)

    def gt_indices(self, ids: np.ndarray, segments_info: Sequence[dict[str, Any]]) -> np.ndarray:
        """Each ground-truth pixel's category index; -1 (VOID) for id 0 and ids ``segments_info`` does not list."""
        ids = np.asarray(ids)
        if not segments_info:
            return np.full(ids.shape, -1, np.int64)
        seg = np.array([int(s["id"]) for s in segments_info], np.int64)
        cat = np.array([self._index.get(int(s["category_id"]), -1) for s in segments_info], np.int64)
        order = np.argsort(seg, kind="stable")
        seg, cat = seg[order], cat[order]
        pos = np.minimum(np.searchsorted(seg, ids), len(seg) - 1)
        return np.where(seg[pos] == ids, cat[pos], -1)

    def __add__(self, other: SemanticConfusion) -> SemanticConfusion:
        if list(self.category_ids) != list(other.category_ids):
            raise ValueError("SemanticConfusion: parts of different category lists")
        return SemanticConfusion(list(self.category_ids), self.conf + other.conf, self.n_images + other.n_images)

    def metrics(self) -> dict[str, float]:
        """Pixel accuracy, mIoU and mean Dice (0-100) by the one rule, :func:`panbench.pq.sums.semantic_metrics`."""
        return semantic_metrics(self.conf)[0]


def miou_fields(res: dict[str, Any], semantic: SemanticConfusion | None = None) -> dict[str, Any]:
    """The record's ``miou`` and ``miou_source``: ``semantic``'s when it holds images, else the panoptic ``res``'s."""
    if semantic is not None and semantic.n_images:
        return {"miou": semantic.metrics()["mIoU"], "miou_source": "semantic"}
    return {"miou": float(res["mIoU"]), "miou_source": "panoptic"}
