"""One image from id maps to (PQ contributions, match), through the evaluator's code.

:func:`score_image_analysis` is :func:`panbench.pq.evaluator.score_image` that also returns the
:class:`~panbench.pq.matching.ImageMatch` its PQ contributions are derived from (one intersection
table, one match).  :func:`score_image_all` adds the boundary-PQ contributions (opt-in: they cost a
second pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.pq.evaluator import image_stats, match_ids
from panbench.pq.matching import CategoryTable, ImageMatch, ImageStats


def score_image_analysis(
    cats: CategoryTable,
    gt_ids: np.ndarray,
    gt_segments_info: list[dict[str, Any]],
    pred_ids: np.ndarray,
    pred_segments_info: list[dict[str, Any]],
    where: str = "image",
) -> tuple[ImageStats, ImageMatch]:
    """PQ contributions and the match of one image (same checks and errors as
    :func:`panbench.pq.evaluator.score_image`)."""
    stats, match, _ = score_image_all(cats, gt_ids, gt_segments_info, pred_ids, pred_segments_info, where)
    return stats, match


def score_image_all(
    cats: CategoryTable,
    gt_ids: np.ndarray,
    gt_segments_info: list[dict[str, Any]],
    pred_ids: np.ndarray,
    pred_segments_info: list[dict[str, Any]],
    where: str = "image",
    boundary: bool = False,
    dilation_ratio: float = 0.02,
    strict: bool = False,
) -> tuple[ImageStats, ImageMatch, ImageStats | None]:
    """PQ contributions, the match and, with ``boundary``, the boundary-PQ contributions of one
    image, from one intersection table (``strict`` as in :func:`panbench.pq.evaluator.score_image`)."""
    inter, gt, pred, match = match_ids(cats, gt_ids, gt_segments_info, pred_ids, pred_segments_info, where, strict)
    bstats = None
    if boundary:
        from panbench.pq.boundary import boundary_image_stats

        bstats = boundary_image_stats(gt_ids, gt, pred_ids, pred, inter, dilation_ratio)
    return image_stats(inter, gt, pred, match), match, bstats
