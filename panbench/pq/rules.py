"""PQ under the rules of other implementations, from the one intersection table of an image (docs/pq-rules.md): one
pure function per rule turning an image's table into per-category sums (:class:`RuleSums`, integers and an IoU sum
that add across images, processes and ranks), and one summary of the sums per rule (how it averages). ``panopticapi``
is panbench's own numbers (:mod:`panbench.pq.matching`); the others:

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

numpy only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.pq.matching import IGNORED_SHARE, MATCH_IOU, CategoryTable, Segments, pair_ious


@dataclass
class RuleSums:
    """One rule's per-category sums over images (indices into the category table): matches, misses, false
    positives and the matches' IoU sum."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    iou: np.ndarray

    @staticmethod
    def zeros(n: int) -> RuleSums:
        return RuleSums(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.float64))

    def add(self, other: RuleSums) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou += other.iou

    def to_share(self) -> dict[str, list[Any]]:
        """The categories an image touched and their sums, as JSON (a resume cache's share)."""
        cats = np.flatnonzero((self.tp + self.fp + self.fn) > 0)
        return {"c": cats.tolist(), "tp": self.tp[cats].tolist(), "fp": self.fp[cats].tolist(),
                "fn": self.fn[cats].tolist(), "iou": self.iou[cats].tolist()}

    def add_share(self, share: dict[str, list[Any]]) -> None:
        c = np.asarray(share["c"], np.int64)
        np.add.at(self.tp, c, np.asarray(share["tp"], np.int64))
        np.add.at(self.fp, c, np.asarray(share["fp"], np.int64))
        np.add.at(self.fn, c, np.asarray(share["fn"], np.int64))
        np.add.at(self.iou, c, np.asarray(share["iou"], np.float64))


def _merged(segs: Segments, isthing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's color (an index into the image's colors) and each color's category: a thing segment is a
    color of its own, the segments of one stuff category share one."""
    colors = np.empty(len(segs), np.int64)
    cats: list[int] = []
    stuff_color: dict[int, int] = {}
    for k, c in enumerate(segs.cats.tolist()):
        if isthing[c]:
            colors[k] = len(cats)
            cats.append(c)
        else:
            if c not in stuff_color:
                stuff_color[c] = len(cats)
                cats.append(c)
            colors[k] = stuff_color[c]
    return colors, np.array(cats, np.int64)


def torchmetrics_sums(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable) -> RuleSums:
    """One image's sums under torchmetrics' rules (module docstring), from its intersection table
    (:func:`panbench.pq.matching.match_image`'s layout)."""
    isthing = np.asarray(cats.isthing, bool)
    n_gt, n_pred = len(gt), len(pred)
    g_col, g_cat = _merged(gt, isthing)
    p_col, p_cat = _merged(pred, isthing)
    # the colors' table: row 0 ground-truth VOID (with the pixels of unlisted ids), column 0 predicted VOID
    table = np.zeros((len(g_cat) + 1, len(p_cat) + 1), np.int64)
    rows = np.concatenate([[0], g_col + 1, [0]])  # table rows: VOID, the segments, the unlisted pixels (VOID)
    cols = np.concatenate([[0], p_col + 1])
    np.add.at(table, (rows[:, None], cols[None, :]), inter[:n_gt + 2, :n_pred + 1])
    t_area, p_area = table[1:].sum(1), table[:, 1:].sum(0)
    t_void, p_void = table[1:, 0], table[0, 1:]  # under predicted VOID; over ground-truth VOID
    inner = table[1:, 1:]
    same = g_cat[:, None] == p_cat[None, :]
    union = p_area[None, :] - p_void[None, :] + t_area[:, None] - t_void[:, None] - inner
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inner.astype(np.float32) / union.astype(np.float32)  # float32, as torch divides integer tensors
    hit = same & (inner > 0) & (iou > np.float32(MATCH_IOU))
    out = RuleSums.zeros(len(cats))
    g_hit, p_hit = np.nonzero(hit)
    np.add.at(out.tp, g_cat[g_hit], 1)
    np.add.at(out.iou, g_cat[g_hit], iou[g_hit, p_hit].astype(np.float64))
    t_left = ~hit.any(1) & (t_area > 0)
    t_left &= (t_void.astype(np.float32) / np.maximum(t_area, 1).astype(np.float32)) <= np.float32(0.5)
    p_left = ~hit.any(0) & (p_area > 0)
    p_left &= (p_void.astype(np.float32) / np.maximum(p_area, 1).astype(np.float32)) <= np.float32(0.5)
    np.add.at(out.fn, g_cat[t_left], 1)
    np.add.at(out.fp, p_cat[p_left], 1)
    return out


def vernier_corrected_sums(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable) -> RuleSums:
    """One image's sums under vernier's corrected rules (module docstring): panopticapi's match (ground-truth areas
    from the JSON, predicted ones counted), an unmatched prediction ignored when more than half of it lies on VOID
    and on every crowd segment of its category together."""
    n_gt = len(gt)
    iou = pair_ious(inter, gt, pred)
    same = gt.cats[:, None] == pred.cats[None, :]
    hit = ~gt.iscrowd[:, None] & same & (iou > MATCH_IOU)
    out = RuleSums.zeros(len(cats))
    g_hit, p_hit = np.nonzero(hit)
    np.add.at(out.tp, gt.cats[g_hit], 1)
    np.add.at(out.iou, gt.cats[g_hit], iou[g_hit, p_hit])
    np.add.at(out.fn, gt.cats[~hit.any(1) & ~gt.iscrowd], 1)
    on_crowd = (inter[1:n_gt + 1, 1:] * (gt.iscrowd[:, None] & same)).sum(0)  # every crowd of its category
    ignored = (inter[0, 1:] + on_crowd) / np.maximum(pred.areas, 1) > IGNORED_SHARE
    np.add.at(out.fp, pred.cats[~hit.any(0) & ~ignored], 1)
    return out


#: the rules counted from each image's table (panopticapi's are the PQ sums themselves)
TABLE_RULES = {"torchmetrics": torchmetrics_sums, "vernier-corrected": vernier_corrected_sums}


def rule_summary(rule: str, sums: RuleSums, cats: CategoryTable) -> dict[str, Any]:
    """PQ, SQ and RQ (0-100) for All, Things and Stuff and per class under ``rule``: each class's SQ the mean IoU
    of its matches (0 without one), RQ ``TP / (TP + FP/2 + FN/2)``, PQ their product; a group's the mean over its
    classes with a TP, FP or FN (torchmetrics', panopticapi's)."""
    denom = sums.tp + 0.5 * sums.fp + 0.5 * sums.fn
    sq = np.where(sums.tp > 0, sums.iou / np.maximum(sums.tp, 1), 0.0)
    rq = np.where(denom > 0, sums.tp / np.where(denom > 0, denom, 1.0), 0.0)
    pq = sq * rq
    things = np.asarray(cats.isthing, bool)
    out: dict[str, Any] = {}
    for suffix, group in (("", np.ones(len(things), bool)), ("_th", things), ("_st", ~things)):
        use = group & (denom > 0)
        for key, v in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
            out[key + suffix] = 100 * float(v[use].mean()) if use.any() else 0.0
    out["per_class"] = {str(cid): {"PQ": 100 * float(pq[k]), "SQ": 100 * float(sq[k]), "RQ": 100 * float(rq[k]),
                                   "TP": int(sums.tp[k]), "FP": int(sums.fp[k]), "FN": int(sums.fn[k])}
                        for k, cid in enumerate(cats.ids)}
    return out
