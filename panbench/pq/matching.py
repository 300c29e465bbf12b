"""Panoptic matching of one image: the one rule, panopticapi's ``pq_compute_single_core`` reproduced exactly
(docs/pq-evaluator.md, "What it computes"), and every per-segment fact derived from it (:class:`ImageMatch`;
docs/analysis.md, "The per-image match").  Ties go to the lowest index in ``segments_info``.  C (``_match.c`` over
``_match_core.h``, which the batch path's ``_native.c`` runs too) computes the match; :func:`match_image_numpy`,
bit for bit the same, takes what C does not (a table with a segment matched twice, boundary PQ's IoUs, empty
images); C writes an image's result in one layout, a ``res`` (:data:`RES_FIELDS`), and :func:`res_fields` is its one
decoder."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from panbench.pq.extensions import load_extension

#: A predicted and a ground-truth segment match when their IoU is above this (panopticapi's rule; the
#: C twin is ``PB_MATCH_IOU`` in ``_match_core.h``).  Every IoU threshold of the package is this name.
MATCH_IOU = 0.5
#: An unmatched prediction is not a false positive when more than this share of it lies on VOID or
#: on its category's crowd region (``PB_IGNORED_SHARE`` in ``_match_core.h``).
IGNORED_SHARE = 0.5

METRIC_KEYS = ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")
_native = load_extension("panbench.pq._match")  # match_image in C


def empty_column() -> np.ndarray:  # the default of a per-image field that an image may lack
    return np.zeros(0, np.int64)


def _no_scores() -> np.ndarray:  # Segments.scores left out: every segment without a score (NaN)
    return np.zeros(0, np.float64)


@dataclass
class Segments:
    """The ``segments_info`` of one image as parallel arrays (index 0..n-1 in JSON order)."""

    ids: np.ndarray  # int64 segment ids (R + 256 G + 256^2 B)
    cats: np.ndarray  # int64 index into the category table (not the COCO id)
    iscrowd: np.ndarray  # bool
    areas: np.ndarray  # int64, from JSON (ground truth) or counted (prediction)
    # float64, a prediction's own "score" in [0, 1], NaN where it has none (a ground truth's: all NaN); left out,
    # all NaN
    scores: np.ndarray = field(default_factory=_no_scores)

    def __post_init__(self) -> None:
        if len(self.scores) != len(self.ids):
            if len(self.scores):
                raise ValueError(f"Segments: {len(self.scores)} scores for {len(self.ids)} segments")
            self.scores = np.full(len(self.ids), np.nan)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ImageStats:
    """Per-category contributions of one image (indices into the category table)."""

    tp_cats: np.ndarray
    tp_ious: np.ndarray
    fn_cats: np.ndarray
    fp_cats: np.ndarray
    # semantic confusion, sparse: pixels of (ground-truth category, predicted category); -1 is VOID
    sem_gt: np.ndarray = field(default_factory=empty_column)
    sem_pred: np.ndarray = field(default_factory=empty_column)
    sem_px: np.ndarray = field(default_factory=empty_column)
    # ground-truth pixels whose id segments_info does not list: [pixels], or empty when there are none
    unlisted_px: np.ndarray = field(default_factory=empty_column)


@dataclass
class ImageMatch:
    """One image's match: TP/FN/FP with the per-segment facts (module docstring); 1-D and small."""

    tp_cats: np.ndarray
    tp_ious: np.ndarray
    tp_area: np.ndarray  # ground-truth area from the JSON
    tp_score: np.ndarray  # the matched prediction's score, NaN where it has none
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
    fp_score: np.ndarray  # the prediction's score, NaN where it has none
    gt_cats: np.ndarray  # every non-crowd ground truth
    gt_iou_sum: np.ndarray  # summed IoU of the same-category predictions overlapping it

    @staticmethod
    def empty() -> ImageMatch:
        return ImageMatch(**{name: np.zeros(0, column_dtype(name)) for name in MATCH_FIELDS})

    def to_stats(self) -> ImageStats:
        """The PQ contributions (the semantic pairs and unlisted pixels come from the intersection table)."""
        return ImageStats(self.tp_cats, self.tp_ious, self.fn_cats, self.fp_cats)


MATCH_FIELDS = tuple(f.name for f in fields(ImageMatch))
FLOAT_FIELDS = frozenset({"tp_ious", "fn_same", "fn_other", "fn_pair", "fn_pair_other", "fp_same", "fp_other",
                          "gt_iou_sum", "tp_score", "fp_score"})
BOOL_FIELDS = frozenset({"fp_matched"})


def column_dtype(name: str) -> type:
    """The dtype of a per-image field wherever it is stored: IoUs and scores float64, ``fp_matched`` bool, else
    int64."""
    return bool if name in BOOL_FIELDS else np.float64 if name in FLOAT_FIELDS else np.int64


def pair_ious(inter: np.ndarray, gt: Segments, pred: Segments) -> np.ndarray:
    """The G x P IoU of every ground-truth/prediction pair, panopticapi's formula (0 where disjoint; the union holds
    the overlap, so it is never 0 where the pair overlaps)."""
    n_gt = len(gt)
    i = inter[1 : n_gt + 1, 1:].astype(np.int64, copy=False)
    void_p = inter[0, 1:].astype(np.int64, copy=False)
    union = pred.areas[None, :] + gt.areas[:, None] - i - void_p[None, :]
    return np.where(i > 0, i / np.where(union == 0, 1, union), 0.0)


def ignored_predictions(inter: np.ndarray, gt: Segments, pred: Segments, cols: np.ndarray) -> np.ndarray:
    """For unmatched predictions ``cols``: more than half on VOID or on its category's (last) crowd segment."""
    ignored_px = inter[0, 1 + cols].astype(np.int64)
    crowd_rows = np.nonzero(gt.iscrowd)[0]
    if len(crowd_rows) and len(cols):
        pc = pred.cats[cols]
        row_of_cat = np.full(max(int(pc.max()), int(gt.cats.max())) + 1, -1, np.int64)
        for g in crowd_rows.tolist():  # a few crowd segments: the last of each category wins
            row_of_cat[gt.cats[g]] = g + 1
        rows = row_of_cat[pc]
        has = rows >= 0
        ignored_px[has] += inter[rows[has], 1 + cols[has]]
    return ignored_px / pred.areas[cols] > IGNORED_SHARE


def _best(m: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Max along ``axis`` and its first argmax (zeros when that axis is empty)."""
    if m.shape[axis] == 0:
        n = m.shape[1 - axis]
        return np.zeros(n, np.float64), np.zeros(n, np.int64)
    return m.max(axis=axis), m.argmax(axis=axis)


def _max(m: np.ndarray, axis: int) -> np.ndarray:
    """Max along ``axis`` (zeros when that axis is empty)."""
    return m.max(axis=axis) if m.shape[axis] else np.zeros(m.shape[1 - axis], np.float64)


def match_image(inter: np.ndarray, gt: Segments, pred: Segments, iou: np.ndarray | None = None) -> ImageMatch:
    """The match of one image from its intersection table, ``(len(gt) + 2, len(pred) + 1)``: row 0 is ground-truth
    VOID, rows 1..G the ground-truth segments, row G+1 pixels whose ground-truth id is in no segment (panopticapi
    neither matches them nor treats them as VOID: they stay in a prediction's area, hence in its union); column 0 is
    predicted VOID, columns 1..P the predictions, whose pixel counts are ``pred.areas``.  ``iou`` (G x P) replaces
    :func:`pair_ious` as the pairs' IoU (boundary PQ's; numpy path); VOID and crowd stay the table's."""
    n_gt, n_pred = len(gt), len(pred)
    if iou is not None or (n_gt == 0 and n_pred == 0):
        return match_image_numpy(inter, gt, pred, iou)
    raw = _native.match(np.ascontiguousarray(inter, np.int64), n_gt, n_pred,
                        np.ascontiguousarray(gt.cats, np.int64), np.ascontiguousarray(gt.areas, np.int64),
                        np.ascontiguousarray(gt.iscrowd, np.bool_), np.ascontiguousarray(pred.cats, np.int64),
                        np.ascontiguousarray(pred.areas, np.int64), np.ascontiguousarray(pred.scores, np.float64))
    if raw is None:  # a segment with two matches: no table counted from pixels has one
        return match_image_numpy(inter, gt, pred)
    cols = res_of(raw)  # its res: the match alone (_match_core.h)
    return ImageMatch(**{name: cols[name] for name in MATCH_FIELDS})


#: The header of a ``res``, the one layout of an image's result that C writes (``_match_core.h``): its entries
#: n_tp, n_fn, n_fp, n_nc, m (semantic fold rows), unlisted pixels, b_tp, b_fn, b_fp, then the words used.
RES_HEADER = 10
RES_COUNTS = 9  # the header's row counts (all but the words used)
#: The fields of a ``res`` after its header (and, on the batch path, its predictions' areas), in the order C writes
#: them, each with the header entry that counts its rows; then ``fp_matched``, one byte per FP.
RES_FIELDS = (("tp_cats", 0), ("tp_area", 0), ("fn_cats", 1), ("fn_area", 1), ("fp_cats", 2), ("fp_area", 2),
              ("gt_cats", 3), ("tp_ious", 0), ("fn_same", 1), ("fn_other", 1), ("fn_pair", 1), ("fn_pair_other", 1),
              ("fp_same", 2), ("fp_other", 2), ("gt_iou_sum", 3), ("tp_score", 0), ("fp_score", 2), ("sem_gt", 4),
              ("sem_pred", 4), ("sem_px", 4), ("b_tp_cats", 6), ("b_tp_ious", 6), ("b_fn_cats", 7), ("b_fp_cats", 8))
_RES_CUTS = tuple((name, k, name in FLOAT_FIELDS or name == "b_tp_ious") for name, k in RES_FIELDS)
_EMPTY_I64, _EMPTY_F64 = np.zeros(0, np.int64), np.zeros(0, np.float64)


def res_fields(values: np.ndarray, rows: Any, fp_matched: np.ndarray) -> dict[str, np.ndarray]:
    """The one decoder of C's result layout: ``values`` (int64, the fields of :data:`RES_FIELDS` one after the
    other) cut by ``rows`` (the header's :data:`RES_COUNTS` counts: one image's, or summed over images copied out
    field by field) into each field by name (views; IoUs and scores as float64), ``fp_matched`` beside them."""
    counts, at, cols = [int(r) for r in rows], 0, {}
    for name, k, is_float in _RES_CUTS:  # slices of Python ints: microseconds an image (np.split takes ten times that)
        n = counts[k]
        if n == 0:  # the fields of an image that has none: one shared empty array (nothing to write into)
            cols[name] = _EMPTY_F64 if is_float else _EMPTY_I64
            continue
        v = values[at : at + n]
        cols[name] = v.view(np.float64) if is_float else v
        at += n
    if at != len(values):
        raise ValueError(f"res_fields: {len(values)} words for fields of {at}")
    cols["fp_matched"] = fp_matched
    return cols


def res_of(raw: Any) -> dict[str, np.ndarray]:
    """One image's ``res`` as C wrote it (a buffer, without predicted areas) decoded by :func:`res_fields`."""
    res = np.frombuffer(raw, np.int64)
    head = res[:RES_HEADER].tolist()
    n_fp = head[2]
    end = head[RES_HEADER - 1] - (n_fp + 7) // 8  # where fp_matched's bytes start
    return res_fields(res[RES_HEADER:end], head[:RES_COUNTS], np.frombuffer(raw, np.bool_, n_fp, end * 8))


def match_image_numpy(inter: np.ndarray, gt: Segments, pred: Segments, iou: np.ndarray | None = None) -> ImageMatch:
    """:func:`match_image` in numpy (the reference for the C extension, and its fallback)."""
    n_gt, n_pred = len(gt), len(pred)
    if n_gt == 0 and n_pred == 0:
        return ImageMatch.empty()
    if iou is None:
        iou = pair_ious(inter, gt, pred)
    iou_nc = np.where(gt.iscrowd[:, None], 0.0, iou)  # non-crowd rows
    iou_same = iou_nc * (gt.cats[:, None] == pred.cats[None, :])  # only where the categories agree (exact)
    iou_other = iou_nc - iou_same
    g_idx, p_idx = np.nonzero(iou_same > MATCH_IOU)  # the match: same category, not crowd, IoU > MATCH_IOU
    gt_matched = np.zeros(n_gt, bool)
    gt_matched[g_idx] = True
    pred_matched = np.zeros(n_pred, bool)
    pred_matched[p_idx] = True
    best_same_g, best_p_of_g = _best(iou_same, 1)
    best_same_p, best_g_of_p = _best(iou_same, 0)
    best_other_p = _max(iou_other, 0)
    unmatched = np.nonzero(~pred_matched)[0]
    fp = unmatched[~ignored_predictions(inter, gt, pred, unmatched)] if len(unmatched) else unmatched
    fn = np.nonzero(~gt_matched & ~gt.iscrowd)[0]
    fn_pair, fn_pair_other = np.zeros(len(fn)), np.zeros(len(fn))
    if n_pred:
        p = best_p_of_g[fn]
        mutual = (best_same_g[fn] > 0) & ~pred_matched[p] & (best_g_of_p[p] == fn)
        fn_pair = np.where(mutual, best_same_g[fn], 0.0)
        counted = np.zeros(n_pred, bool)
        counted[fp] = True
        fn_pair_other = np.where(mutual & counted[p], best_other_p[p], 0.0)
    fp_matched = (best_same_p[fp] > 0) & gt_matched[best_g_of_p[fp]] if n_gt else np.zeros(len(fp), bool)
    nc = np.nonzero(~gt.iscrowd)[0]
    return ImageMatch(
        tp_cats=gt.cats[g_idx], tp_ious=iou[g_idx, p_idx], tp_area=gt.areas[g_idx].astype(np.int64, copy=False),
        fn_cats=gt.cats[fn], fn_area=gt.areas[fn].astype(np.int64, copy=False),
        fn_same=best_same_g[fn], fn_other=_max(iou_other, 1)[fn], fn_pair=fn_pair, fn_pair_other=fn_pair_other,
        fp_cats=pred.cats[fp], fp_area=pred.areas[fp].astype(np.int64, copy=False),
        fp_same=best_same_p[fp], fp_other=best_other_p[fp], fp_matched=fp_matched,
        tp_score=pred.scores[p_idx].astype(np.float64, copy=False),
        fp_score=pred.scores[fp].astype(np.float64, copy=False),
        gt_cats=gt.cats[nc], gt_iou_sum=iou_same[nc].sum(axis=1) if n_pred else np.zeros(len(nc)),
    )


@dataclass
class CategoryTable:
    """COCO category ids, names and thing/stuff flags, with a lookup from id to the index used here."""

    ids: list[int]
    names: list[str]
    isthing: list[bool]
    index: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {cid: k for k, cid in enumerate(self.ids)}

    @staticmethod
    def from_coco(categories: list[dict[str, Any]]) -> CategoryTable:
        return CategoryTable([int(c["id"]) for c in categories], [str(c.get("name", c["id"])) for c in categories],
                             [bool(c.get("isthing", 0) == 1) for c in categories])

    def __len__(self) -> int:
        return len(self.ids)
