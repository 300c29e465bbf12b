"""One image from id maps to (PQ contributions, analysis record), through the evaluator's code.

:func:`score_image_analysis` is :func:`panbench.pq.evaluator.score_image` that also returns the
:class:`ImageAnalysis` of the same intersection table; the table is computed once.
:func:`score_image_all` adds the boundary-PQ contributions (opt-in: they cost a second pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.analysis.image import ImageAnalysis, analyze_image
from panbench.pq import evaluator
from panbench.pq.coco_format import parse_segments
from panbench.pq.matching import CategoryTable, ImageStats, semantic_pairs


def score_image_analysis(
    cats: CategoryTable,
    gt_ids: np.ndarray,
    gt_segments_info: list[dict[str, Any]],
    pred_ids: np.ndarray,
    pred_segments_info: list[dict[str, Any]],
    where: str = "image",
) -> tuple[ImageStats, ImageAnalysis]:
    """PQ contributions and the analysis record of one image (same checks and errors as
    :func:`panbench.pq.evaluator.score_image`)."""
    stats, rec, _ = score_image_all(cats, gt_ids, gt_segments_info, pred_ids, pred_segments_info, where)
    return stats, rec


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
) -> tuple[ImageStats, ImageAnalysis, ImageStats | None]:
    """PQ contributions, the analysis record and, with ``boundary``, the boundary-PQ contributions
    of one image, from one intersection table (``strict`` as in :func:`panbench.pq.evaluator.score_image`)."""
    if gt_ids.shape != pred_ids.shape:
        raise evaluator._size_error(where, gt_ids.shape, pred_ids.shape)
    gt = parse_segments(gt_segments_info, cats, f"{where} (ground truth)", gt=True)
    pred = parse_segments(pred_segments_info, cats, f"{where} (prediction)", gt=False)
    inter = evaluator.intersection_table(gt_ids, gt, pred_ids, pred, where, strict)
    pred.areas = inter[:, 1:].sum(axis=0).astype(np.int64)
    if not pred.areas.all() or (inter[1 : len(gt) + 1].sum(axis=1) > gt.areas).any():
        evaluator._match(inter, gt, pred, where)  # raises score_image's one-line error (areas that do not fit)
    rec = analyze_image(inter, gt, pred)  # the same TP/FP/FN as match_segments (tested), so PQ comes from it
    stats = rec.to_stats()
    stats.sem_gt, stats.sem_pred, stats.sem_px = semantic_pairs(inter, gt, pred)
    stats.unlisted_px = evaluator.unlisted_pixels(inter, len(gt))
    bstats = None
    if boundary:
        from panbench.analysis.boundary import boundary_image_stats

        bstats = boundary_image_stats(gt_ids, gt, pred_ids, pred, inter, dilation_ratio)
    return stats, rec, bstats
