"""PQ under the rules of other implementations (docs/pq-rules.md): their per-category sums (:class:`RuleSums`,
integers that add across images, processes and ranks, counted by :mod:`panbench.pq.quirks` from each image's
intersection table: a rule is its last quirk state) and one summary of the sums per rule (how it averages). One pure
function per rule, written from the rule's description, is its reference (tests/pq/rule_references.py).
``panopticapi`` is panbench's own numbers (:mod:`panbench.pq.matching`); the others:

- ``torchmetrics``: torchmetrics 1.9's ``PanopticQuality`` (``functional/detection/_panoptic_quality_common.py``):
  no crowd (a crowd segment is an ordinary segment of its category), areas counted from the pixels, the segments of
  one stuff category in an image merged into one (``_prepocess_inputs`` zeroes their instance ids), predicted VOID
  left out of a target's union and ground-truth VOID out of a prediction's (``_calculate_iou``), an unmatched target
  (prediction) more than half under predicted (ground-truth) VOID neither a false negative nor a false positive
  (``_filter_false_negatives``, ``_filter_false_positives``), the IoU in float32 (integer tensors divided), classes
  with no TP, FP or FN left out of the mean. Ground-truth pixels whose id no segment lists are VOID, as a converter
  from the PNG gives them.
- ``vernier-corrected``: vernier 0.5.4's panoptic evaluator in its default ``parity_mode="corrected"`` (its
  ADR-0025): panopticapi's matching, but an unmatched prediction's overlap with crowd summed over every crowd
  segment of its category (panopticapi takes the last one listed); areas, VOID and the mean as panopticapi's.
- ``eomt``: EoMT's evaluation (tue-mps/eomt, ``training/lightning_module.py``: ``update_metrics_panoptic`` on
  torchmetrics' functions, ``_on_eval_epoch_end_panoptic``), on its input: a target's instance is the segment's
  index among the image's segments in the PNG sorted by id (its dataset's ``target.unique()``), a stuff target's is
  0 (torchmetrics zeroes it), so the crowd flag of the image's first segment stands for every stuff target; a
  predicted VOID pixel is class ``num_classes``, a stuff class of its own, not VOID. Its rules are torchmetrics' with
  a crowd patch: a pair whose target is crowd is never matched, an unmatched crowd target is no false negative, and
  an unmatched prediction is no false positive when its pixels on ground-truth VOID and on its category's crowd
  target (one per category: the last met in the set of unmatched targets) exceed half of it. PQ, SQ and RQ are
  means over every class, an absent class counting 0; the class ``num_classes`` is left out.

numpy only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.pq.matching import CategoryTable
from panbench.pq.sums import IOU_BITS, IOU_SCALE, PQStats, pq_summary


@dataclass
class RuleSums:
    """One rule's per-category sums over images (indices into the category table): matches, misses, false
    positives and the matches' IoU sum in fixed point (units of 2^-40, each IoU rounded half to even, as
    :class:`~panbench.pq.sums.PQStats` adds them): integers, so that every split and order of the images adds to the
    same sums. One int64 holds a category's IoU sum up to 2^23 (8.4 million) matches; COCO val has about 40,000
    matches in all."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    iou: np.ndarray

    @staticmethod
    def zeros(n: int) -> RuleSums:
        return RuleSums(*(np.zeros(n, np.int64) for _ in range(4)))

    @staticmethod
    def from_stats(stats: PQStats) -> RuleSums:
        """panopticapi's sums (PQ's own, :class:`~panbench.pq.sums.PQStats`) in this form."""
        return RuleSums(stats.tp, stats.fp, stats.fn, (stats.iou_int << IOU_BITS) + stats.iou)

    def add(self, other: RuleSums) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou += other.iou

    def add_ious(self, cats: np.ndarray, ious: np.ndarray) -> None:
        """Add matches' IoUs (float64) of categories ``cats`` to the IoU sum, each rounded to the fixed point."""
        np.add.at(self.iou, cats, np.rint(np.asarray(ious, np.float64) * IOU_SCALE).astype(np.int64))



Color = tuple[int, int]  # (class, instance), as torchmetrics' _get_color_areas keys them


def color_table(inter: np.ndarray, t_color: dict[int, Color], p_color: dict[int, Color]) -> tuple[
        dict[tuple[Color, Color], int], dict[Color, int], dict[Color, int]]:
    """An intersection table by colours (a table row's target colour, a column's prediction colour): each
    (prediction, target) pair's pixels, each prediction's and each target's area counted from them, the targets in
    ``torch.unique``'s order (sorted), as torchmetrics' ``_get_color_areas`` gives them."""
    pairs: dict[tuple[Color, Color], int] = {}
    for r, tc in t_color.items():
        for k, pc in p_color.items():
            if (v := int(inter[r, k])) > 0:
                pairs[(pc, tc)] = pairs.get((pc, tc), 0) + v
    pred_areas: dict[Color, int] = {}
    target_areas: dict[Color, int] = {}
    for (pc, tc), v in sorted(pairs.items()):
        pred_areas[pc] = pred_areas.get(pc, 0) + v
        target_areas[tc] = target_areas.get(tc, 0) + v
    return pairs, pred_areas, dict(sorted(target_areas.items()))


#: the rules whose mean is over every class, an absent one (no TP, FP or FN) counting 0; the others' is over the
#: classes with a TP, FP or FN
MEAN_OVER_ALL = frozenset({"eomt"})
#: the rules whose mean over no class is NaN, as their references' (torchmetrics' ``torch.mean`` of an empty tensor:
#: a group none of whose classes has a TP, FP or FN; EoMT's: a group of no class at all); the others' is 0.0 (vernier's
#: ``n == 0``; panopticapi's, panbench's own numbers)
NAN_OF_NONE = frozenset({"torchmetrics", "eomt"})


def rule_summary(rule: str, sums: RuleSums, cats: CategoryTable) -> dict[str, Any]:
    """PQ, SQ and RQ (0-100) for All, Things and Stuff and per class under ``rule``: each class's SQ the mean IoU
    of its matches (0 without one), RQ ``TP / (TP + FP/2 + FN/2)``, PQ their product; a group's the mean over its
    classes with a TP, FP or FN (torchmetrics', vernier's), over all its classes under :data:`MEAN_OVER_ALL`'s, which
    also give ``absent_classes`` (those with no TP, FP or FN, each counting 0) of ``classes_averaged``; a mean over no
    class NaN under :data:`NAN_OF_NONE`'s, else 0.0."""
    denom = sums.tp + 0.5 * sums.fp + 0.5 * sums.fn
    sq = np.where(sums.tp > 0, sums.iou / IOU_SCALE / np.maximum(sums.tp, 1), 0.0)
    rq = np.where(denom > 0, sums.tp / np.where(denom > 0, denom, 1.0), 0.0)
    pq = sq * rq
    things = np.asarray(cats.isthing, bool)
    none = float("nan") if rule in NAN_OF_NONE else 0.0
    by_id = np.argsort(np.asarray(cats.ids, np.int64), kind="stable")  # each mean summed in the order of the ids,
    out: dict[str, Any] = {}  # so that the order the JSON lists the categories in changes no bit
    for suffix, group in (("", np.ones(len(things), bool)), ("_th", things), ("_st", ~things)):
        use = (group if rule in MEAN_OVER_ALL else group & (denom > 0))[by_id]
        for key, v in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
            out[key + suffix] = 100 * float(v[by_id][use].mean()) if use.any() else none
    if rule in MEAN_OVER_ALL:
        out["absent_classes"], out["classes_averaged"] = int((denom == 0).sum()), len(denom)
    out["per_class"] = {str(cid): {"PQ": 100 * float(pq[k]), "SQ": 100 * float(sq[k]), "RQ": 100 * float(rq[k]),
                                   "TP": int(sums.tp[k]), "FP": int(sums.fp[k]), "FN": int(sums.fn[k])}
                        for k, cid in enumerate(cats.ids)}
    return out


def panopticapi_rule(stats: PQStats, cats: CategoryTable) -> dict[str, Any]:
    """panbench's own numbers (panopticapi's) in :func:`rule_summary`'s form, from PQ's sums."""
    res = pq_summary(stats, cats.ids, cats.isthing)
    out = {k: res[k] for k in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")}
    out["per_class"] = {cid: {k: c[k] for k in ("PQ", "SQ", "RQ", "TP", "FP", "FN")}
                        for cid, c in res["per_class"].items()}
    return out
