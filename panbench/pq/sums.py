"""Per-category PQ sums that add across images, processes and ranks (:class:`PQStats`), and their summary
(:func:`pq_summary`: PQ/SQ/RQ for All, Things and Stuff as panopticapi's ``pq_average``, pixel accuracy, mIoU, Dice).
IoU sums are fixed point (units of 2^-40), each two int64 (whole units and a fraction in [0, 2^40) carried into them),
so any split of the images gives bit-identical metrics (docs/pq-evaluator.md, "Sums that never overflow")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from panbench.pq.matching import ImageStats, empty_column

#: The groups PQ is averaged over: (name, suffix of its keys, ``isthing`` of its categories or None for all).
PQ_GROUPS = (("All", "", None), ("Things", "_th", True), ("Stuff", "_st", False))


def group_mask(things: np.ndarray, isthing: bool | None) -> np.ndarray:
    """The categories of a group of :data:`PQ_GROUPS`, given each category's ``isthing``."""
    return np.ones_like(things) if isthing is None else things if isthing else ~things


IOU_BITS = 40  # fixed point: IoU sums in units of 2^-IOU_BITS
IOU_SCALE = float(2**IOU_BITS)
# add_columns carries the IoU fraction after at most this many matches: each adds at most 2^40 units to
# a fraction below 2^40, so an int64 holds 2^22 of them with room to spare
_BATCH_MATCHES = 2**22
_IMAGE_FIELDS = tuple(f.name for f in fields(ImageStats))  # what add_images concatenates


@dataclass
class PQStats:
    """Per-category sums; ``+`` adds two of them.  The IoU sum of category k is ``iou_int[k] + iou[k] / IOU_SCALE``.
    ``conf``: the semantic confusion in pixels, ``(C + 1) x (C + 1)``, VOID last (rows ground truth); ``unlisted``:
    the ground-truth pixels whose id ``segments_info`` does not list, and their images."""

    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    n_images: int = 0
    conf: np.ndarray = field(default_factory=empty_column)  # empty (the default): zeros of the right shape
    iou_int: np.ndarray = field(default_factory=empty_column)  # empty: zeros
    unlisted: np.ndarray = field(default_factory=empty_column)  # empty: zeros

    def __post_init__(self) -> None:
        if self.unlisted.size == 0:
            self.unlisted = np.zeros(2, np.int64)
        if self.conf.size == 0:  # a confusion matrix has at least VOID's 1 x 1
            self.conf = np.zeros((len(self.iou) + 1,) * 2, np.int64)
        if self.iou_int.size == 0:
            self.iou_int = np.zeros(len(self.iou), np.int64)
        self._carry()

    def _carry(self) -> None:
        """Move whole units of the fraction ``iou`` into ``iou_int`` (``iou`` ends in [0, 2^40))."""
        whole = self.iou >> IOU_BITS
        if whole.any():
            self.iou_int += whole
            self.iou -= whole << IOU_BITS

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the confusion matrix sparse: a worker's chunk touches a few hundred of its (C + 1)^2
        cells (134^2 for COCO), so what crosses to the parent is a few KiB instead of 143 KiB."""
        state = dict(self.__dict__)
        flat = self.conf.ravel()
        cells = np.flatnonzero(flat)
        state["conf"] = (self.conf.shape, cells, flat[cells])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        shape, cells, values = state["conf"]
        conf = np.zeros(shape, np.int64)
        conf.ravel()[cells] = values
        self.__dict__.update(state, conf=conf)

    @staticmethod
    def zeros(n_categories: int) -> PQStats:
        iou, tp, fp, fn = (np.zeros(n_categories, np.int64) for _ in range(4))
        return PQStats(iou, tp, fp, fn)

    def add_image(self, s: ImageStats) -> None:
        """Accumulate one image's contributions in place (:meth:`add_images` of one image)."""
        self.add_images((s,))

    def add_images(self, images: Sequence[ImageStats]) -> None:
        """:meth:`add_image` of each (the same integers), with one array operation per field."""
        if not images:
            return
        cat = np.concatenate
        self.add_columns({name: cat([getattr(s, name) for s in images]) for name in _IMAGE_FIELDS}, len(images))

    def add_columns(self, cols: Mapping[str, np.ndarray], n_images: int, prefix: str = "") -> None:
        """:meth:`add_images` of ``n_images`` images as :mod:`panbench.pq.result`'s columns of
        :class:`~panbench.pq.matching.ImageStats` (keys ``prefix + field``, the semantic ones optional)."""
        none = np.zeros(0, np.int64)
        tp_cats, tp_ious = cols[prefix + "tp_cats"], cols[prefix + "tp_ious"]
        for lo in range(0, len(tp_cats), _BATCH_MATCHES):
            hi = lo + _BATCH_MATCHES
            np.add.at(self.iou, tp_cats[lo:hi], np.rint(tp_ious[lo:hi] * IOU_SCALE).astype(np.int64))
            self._carry()
        n = len(self.iou)
        self.tp += np.bincount(tp_cats, minlength=n)
        self.fn += np.bincount(cols[prefix + "fn_cats"], minlength=n)
        self.fp += np.bincount(cols[prefix + "fp_cats"], minlength=n)
        sem_px = cols.get(prefix + "sem_px", none)
        if len(sem_px):
            g, p = cols[prefix + "sem_gt"], cols[prefix + "sem_pred"]
            np.add.at(self.conf, (np.where(g < 0, n, g), np.where(p < 0, n, p)), sem_px)
        unlisted = cols.get(prefix + "unlisted_px", none)  # one entry per image that has any
        if len(unlisted):
            self.unlisted += np.array([int(unlisted.sum()), len(unlisted)], np.int64)
        self.n_images += n_images

    def __add__(self, other: PQStats) -> PQStats:
        return PQStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def iou_sum(self) -> np.ndarray:
        """Per-category IoU sums as float64 (the exact sum, rounded once)."""
        return self.iou_int + self.iou / IOU_SCALE

    def to_array(self) -> np.ndarray:
        """One int64 vector (an all-reduce's, a cache file's), exact: the element-wise sum of two, read back with
        :meth:`from_array`, is the sum of the stats."""
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
    """Pixel accuracy, mIoU and mean Dice (0-100; means over the categories present on either side) from a confusion
    matrix with VOID last (ground-truth VOID ignored, VOID predicted is a miss), and the per-category IoU and Dice."""
    c = conf[:-1].astype(np.float64)  # drop ground-truth VOID rows
    tp = np.diag(c[:, :-1])
    gt = c.sum(axis=1)
    pred = c[:, :-1].sum(axis=0)
    present = (gt + pred) > 0
    union = gt + pred - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), 0.0)
    dice = np.where(gt + pred > 0, 2 * tp / np.maximum(gt + pred, 1), 0.0)
    total = gt.sum()
    return {
        "pixel_acc": 100 * float(tp.sum() / total) if total else 0.0,
        "mIoU": 100 * float(iou[present].mean()) if present.any() else 0.0,
        "mDice": 100 * float(dice[present].mean()) if present.any() else 0.0,
    }, 100 * iou, 100 * dice


def category_pq(iou: Any, tp: Any, fp: Any, fn: Any, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """The PQ formula, per category (any shape, float64): ``PQ = scale IoU / (TP + FP/2 + FN/2)``, ``SQ = scale IoU
    / TP``, ``RQ = scale TP / (TP + FP/2 + FN/2)``; 0.0 where a denominator is 0; ``scale`` multiplies the numerator."""
    iou, tp, fp, fn = (np.asarray(a, np.float64) for a in (iou, tp, fp, fn))
    denom = tp + 0.5 * fp + 0.5 * fn
    safe = np.where(denom > 0, denom, 1.0)
    pq = np.where(denom > 0, scale * iou / safe, 0.0)
    sq = np.where(tp > 0, scale * iou / np.where(tp > 0, tp, 1.0), 0.0)
    return pq, sq, np.where(denom > 0, scale * tp / safe, 0.0)


def group_average(iou: Any, tp: Any, fp: Any, fn: Any, mask: Any,
                  present: np.ndarray | None = None, scale: float = 100.0) -> tuple[np.ndarray, ...]:
    """PQ, SQ, RQ (``scale * sum / n``: 0-100 by default) and ``n``, the number of categories averaged: those
    in ``mask`` that are present (default: TP + FP + FN > 0, panopticapi's rule); a group with none gets 0.0.
    Arrays ``(..., C)``; results ``(...)``.  The one average of the package."""
    tp_, fp_, fn_ = (np.asarray(a, np.float64) for a in (tp, fp, fn))
    if present is None:
        present = (tp_ + fp_ + fn_) > 0
    use = present & np.asarray(mask, bool)
    pq, sq, rq = (np.where(use, x, 0.0) for x in category_pq(iou, tp_, fp_, fn_))
    n = use.sum(axis=-1)
    div = np.where(n > 0, n, 1)
    return scale * pq.sum(-1) / div, scale * sq.sum(-1) / div, scale * rq.sum(-1) / div, n


def pq_summary(stats: PQStats, category_ids: list[int], isthing: list[bool]) -> dict[str, Any]:
    """PQ/SQ/RQ (0-100) for All, Things, Stuff, averaged as panopticapi (a group without a category: 0.0); pixel
    accuracy, mIoU, mean Dice; per class PQ/SQ/RQ/IoU/Dice (0-100) and TP/FP/FN."""
    things = np.asarray(isthing, bool)
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    iou_sum, present = stats.iou_sum, (stats.tp + stats.fp + stats.fn) > 0
    for name, suffix, th in PQ_GROUPS:
        use = present & group_mask(things, th)  # averaged over these alone (no zeros in the sum), then 100 * (sum / n)
        pq, sq, rq, n = group_average(iou_sum[use], stats.tp[use], stats.fp[use], stats.fn[use], True, scale=1.0)
        out["PQ" + suffix], out["SQ" + suffix], out["RQ" + suffix] = 100 * float(pq), 100 * float(sq), 100 * float(rq)
        counts[name] = int(n)
    sem, iou_c, dice_c = semantic_metrics(stats.conf)
    out.update(sem)
    pq_c, sq_c, rq_c = category_pq(iou_sum, stats.tp, stats.fp, stats.fn, scale=100.0)
    per_category = {"PQ": pq_c, "SQ": sq_c, "RQ": rq_c, "TP": stats.tp, "FP": stats.fp, "FN": stats.fn, "IoU": iou_c,
                    "Dice": dice_c}  # float64 or int64 arrays: .item() gives a float or an int
    out["n_categories"] = counts
    out["per_class"] = {str(cid): {key: v[k].item() for key, v in per_category.items()}
                        for k, cid in enumerate(category_ids)}
    out["n_images"] = stats.n_images
    return out


def panopticapi_summary(stats: PQStats, category_ids: list[int], isthing: list[bool]) -> dict[str, Any]:
    """panopticapi's ``pq_compute`` result from the sums: ``All``, ``Things``, ``Stuff`` as ``{"pq", "sq", "rq",
    "n"}`` (fractions 0-1; a group without any category 0.0 where panopticapi divides by zero) and ``per_class``
    keyed by category id (0.0 each for an absent category, as panopticapi)."""
    things = np.asarray(isthing, bool)
    out: dict[str, Any] = {}
    for name, _, th in PQ_GROUPS:
        pq, sq, rq, n = group_average(stats.iou_sum, stats.tp, stats.fp, stats.fn, group_mask(things, th), scale=1.0)
        out[name] = {"pq": float(pq), "sq": float(sq), "rq": float(rq), "n": int(n)}
    pq_c, sq_c, rq_c = category_pq(stats.iou_sum, stats.tp, stats.fp, stats.fn)
    out["per_class"] = {int(cid): {"pq": float(pq_c[k]), "sq": float(sq_c[k]), "rq": float(rq_c[k])}
                        for k, cid in enumerate(category_ids)}
    return out
