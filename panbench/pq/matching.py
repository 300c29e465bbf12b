"""Panoptic quality: pure per-image matching underneath, additive per-category sums on top.

The rules are panopticapi's ``pq_compute_single_core``, reproduced exactly:

* a predicted and a ground-truth segment match when they share a category, the ground truth is
  not a crowd region and IoU > 0.5, where the union leaves out the prediction's VOID pixels;
* the ground-truth area is the ``area`` of its ``segments_info`` entry (as panopticapi reads it),
  the predicted area is counted from the prediction's pixels;
* an unmatched non-crowd ground-truth segment is a false negative;
* an unmatched prediction is a false positive unless more than half of it lies on VOID or on the
  crowd region of its own category (the last crowd segment of that category in JSON order).

Everything is per-category sums (``iou``, ``tp``, ``fp``, ``fn``) that add across images and
across processes; :func:`summarize` turns them into PQ/SQ/RQ for All, Things and Stuff.
IoU sums are kept in fixed point (units of 2^-40): integer addition is associative, so any split
of the images (workers, ranks, resumed runs) gives bit-identical metrics, while the rounding
(< 2^-41 per match) stays far below panopticapi parity's 1e-9.  One int64 in those units would
overflow after 2^23 (8.4 million) matches of one category, so each sum is two int64: whole units
and a fraction in [0, 2^40) that carries into them after every addition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

VOID = 0
IOU_BITS = 40  # fixed point: IoU sums in units of 2^-IOU_BITS
IOU_SCALE = float(2**IOU_BITS)
METRIC_KEYS = ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")


@dataclass
class Segments:
    """The ``segments_info`` of one image as parallel arrays (index 0..n-1 in JSON order)."""

    ids: np.ndarray  # int64 segment ids (R + 256 G + 256^2 B)
    cats: np.ndarray  # int64 index into the category table (not the COCO id)
    iscrowd: np.ndarray  # bool
    areas: np.ndarray  # int64, from JSON (ground truth) or counted (prediction)

    @staticmethod
    def empty() -> Segments:
        z = np.zeros(0, np.int64)
        return Segments(z, z.copy(), np.zeros(0, bool), z.copy())

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
    sem_gt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sem_pred: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sem_px: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # ground-truth pixels whose id segments_info does not list: [pixels], or empty when there are none
    unlisted_px: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def semantic_pairs(inter: np.ndarray, gt: Segments, pred: Segments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The intersection table folded to categories: (gt category, pred category, pixels), VOID = -1.
    Rows of ground-truth ids in no segment (panopticapi ignores them) are left out."""
    n_gt = len(gt)
    row_cat = np.concatenate([[-1], gt.cats, [-2]]).astype(np.int64)
    col_cat = np.concatenate([[-1], pred.cats]).astype(np.int64)
    r, c = np.nonzero(inter)
    keep = r != n_gt + 1
    r, c = r[keep], c[keep]
    return row_cat[r], col_cat[c], inter[r, c].astype(np.int64)


def match_segments(
    inter: np.ndarray,
    gt: Segments,
    pred: Segments,
) -> ImageStats:
    """Match segments of one image given the intersection table.

    ``inter`` has shape ``(len(gt) + 2, len(pred) + 1)``: row 0 is ground-truth VOID, rows
    1..G the ground-truth segments, row G+1 pixels whose ground-truth id is in no segment
    (panopticapi neither matches them nor treats them as VOID: they stay in a prediction's area,
    hence in its union); column 0 is predicted VOID, columns 1..P the predictions.
    ``pred.areas`` must be the pixel counts of the predictions.
    """
    n_gt, n_pred = len(gt), len(pred)
    if n_gt and n_pred:
        i = inter[1 : n_gt + 1, 1:].astype(np.int64)
        void_p = inter[0, 1:].astype(np.int64)
        union = pred.areas[None, :] + gt.areas[:, None] - i - void_p[None, :]
        ok = (i > 0) & (gt.cats[:, None] == pred.cats[None, :]) & ~gt.iscrowd[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(ok, i / np.where(union == 0, 1, union), 0.0)
        ok &= iou > 0.5
        g_idx, p_idx = np.nonzero(ok)
        tp_cats = gt.cats[g_idx]
        tp_ious = iou[g_idx, p_idx]
        gt_matched = np.zeros(n_gt, bool)
        gt_matched[g_idx] = True
        pred_matched = np.zeros(n_pred, bool)
        pred_matched[p_idx] = True
    else:
        tp_cats = np.zeros(0, np.int64)
        tp_ious = np.zeros(0, np.float64)
        gt_matched = np.zeros(n_gt, bool)
        pred_matched = np.zeros(n_pred, bool)

    fn_cats = gt.cats[~gt_matched & ~gt.iscrowd]

    # Unmatched predictions: ignored when more than half lies on VOID or on its category's crowd.
    unmatched = np.nonzero(~pred_matched)[0]
    if len(unmatched):
        ignored_px = inter[0, 1 + unmatched].astype(np.int64)
        crowd_rows = np.nonzero(gt.iscrowd)[0]
        if len(crowd_rows):
            crowd_row_of_cat: dict[int, int] = {}
            for g in crowd_rows:  # JSON order: the last crowd segment of a category wins
                crowd_row_of_cat[int(gt.cats[g])] = int(g) + 1
            rows = np.array([crowd_row_of_cat.get(int(c), -1) for c in pred.cats[unmatched]], np.int64)
            has = rows >= 0
            ignored_px[has] += inter[rows[has], 1 + unmatched[has]].astype(np.int64)
        keep = ~(ignored_px / pred.areas[unmatched] > 0.5)
        fp_cats = pred.cats[unmatched[keep]]
    else:
        fp_cats = np.zeros(0, np.int64)
    return ImageStats(tp_cats, tp_ious, fn_cats, fp_cats, *semantic_pairs(inter, gt, pred))


@dataclass
class PQStats:
    """Per-category sums; ``+`` adds two of them (across images, shards or processes).

    The IoU sum of category k is ``iou_int[k] + iou[k] / IOU_SCALE``: ``iou`` is the fraction
    (int64 in units of ``1 / IOU_SCALE``, carried into ``iou_int`` whenever it reaches 1), so the
    sums never overflow.  ``conf`` is the semantic confusion matrix in pixels, ``(C + 1) x (C + 1)``
    with VOID last (rows ground truth, columns prediction).  ``unlisted`` counts the ground-truth
    pixels whose id ``segments_info`` does not list, and the images that hold any: ``[pixels, images]``.
    """

    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    n_images: int = 0
    conf: np.ndarray | None = None
    iou_int: np.ndarray | None = None
    unlisted: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.unlisted is None:
            self.unlisted = np.zeros(2, np.int64)
        if self.conf is None:
            n = len(self.iou) + 1
            self.conf = np.zeros((n, n), np.int64)
        if self.iou_int is None:
            self.iou_int = np.zeros(len(self.iou), np.int64)
        self._carry()

    def _carry(self) -> None:
        """Move whole units of the fraction ``iou`` into ``iou_int`` (``iou`` ends in [0, 2^40))."""
        whole = self.iou >> IOU_BITS
        if whole.any():
            self.iou_int += whole
            self.iou -= whole << IOU_BITS

    @staticmethod
    def zeros(n_categories: int) -> PQStats:
        return PQStats(*(np.zeros(n_categories, np.int64) for _ in range(4)))

    def add_image(self, s: ImageStats) -> None:
        """Accumulate one image's contributions in place (< 2^16 matches, so < 2^56 units at once)."""
        np.add.at(self.iou, s.tp_cats, np.rint(s.tp_ious * IOU_SCALE).astype(np.int64))
        self._carry()
        np.add.at(self.tp, s.tp_cats, 1)
        np.add.at(self.fn, s.fn_cats, 1)
        np.add.at(self.fp, s.fp_cats, 1)
        if len(s.sem_px):
            void = len(self.iou)
            g = np.where(s.sem_gt < 0, void, s.sem_gt)
            p = np.where(s.sem_pred < 0, void, s.sem_pred)
            np.add.at(self.conf, (g, p), s.sem_px)
        if len(s.unlisted_px):
            self.unlisted += np.array([int(s.unlisted_px.sum()), 1], np.int64)
        self.n_images += 1

    def __add__(self, other: PQStats) -> PQStats:
        return PQStats(
            self.iou + other.iou,
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.n_images + other.n_images,
            self.conf + other.conf,
            self.iou_int + other.iou_int,
            self.unlisted + other.unlisted,
        )

    @property
    def iou_sum(self) -> np.ndarray:
        """Per-category IoU sums as float64 (the exact sum, rounded once)."""
        return self.iou_int + self.iou / IOU_SCALE

    def to_array(self) -> np.ndarray:
        """One int64 vector (for an all-reduce or a cache file); exact.  Summing such vectors
        element by element and reading the sum back with :meth:`from_array` adds the stats."""
        return np.concatenate(
            [self.iou_int, self.iou, self.tp, self.fp, self.fn, self.conf.ravel(), [self.n_images], self.unlisted]
        ).astype(np.int64)

    @staticmethod
    def from_array(a: np.ndarray) -> PQStats:
        a = np.asarray(a, np.int64)
        n = int(round((-7 + np.sqrt(33 + 4 * len(a))) / 2))  # len = 5n + (n + 1)^2 + 3
        iou_int, iou, tp, fp, fn = (a[k * n : (k + 1) * n].copy() for k in range(5))
        conf = a[5 * n : 5 * n + (n + 1) ** 2].reshape(n + 1, n + 1).copy()
        return PQStats(iou, tp, fp, fn, n_images=int(a[-3]), conf=conf, iou_int=iou_int, unlisted=a[-2:].copy())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PQStats) and np.array_equal(self.to_array(), other.to_array())


def semantic_metrics(conf: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Pixel accuracy, mIoU and mean Dice (0-100) from a confusion matrix with VOID last.

    Ground-truth VOID pixels are ignored; a prediction of VOID on a labelled pixel counts as a miss.
    Means are over the categories present in the ground truth or the prediction.
    """
    c = conf[:-1].astype(np.float64)  # drop ground-truth VOID rows
    tp = np.diag(c[:, :-1])
    gt = c.sum(axis=1)
    pred = c[:, :-1].sum(axis=0)
    present = (gt + pred) > 0
    union = gt + pred - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), 0.0)
    dice = np.where(gt + pred > 0, 2 * tp / np.maximum(gt + pred, 1), 0.0)
    total = gt.sum()
    out = {
        "pixel_acc": 100 * float(tp.sum() / total) if total else 0.0,
        "mIoU": 100 * float(iou[present].mean()) if present.any() else 0.0,
        "mDice": 100 * float(dice[present].mean()) if present.any() else 0.0,
    }
    return out, 100 * iou, 100 * dice


def _average(stats: PQStats, mask: np.ndarray) -> tuple[float, float, float, int]:
    iou, tp, fp, fn = stats.iou_sum[mask], stats.tp[mask], stats.fp[mask], stats.fn[mask]
    present = (tp + fp + fn) > 0
    n = int(present.sum())
    if n == 0:
        return 0.0, 0.0, 0.0, 0
    iou, tp, fp, fn = iou[present], tp[present], fp[present], fn[present]
    denom = tp + 0.5 * fp + 0.5 * fn
    pq = iou / denom
    sq = np.where(tp > 0, iou / np.maximum(tp, 1), 0.0)
    rq = tp / denom
    return float(pq.sum() / n), float(sq.sum() / n), float(rq.sum() / n), n


def summarize(stats: PQStats, category_ids: list[int], isthing: list[bool]) -> dict[str, Any]:
    """PQ/SQ/RQ (0-100) for All, Things, Stuff; pixel accuracy, mIoU, mean Dice; per class
    PQ/SQ/RQ/IoU/Dice (0-100) and TP/FP/FN.

    Categories with no TP, FP or FN are left out of the averages, as in panopticapi; a group
    with none at all gets 0.0 (panopticapi divides by zero there).
    """
    things = np.asarray(isthing, bool)
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for suffix, mask in (("", np.ones_like(things)), ("_th", things), ("_st", ~things)):
        pq, sq, rq, n = _average(stats, mask)
        out["PQ" + suffix], out["SQ" + suffix], out["RQ" + suffix] = 100 * pq, 100 * sq, 100 * rq
        counts[{"": "All", "_th": "Things", "_st": "Stuff"}[suffix]] = n
    sem, iou_c, dice_c = semantic_metrics(stats.conf)
    out.update(sem)
    per_class: dict[str, dict[str, float | int]] = {}
    for k, cid in enumerate(category_ids):
        tp, fp, fn, iou = int(stats.tp[k]), int(stats.fp[k]), int(stats.fn[k]), float(stats.iou_sum[k])
        denom = tp + 0.5 * fp + 0.5 * fn
        per_class[str(cid)] = {
            "PQ": 100 * iou / denom if denom else 0.0,
            "SQ": 100 * iou / tp if tp else 0.0,
            "RQ": 100 * tp / denom if denom else 0.0,
            "TP": tp,
            "FP": fp,
            "FN": fn,
            "IoU": float(iou_c[k]),
            "Dice": float(dice_c[k]),
        }
    out["n_categories"] = counts
    out["per_class"] = per_class
    out["n_images"] = stats.n_images
    return out


@dataclass
class CategoryTable:
    """COCO category ids, names and thing/stuff flags, with a lookup from id to index."""

    ids: list[int]
    names: list[str]
    isthing: list[bool]
    index: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {cid: k for k, cid in enumerate(self.ids)}

    @staticmethod
    def from_coco(categories: list[dict[str, Any]]) -> CategoryTable:
        return CategoryTable(
            [int(c["id"]) for c in categories],
            [str(c.get("name", c["id"])) for c in categories],
            [bool(c.get("isthing", 0) == 1) for c in categories],
        )

    def __len__(self) -> int:
        return len(self.ids)
