"""Boundary PQ (Cheng et al., CVPR 2021, "Boundary IoU") of one image from its id maps (the per-image path:
``eval``'s evaluators, the images ``score``'s batch path leaves); docs/analysis.md, "Boundary PQ", gives the
definition.  The pair's IoU is ``min(mask IoU, boundary IoU)``, matched by the one matcher (in C, ``_match_core.h``,
else :func:`panbench.pq.matching.match_image_numpy`, the reference) with panopticapi's VOID and crowd rules."""

from __future__ import annotations

import numpy as np

from panbench.errors import InputError
from panbench.pq import kernels, matching
from panbench.pq.extensions import load_extension
from panbench.pq.matching import ImageStats, Segments, match_image, pair_ious

# the per-pixel part in C (panbench/pq/_boundary.c); panbench.pq.kernels' twin gives the same tables
_native = load_extension("panbench.pq._boundary")


def dilation(height: int, width: int, ratio: float = 0.02) -> int:
    """``round(ratio x diagonal)`` (Python's round, as the reference), at least 1."""
    return max(1, int(round(ratio * np.sqrt(height**2 + width**2))))


def boundary_image_stats(gt_ids: np.ndarray, gt: Segments, pred_ids: np.ndarray, pred: Segments,
                         inter: np.ndarray, ratio: float = 0.02) -> ImageStats:
    """PQ contributions of one image with IoU = min(mask IoU, boundary IoU), through the one matcher.  ``inter`` is
    the mask intersection table, ``pred.areas`` set."""
    n_gt, n_pred = len(gt), len(pred)
    iou = np.zeros((n_gt, n_pred))
    if n_gt and n_pred:
        height, width = gt_ids.shape
        bint, bg_area, bp_area = boundary_tables(gt_ids, gt, pred_ids, pred, dilation(height, width, ratio))
        if (found := _c_match(inter, gt, pred, bint, bg_area, bp_area)) is not None:
            return found
        b_i = bint[1 : n_gt + 1, 1:]
        b_union = bp_area[None, :] + bg_area[:, None] - b_i - bint[0, 1:][None, :]  # as pair_ious, on boundaries
        with np.errstate(divide="ignore", invalid="ignore"):
            b_iou = np.where(b_i > 0, b_i / np.where(b_union == 0, 1, b_union), 0.0)
        iou = np.minimum(pair_ious(inter, gt, pred), b_iou)
    return match_image(inter, gt, pred, iou).to_stats()


def _c_match(inter: np.ndarray, gt: Segments, pred: Segments, bint: np.ndarray, bg_area: np.ndarray,
             bp_area: np.ndarray) -> ImageStats | None:
    """The match of :func:`boundary_image_stats` in C (``_match.boundary_match``, the matcher of score's batch path),
    or None where the table has a segment with two matches (the numpy matcher takes it)."""
    c = matching._native
    i64 = [np.ascontiguousarray(a, np.int64) for a in (inter, gt.cats, gt.areas, pred.cats, pred.areas, bint,
                                                        bg_area, bp_area)]
    got = c.boundary_match(i64[0], len(gt), len(pred), i64[1], i64[2], np.ascontiguousarray(gt.iscrowd, np.bool_),
                           *i64[3:])
    if got is None:
        return None
    cols = matching.res_of(got)  # boundary PQ's fields alone
    return ImageStats(cols["b_tp_cats"], cols["b_tp_ious"], cols["b_fn_cats"], cols["b_fp_cats"])


def boundary_tables(gt_ids: np.ndarray, gt: Segments, pred_ids: np.ndarray, pred: Segments, d: int,
                    native: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``bint`` and the boundary areas of the G ground truths and of the P predictions
    (:func:`panbench.pq.kernels.boundary_counts` counts them past the C's int32 rows, or without ``native``: the
    tests' reference)."""
    n_gt, n_pred = len(gt), len(pred)
    h, w = gt_ids.shape
    use_c = native and h <= 2**31 - 3  # the C streaks are int32 row numbers
    counts = _native.boundary_counts if use_c else kernels.boundary_counts
    bint = np.empty((n_gt + 2, n_pred + 1), np.int64)
    bg_area, bp_area = np.empty(n_gt + 2, np.int64), np.empty(n_pred + 1, np.int64)
    g32, p32 = np.ascontiguousarray(gt_ids, np.uint32), np.ascontiguousarray(pred_ids, np.uint32)
    bad = counts(g32, p32, w, h, np.ascontiguousarray(gt.ids, np.int64), np.ascontiguousarray(pred.ids, np.int64),
                 d, bint, bg_area, bp_area)
    if bad is not None:
        raise InputError(f"prediction: PNG segment id {bad[1]} is absent from segments_info; "
                         "list every segment of the PNG in segments_info")
    return bint, bg_area[1 : n_gt + 1], bp_area[1:]
