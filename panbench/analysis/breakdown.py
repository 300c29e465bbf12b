"""A panoptic error breakdown: every FN and every counted FP gets one error type, plus the mask-quality loss of the
TPs and, per type, the oracle gain in PQ; the types and the oracle fixes: docs/analysis.md, "Error breakdown".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from panbench.analysis.collect import AnalysisInputs, AnalysisSet, Fold, Totals, computes, counts
from panbench.analysis.metrics import nine_metrics
from panbench.pq.matching import MATCH_IOU

ERROR_TYPES = ("classification", "segmentation", "duplicate", "background", "missed", "other")
LOW, HIGH = 0.1, MATCH_IOU


def fp_types(same: np.ndarray, other: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """Index into :data:`ERROR_TYPES` for every counted FP."""
    return _first_rule(len(same), [
        (other > HIGH, "classification"),
        ((same > LOW) & matched, "duplicate"),
        ((same > LOW) & (same <= HIGH) & ~matched, "segmentation"),
        (np.maximum(same, other) <= LOW, "background"),
    ])


def _first_rule(n: int, rules: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """Index into :data:`ERROR_TYPES` of the first rule each segment meets, ``other`` when none."""
    t = np.full(n, ERROR_TYPES.index("other"), np.int64)
    done = np.zeros(n, bool)
    for cond, name in rules:
        hit = cond & ~done
        t[hit] = ERROR_TYPES.index(name)
        done |= hit
    return t


def fn_types(same: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Index into :data:`ERROR_TYPES` for every FN."""
    return _first_rule(len(same), [
        (other > HIGH, "classification"),
        ((same > LOW) & (same <= HIGH), "segmentation"),
        (np.maximum(same, other) <= LOW, "missed"),
    ])


class ErrorSums(Fold):
    """Per error type and category: FPs, FNs, and what each oracle turns into TPs or removes."""

    def __init__(self, n_categories: int) -> None:
        super().__init__(n_categories)
        shape = (len(ERROR_TYPES), n_categories)
        self.fp, self.fn, self.to_tp = (np.zeros(shape, np.int64) for _ in range(3))
        self.gain = np.zeros(shape, np.float64)
        self.partner_fp = np.zeros(n_categories, np.int64)

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        c, fn_cats = self.n_categories, cols["fn_cats"]
        tfp = fp_types(cols["fp_same"], cols["fp_other"], cols["fp_matched"])
        tfn = fn_types(cols["fn_same"], cols["fn_other"])
        for k, name in enumerate(ERROR_TYPES):
            sel_fn = tfn == k
            self.fp[k] += counts(cols["fp_cats"][tfp == k], c)
            self.fn[k] += counts(fn_cats[sel_fn], c)
            if name in ("classification", "segmentation"):
                gain = cols["fn_other"] if name == "classification" else cols["fn_pair"]
                to_tp = sel_fn & (gain > 0)
                np.add.at(self.gain[k], fn_cats[to_tp], gain[to_tp])
                self.to_tp[k] += counts(fn_cats[to_tp], c)
                if name == "segmentation":  # the fixed partner matches: not an FP, even one of another type
                    self.partner_fp += counts(fn_cats[to_tp & (cols["fn_pair_other"] > HIGH)], c)


def error_breakdown(a: AnalysisSet, isthing: list[bool]) -> dict[str, Any]:
    """``errors``: type -> {fp, fn, count, delta_PQ} (delta in PQ points, 0-100);
    ``mask_quality``: {loss (summed 1 - IoU of TPs), mean_loss, delta_PQ}; ``PQ`` the base PQ."""
    return breakdown_of(Totals.of(a), ErrorSums.of(a), a.tp_ious, isthing)


def breakdown_of(t: Totals, e: ErrorSums, tp_ious: np.ndarray, isthing: list[bool]) -> dict[str, Any]:
    """:func:`error_breakdown` of a run's sums and every TP's IoU (numpy's pairwise sum of 1 - IoU needs them all)."""
    iou, tp, fp, fn = t.as_float()
    base = float(nine_metrics(iou, tp, fp, fn, isthing)["PQ"])
    errors: dict[str, Any] = {}
    for k, name in enumerate(ERROR_TYPES):  # gain and to_tp are 0 but for classification and segmentation
        f_fp = fp - e.fp[k] - (e.partner_fp if name == "segmentation" else 0)
        fixed = float(nine_metrics(iou + e.gain[k], tp + e.to_tp[k], f_fp, fn - e.fn[k], isthing)["PQ"])
        n_fp, n_fn = int(e.fp[k].sum()), int(e.fn[k].sum())
        errors[name] = {"fp": n_fp, "fn": n_fn, "count": n_fp + n_fn, "delta_PQ": fixed - base}
    loss = float((1 - tp_ious).sum())
    fixed = float(nine_metrics(tp, tp, fp, fn, isthing)["PQ"])
    return {"PQ": base, "errors": errors,
            "mask_quality": {"loss": loss, "mean_loss": loss / len(tp_ious) if len(tp_ious) else 0.0,
                             "delta_PQ": fixed - base}}


@computes("errors")
def errors_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """``errors`` (type -> count, fp, fn, delta_PQ) and ``mask_quality``."""
    eb = breakdown_of(inp.sums(Totals), inp.sums(ErrorSums), inp.aset.tp_ious, inp.isthing)
    return {"errors": {k: {f: v[f] for f in ("count", "fp", "fn", "delta_PQ")} for k, v in eb["errors"].items()},
            "mask_quality": eb["mask_quality"]}
