"""Per-image analysis record: everything the analyses need, from the intersection table.

:func:`analyze_image` takes the same inputs as :func:`panbench.pq.matching.match_segments` (the
``(G + 2) x (P + 1)`` intersection table, ground-truth and predicted :class:`~panbench.pq.matching.Segments`
with ``pred.areas`` counted from the pixels) and applies the same rules, with the same IoU
formula, so its TP/FP/FN are panopticapi's (``tests/analysis/test_analysis_image.py`` checks it against
``match_segments``).  On top of the TP/FP/FN it keeps, per segment, what the analyses read:

* every TP: its category, IoU and ground-truth area (``area`` from the JSON);
* every FN (unmatched non-crowd ground truth): category, JSON area, best IoU with a prediction of
  the same category and of another category, the IoU of its mutual-best unmatched prediction of
  the same category (0 when there is none) and, when that partner is a counted FP, the partner's
  best IoU with a ground truth of another category (else 0: the error breakdown's oracle needs it);
* every counted FP (unmatched and not ignored): category, pixel area, best IoU with a non-crowd
  ground truth of the same category and of another category, and whether that best same-category
  ground truth is matched;
* every non-crowd ground truth: category and the summed IoU of all same-category predictions that
  overlap it (for PQ-dagger).

IoU of any pair is panopticapi's: ``inter / (pred area + gt area - inter - pred pixels on VOID)``.
Crowd regions are never a "ground-truth segment" here: they are not matched, not FNs and not
overlaps for the error breakdown; they only make predictions of their category ignored, as in PQ.
Ties (equal best IoU) go to the lowest index in ``segments_info`` order.

The record is built in C (``_image.c``, an optional extension) where it was built, else by
:func:`analyze_image_numpy`; the two give the same record bit for bit
(``tests/analysis/test_analysis_image_native.py``).  Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from panbench.pq.kernels import load_extension
from panbench.pq.matching import ImageStats, Segments

_native = load_extension("panbench.analysis._image")  # the record in C, where it was built


def _i64(a=()) -> np.ndarray:
    return np.asarray(a, np.int64)


def _f64(a=()) -> np.ndarray:
    return np.asarray(a, np.float64)


@dataclass
class ImageAnalysis:
    """One image's segments as the analyses need them; all arrays are 1-D and small."""

    tp_cats: np.ndarray
    tp_ious: np.ndarray
    tp_area: np.ndarray  # ground-truth area from the JSON
    fn_cats: np.ndarray
    fn_area: np.ndarray  # ground-truth area from the JSON
    fn_same: np.ndarray  # best IoU with a prediction of the same category
    fn_other: np.ndarray  # best IoU with a prediction of another category
    fn_pair: np.ndarray  # IoU with its mutual-best unmatched same-category prediction, else 0
    fn_pair_other: np.ndarray  # that partner's best IoU with another category's ground truth if a counted FP, else 0
    fp_cats: np.ndarray
    fp_area: np.ndarray  # pixel area
    fp_same: np.ndarray  # best IoU with a non-crowd ground truth of the same category
    fp_other: np.ndarray  # best IoU with a non-crowd ground truth of another category
    fp_matched: np.ndarray  # bool: that best same-category ground truth is matched (and fp_same > 0)
    gt_cats: np.ndarray  # every non-crowd ground truth
    gt_iou_sum: np.ndarray  # summed IoU of the same-category predictions overlapping it

    @staticmethod
    def empty() -> ImageAnalysis:
        return ImageAnalysis(**{f.name: (np.zeros(0, bool) if f.name == "fp_matched" else
                                         _f64() if f.name in FLOAT_FIELDS else _i64())
                                for f in fields(ImageAnalysis)})

    def to_stats(self) -> ImageStats:
        """The PQ contributions (as :func:`panbench.pq.matching.match_segments` gives them, without the
        semantic confusion pairs)."""
        return ImageStats(self.tp_cats, self.tp_ious, self.fn_cats, self.fp_cats)


FIELDS = tuple(f.name for f in fields(ImageAnalysis))
FLOAT_FIELDS = frozenset({"tp_ious", "fn_same", "fn_other", "fn_pair", "fn_pair_other", "fp_same", "fp_other",
                          "gt_iou_sum"})
BOOL_FIELDS = frozenset({"fp_matched"})


def pair_ious(inter: np.ndarray, gt: Segments, pred: Segments) -> np.ndarray:
    """The G x P IoU of every ground-truth/prediction pair, panopticapi's formula (0 where disjoint).
    The union is never 0 where the pair overlaps (it holds the overlap), so no division by 0."""
    n_gt = len(gt)
    i = inter[1 : n_gt + 1, 1:].astype(np.int64, copy=False)
    void_p = inter[0, 1:].astype(np.int64, copy=False)
    union = pred.areas[None, :] + gt.areas[:, None] - i - void_p[None, :]
    return np.where(i > 0, i / np.where(union == 0, 1, union), 0.0)


def _ignored(inter: np.ndarray, gt: Segments, pred: Segments, cols: np.ndarray) -> np.ndarray:
    """For unmatched predictions ``cols``: more than half on VOID or on its category's crowd
    (the last crowd segment of the category in JSON order), as panopticapi."""
    ignored_px = inter[0, 1 + cols].astype(np.int64)
    crowd_rows = np.nonzero(gt.iscrowd)[0]
    if len(crowd_rows):
        pc = pred.cats[cols]
        row_of_cat = np.full(max(int(pc.max()), int(gt.cats.max())) + 1, -1, np.int64)
        for g in crowd_rows.tolist():  # a few crowd segments: the last of each category wins
            row_of_cat[gt.cats[g]] = g + 1
        rows = row_of_cat[pc]
        has = rows >= 0
        ignored_px[has] += inter[rows[has], 1 + cols[has]]
    return ignored_px / pred.areas[cols] > 0.5


def _best(m: np.ndarray, axis: int, argmax: bool = True) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Max along ``axis`` and (with ``argmax``) its first argmax (zeros when that axis is empty)."""
    if m.shape[axis] == 0:
        n = m.shape[1 - axis]
        return (np.zeros(n, np.float64), np.zeros(n, np.int64)) if argmax else np.zeros(n, np.float64)
    if not argmax:
        return m.max(axis=axis)
    return m.max(axis=axis), m.argmax(axis=axis)


def analyze_image(inter: np.ndarray, gt: Segments, pred: Segments) -> ImageAnalysis:
    """The per-image record (see the module docstring) from the intersection table."""
    n_gt, n_pred = len(gt), len(pred)
    if _native is None or (n_gt == 0 and n_pred == 0):
        return analyze_image_numpy(inter, gt, pred)
    packed = _native.analyze(np.ascontiguousarray(inter, np.int64), n_gt, n_pred,
                             np.ascontiguousarray(gt.cats, np.int64), np.ascontiguousarray(gt.areas, np.int64),
                             np.ascontiguousarray(gt.iscrowd, np.bool_), np.ascontiguousarray(pred.cats, np.int64),
                             np.ascontiguousarray(pred.areas, np.int64))
    if packed is None:  # a segment with two matches: no table counted from pixels has one
        return analyze_image_numpy(inter, gt, pred)
    ints, floats, bools, n_tp, n_fn, n_fp, n_nc = packed  # the layout is _image.c's docstring
    tp_cats, tp_area, fn_cats, fn_area, fp_cats, fp_area, gt_cats = _cut(
        np.frombuffer(ints, np.int64), (n_tp, n_tp, n_fn, n_fn, n_fp, n_fp, n_nc))
    tp_ious, fn_same, fn_other, fn_pair, fn_pair_other, fp_same, fp_other, gt_iou_sum = _cut(
        np.frombuffer(floats, np.float64), (n_tp, n_fn, n_fn, n_fn, n_fn, n_fp, n_fp, n_nc))
    return ImageAnalysis(tp_cats=tp_cats, tp_ious=tp_ious, tp_area=tp_area, fn_cats=fn_cats, fn_area=fn_area,
                         fn_same=fn_same, fn_other=fn_other, fn_pair=fn_pair, fn_pair_other=fn_pair_other,
                         fp_cats=fp_cats, fp_area=fp_area,
                         fp_same=fp_same, fp_other=fp_other, fp_matched=np.frombuffer(bools, np.bool_),
                         gt_cats=gt_cats, gt_iou_sum=gt_iou_sum)


def _cut(a: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """Consecutive views of ``a`` with the given sizes."""
    out, o = [], 0
    for n in sizes:
        out.append(a[o : o + n])
        o += n
    return out


def analyze_image_numpy(inter: np.ndarray, gt: Segments, pred: Segments) -> ImageAnalysis:
    """:func:`analyze_image` in numpy (the reference for the C extension, and its fallback)."""
    n_gt, n_pred = len(gt), len(pred)
    if n_gt == 0 and n_pred == 0:
        return ImageAnalysis.empty()
    iou = pair_ious(inter, gt, pred)
    same = gt.cats[:, None] == pred.cats[None, :]
    not_crowd = ~gt.iscrowd
    iou_nc = np.where(gt.iscrowd[:, None], 0.0, iou)  # non-crowd rows
    iou_same = iou_nc * same  # only where the categories agree (x * 1 = x, x * 0 = 0: exact)
    iou_other = iou_nc - iou_same
    g_idx, p_idx = np.nonzero(iou_same > 0.5)  # match_segments's rule: same category, not crowd, IoU > 0.5
    gt_matched = np.zeros(n_gt, bool)
    gt_matched[g_idx] = True
    pred_matched = np.zeros(n_pred, bool)
    pred_matched[p_idx] = True

    best_same_g, best_p_of_g = _best(iou_same, 1)
    best_other_g = _best(iou_other, 1, argmax=False)
    best_same_p, best_g_of_p = _best(iou_same, 0)
    best_other_p = _best(iou_other, 0, argmax=False)

    unmatched = np.nonzero(~pred_matched)[0]
    fp = unmatched[~_ignored(inter, gt, pred, unmatched)] if len(unmatched) else unmatched

    fn = np.nonzero(~gt_matched & not_crowd)[0]
    if n_pred:
        p = best_p_of_g[fn]
        mutual = (best_same_g[fn] > 0) & ~pred_matched[p] & (best_g_of_p[p] == fn)
        fn_pair = np.where(mutual, best_same_g[fn], 0.0)
        counted = np.zeros(n_pred, bool)
        counted[fp] = True
        fn_pair_other = np.where(mutual & counted[p], best_other_p[p], 0.0)
    else:
        fn_pair = np.zeros(len(fn))
        fn_pair_other = np.zeros(len(fn))
    fp_matched = (best_same_p[fp] > 0) & gt_matched[best_g_of_p[fp]] if n_gt else np.zeros(len(fp), bool)

    nc = np.nonzero(not_crowd)[0]
    return ImageAnalysis(
        tp_cats=gt.cats[g_idx], tp_ious=iou[g_idx, p_idx], tp_area=gt.areas[g_idx].astype(np.int64, copy=False),
        fn_cats=gt.cats[fn], fn_area=gt.areas[fn].astype(np.int64, copy=False),
        fn_same=best_same_g[fn], fn_other=best_other_g[fn], fn_pair=fn_pair, fn_pair_other=fn_pair_other,
        fp_cats=pred.cats[fp], fp_area=pred.areas[fp].astype(np.int64, copy=False),
        fp_same=best_same_p[fp], fp_other=best_other_p[fp], fp_matched=fp_matched,
        gt_cats=gt.cats[nc], gt_iou_sum=iou_same[nc].sum(axis=1) if n_pred else np.zeros(len(nc)),
    )
