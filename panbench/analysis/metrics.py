"""PQ variants from per-category sums: the group averages, PQ by object size and PQ-dagger (docs/analysis.md).
The functions take per-category arrays with a leading batch axis too (the bootstrap's ``R x C``), so one rule,
:func:`~panbench.pq.sums.group_average`, serves the point estimate and every resample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from panbench.analysis.collect import AnalysisInputs, AnalysisSet, Fold, Totals, computes, counts
from panbench.pq.sums import PQ_GROUPS, group_average, group_mask

# COCO's area ranges: small < 32^2 <= medium < 96^2 <= large
SIZE_LIMITS = (("small", 0, 32**2), ("medium", 32**2, 96**2), ("large", 96**2, np.iinfo(np.int64).max))


def nine_metrics(iou, tp, fp, fn, isthing) -> dict[str, Any]:
    """PQ/SQ/RQ for All, Things, Stuff (0-100), batched like :func:`group_average`."""
    things = np.asarray(isthing, bool)
    out: dict[str, Any] = {}
    for _, sfx, th in PQ_GROUPS:
        out["PQ" + sfx], out["SQ" + sfx], out["RQ" + sfx], _ = group_average(iou, tp, fp, fn, group_mask(things, th))
    return out


def size_bucket(area: np.ndarray) -> np.ndarray:
    """0 small, 1 medium, 2 large (COCO limits)."""
    return np.searchsorted(np.array([32**2, 96**2]), np.asarray(area, np.int64), side="right")


class SizeSums(Fold):
    """Per COCO size bucket and category: IoU, TP, FN by ground truth's JSON area, FP by pixel area."""

    def __init__(self, n_categories: int) -> None:
        super().__init__(n_categories)
        self.iou = np.zeros((len(SIZE_LIMITS), n_categories), np.float64)
        self.tp, self.fp, self.fn = (np.zeros((len(SIZE_LIMITS), n_categories), np.int64) for _ in range(3))

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        c = self.n_categories
        tb, fnb, fpb = size_bucket(cols["tp_area"]), size_bucket(cols["fn_area"]), size_bucket(cols["fp_area"])
        for k in range(len(SIZE_LIMITS)):
            t = tb == k
            np.add.at(self.iou[k], cols["tp_cats"][t], cols["tp_ious"][t])
            self.tp[k] += counts(cols["tp_cats"][t], c)
            self.fn[k] += counts(cols["fn_cats"][fnb == k], c)
            self.fp[k] += counts(cols["fp_cats"][fpb == k], c)

    def metrics(self, isthing: list[bool]) -> dict[str, dict[str, float | int]]:
        """:func:`pq_by_size` of these sums."""
        things = np.asarray(isthing, bool)
        out: dict[str, dict[str, float | int]] = {}
        for k, (name, _, _) in enumerate(SIZE_LIMITS):
            tp, fn = self.tp[k], self.fn[k]
            pq, sq, rq, n = group_average(self.iou[k], tp, self.fp[k], fn, things)
            out[name] = {"PQ": float(pq), "SQ": float(sq), "RQ": float(rq), "n": int(n),
                         "segments": int((tp + fn)[things].sum())}
        return out


def pq_by_size(a: AnalysisSet, isthing: list[bool]) -> dict[str, dict[str, float | int]]:
    """Things only, per bucket (:class:`SizeSums`): PQ/SQ/RQ of the categories present, ``n``, ``segments``."""
    return SizeSums.of(a).metrics(isthing)


class GtSums(Fold):
    """Per category: the summed ``gt_iou_sum`` of its non-crowd ground truths, and their number."""

    def __init__(self, n_categories: int) -> None:
        super().__init__(n_categories)
        self.iou = np.zeros(n_categories, np.float64)
        self.n = np.zeros(n_categories, np.int64)

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        np.add.at(self.iou, cols["gt_cats"], cols["gt_iou_sum"])
        self.n += counts(cols["gt_cats"], self.n_categories)


def pq_dagger(a: AnalysisSet, isthing: list[bool]) -> dict[str, float]:
    """PQ-dagger (Porzi et al. 2019), 0-100, for All, Things and Stuff (docs/analysis.md, "PQ-dagger")."""
    return dagger_metrics(Totals.of(a), GtSums.of(a), isthing)


def dagger_metrics(t: Totals, g: GtSums, isthing: list[bool]) -> dict[str, float]:
    """:func:`pq_dagger` of a run's sums (a stuff category's ``GtSums`` as its IoU and TP, no FP or FN)."""
    stuff = ~np.asarray(isthing, bool)
    iou, tp, fp, fn = t.as_float()
    m = nine_metrics(np.where(stuff, g.iou, iou), np.where(stuff, g.n.astype(np.float64), tp),
                     np.where(stuff, 0.0, fp), np.where(stuff, 0.0, fn), isthing)
    return {"PQ_dagger" + sfx: float(m["PQ" + sfx]) for _, sfx, _ in PQ_GROUPS}


@computes("by_size")
def by_size_fields(inp: AnalysisInputs) -> dict[str, Any]:
    return {"by_size": inp.sums(SizeSums).metrics(inp.isthing)}


@computes("dagger")
def dagger_fields(inp: AnalysisInputs) -> dict[str, Any]:
    return {"pq_dagger": dagger_metrics(inp.sums(Totals), inp.sums(GtSums), inp.isthing)["PQ_dagger"]}
