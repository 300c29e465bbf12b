"""Boundary PQ (Cheng et al., CVPR 2021, "Boundary IoU"), per image, numpy.

* A segment's boundary: its pixels within Chebyshev distance ``d`` of a pixel with another id or of
  the image border (the border counts as contour), ``d = round(0.02 x image diagonal)``, at least 1.
  This is boundary-iou-api's ``mask_to_boundary``: the mask minus its erosion by ``d`` iterations of
  a 3x3 square, with a one-pixel zero frame around the image.
* Boundary IoU of a pair: ``|Bg & Bp| / (|Bp| + |Bg| - |Bg & Bp| - |Bp on ground-truth VOID|)``,
  boundary areas counted from the pixels (ground truth too).
* The pair's IoU is ``min(mask IoU, boundary IoU)``; the match is the one matcher's
  (:func:`panbench.pq.matching.match_image`: IoU above ``MATCH_IOU``), its VOID and crowd rules
  panopticapi's (a prediction is ignored by its mask pixels on VOID / its category's crowd).
"""

from __future__ import annotations

import numpy as np

from panbench.errors import InputError
from panbench.pq.extensions import load_extension
from panbench.pq.matching import ImageStats, Segments, match_image, pair_ious

# the per-pixel part in C (panbench/pq/_boundary.c); the numpy path below gives the same tables
_native = load_extension("panbench.pq._boundary")


def dilation(height: int, width: int, ratio: float = 0.02) -> int:
    """``round(ratio x diagonal)`` (Python's round, as the reference), at least 1."""
    return max(1, int(round(ratio * np.sqrt(height**2 + width**2))))


def _window_clean(breaks: np.ndarray, n: int, d: int, axis: int) -> np.ndarray:
    """For every position i along ``axis`` (length n): positions i-d..i+d are inside and
    ``breaks`` (length n-1 along axis, break between k and k+1) has none in i-d..i+d-1."""
    shape = list(breaks.shape)
    shape[axis] = n
    out = np.zeros(shape, bool)
    if n < 2 * d + 1:
        return out
    c = np.cumsum(breaks, axis=axis, dtype=np.int32)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)  # length n
    hi = np.take(c, np.arange(2 * d, n), axis=axis)
    lo = np.take(c, np.arange(0, n - 2 * d), axis=axis)
    idx = [slice(None)] * out.ndim
    idx[axis] = slice(d, n - d)
    out[tuple(idx)] = (hi - lo) == 0
    return out


def boundary_mask(ids: np.ndarray, d: int) -> np.ndarray:
    """True where a pixel is on the boundary of the region of its own id (every id, VOID too)."""
    h, w = ids.shape
    inner_h = _window_clean(ids[:, 1:] != ids[:, :-1], w, d, axis=1)  # its row window is one id
    # the column window: one id, and every pixel in it has a clean row window
    breaks_v = (ids[1:] != ids[:-1]) | ~inner_h[1:] | ~inner_h[:-1]
    inner = _window_clean(breaks_v, h, d, axis=0) & inner_h
    return ~inner


def boundary_image_stats(gt_ids: np.ndarray, gt: Segments, pred_ids: np.ndarray, pred: Segments,
                         inter: np.ndarray, ratio: float = 0.02) -> ImageStats:
    """PQ contributions of one image with IoU = min(mask IoU, boundary IoU), through the one matcher
    (:func:`panbench.pq.matching.match_image` with these pair IoUs).  ``inter`` is the mask intersection
    table, ``pred.areas`` set."""
    n_gt, n_pred = len(gt), len(pred)
    iou = np.zeros((n_gt, n_pred))
    if n_gt and n_pred:
        height, width = gt_ids.shape
        bint, bg_area, bp_area = boundary_tables(gt_ids, gt, pred_ids, pred, dilation(height, width, ratio))
        b_i = bint[1 : n_gt + 1, 1:]
        b_union = bp_area[None, :] + bg_area[:, None] - b_i - bint[0, 1:][None, :]  # as pair_ious, on boundaries
        with np.errstate(divide="ignore", invalid="ignore"):
            b_iou = np.where(b_i > 0, b_i / np.where(b_union == 0, 1, b_union), 0.0)
        iou = np.minimum(pair_ious(inter, gt, pred), b_iou)
    return match_image(inter, gt, pred, iou).to_stats()


def boundary_tables(gt_ids: np.ndarray, gt: Segments, pred_ids: np.ndarray, pred: Segments, d: int,
                    native: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``bint`` ((G + 2) x (P + 1): pixels on a predicted boundary and on a ground-truth boundary,
    row 0: on ground-truth VOID), boundary areas of the G ground truths and of the P predictions."""
    n_gt, n_pred = len(gt), len(pred)
    h, w = gt_ids.shape
    if native and _native is not None and h <= 2**31 - 3:  # the C streaks are int32 row numbers
        bint = np.empty((n_gt + 2, n_pred + 1), np.int64)
        bg_area, bp_area = np.empty(n_gt + 2, np.int64), np.empty(n_pred + 1, np.int64)
        g32, p32 = np.ascontiguousarray(gt_ids, np.uint32), np.ascontiguousarray(pred_ids, np.uint32)
        bad = _native.boundary_counts(g32, p32, w, h, np.ascontiguousarray(gt.ids, np.int64),
                                      np.ascontiguousarray(pred.ids, np.int64), d, bint, bg_area, bp_area)
        if bad is not None:
            raise InputError(f"prediction: PNG segment id {bad[1]} is absent from segments_info; "
                             "list every segment of the PNG in segments_info")
        return bint, bg_area[1 : n_gt + 1], bp_area[1:]
    bg, bp = boundary_mask(gt_ids, d), boundary_mask(pred_ids, d)
    g_of = _index(gt_ids, gt.ids)  # 0 VOID, 1..G, G+1 not listed
    p_of = _index(pred_ids, pred.ids)
    if p_of.max(initial=0) > n_pred:
        bad = int(pred_ids.ravel()[np.argmax(p_of.ravel() > n_pred)])
        raise InputError(f"prediction: PNG segment id {bad} is absent from segments_info; "
                         "list every segment of the PNG in segments_info")
    bg_area = np.bincount(g_of[bg], minlength=n_gt + 2)[1 : n_gt + 1]
    bp_area = np.bincount(p_of[bp], minlength=n_pred + 1)[1:]
    sel = bp & (bg | (g_of == 0))  # predicted boundary on a ground-truth boundary or on VOID
    bint = np.bincount(g_of[sel] * (n_pred + 1) + p_of[sel], minlength=(n_gt + 2) * (n_pred + 1))
    return bint.reshape(n_gt + 2, n_pred + 1), bg_area, bp_area


def _index(ids: np.ndarray, seg_ids: np.ndarray) -> np.ndarray:
    """Per pixel: 0 for VOID, k + 1 for ``seg_ids[k]``, len + 1 for an id not listed."""
    order = np.argsort(seg_ids, kind="stable")
    s = seg_ids[order]
    flat = ids.ravel().astype(np.int64)
    pos = np.searchsorted(s, flat)
    pos_c = np.minimum(pos, len(s) - 1)
    found = (pos < len(s)) & (s[pos_c] == flat)
    out = np.where(found, order[pos_c] + 1, len(s) + 1)
    out[flat == 0] = 0
    return out.reshape(ids.shape)
