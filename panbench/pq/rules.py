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


Color = tuple[int, int]  # (class, instance), as torchmetrics' _get_color_areas keys them


def eomt_sums(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable) -> RuleSums:
    """One image's sums under EoMT's rules (module docstring), from its intersection table: the colours' areas and
    overlaps as torchmetrics counts them (:func:`_eomt_colors`), then EoMT's loops, in Python over the few colours
    (the unmatched targets' set iterated as EoMT's is, which decides the crowd that stands for a category)."""
    n = len(cats)
    void: Color = (n + 1, 0)  # torchmetrics' void colour: 1 + the largest class (num_classes, a stuff class)
    pairs, pred_areas, target_areas, crowd = _eomt_colors(inter, gt, pred, cats, void)
    out = RuleSums.zeros(n)

    def is_crowd(color: Color) -> bool:
        return bool(crowd[color[1]]) if color[1] < len(crowd) else False

    pred_matched: set[Color] = set()
    target_matched: set[Color] = set()
    for (pc, tc), v in pairs.items():
        if is_crowd(tc) or tc == void or pc[0] != tc[0]:
            continue
        union = pred_areas[pc] - pairs.get((pc, void), 0) + target_areas[tc] - pairs.get((void, tc), 0) - v
        iou = np.float32(v) / np.float32(union)  # float32, as torch divides integer tensors
        if iou > MATCH_IOU:
            pred_matched.add(pc)
            target_matched.add(tc)
            out.tp[tc[0]] += 1
            out.iou[tc[0]] += float(iou)
    missed = set(target_areas) - target_matched
    missed.discard(void)
    for tc in list(missed):
        if np.float32(pairs.get((void, tc), 0)) / np.float32(target_areas[tc]) > IGNORED_SHARE:
            missed.discard(tc)
    crowd_of: dict[int, int] = {}
    for tc in missed:  # EoMT's order: the last crowd met stands for its category
        if is_crowd(tc):
            crowd_of[tc[0]] = tc[1]
        else:
            out.fn[tc[0]] += 1
    spare = set(pred_areas) - pred_matched
    spare.discard(void)
    for pc in spare:
        covered = pairs.get((pc, void), 0) + (pairs.get((pc, (pc[0], crowd_of[pc[0]])), 0) if pc[0] in crowd_of else 0)
        if np.float32(covered) / np.float32(pred_areas[pc]) <= IGNORED_SHARE and pc[0] < n:  # num_classes: left out
            out.fp[pc[0]] += 1
    return out


def _eomt_colors(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable,
                 void: Color) -> tuple[dict[tuple[Color, Color], int], dict[Color, int], dict[Color, int], list[bool]]:
    """EoMT's input as torchmetrics sees it, from the table: each (prediction, target) colour pair's pixels, each
    colour's area (the targets' in ``torch.unique``'s order) and the targets' crowd flags by instance."""
    n_gt, isthing = len(gt), cats.isthing
    present = np.flatnonzero(inter[1:n_gt + 1].sum(1) > 0)
    order = present[np.argsort(gt.ids[present], kind="stable")]  # the dataset's target.unique(): by segment id
    crowd = [bool(gt.iscrowd[g]) for g in order.tolist()]
    t_color: dict[int, Color] = {0: void, n_gt + 1: void}  # table row -> colour (VOID and unlisted ids: VOID)
    for i, g in enumerate(order.tolist()):
        c = int(gt.cats[g])
        t_color[g + 1] = (c, i if isthing[c] else 0)
    p_color: dict[int, Color] = {0: (len(cats), 0)}  # predicted VOID: class num_classes (stuff)
    for j in range(len(pred)):
        c = int(pred.cats[j])
        p_color[j + 1] = (c, j + 1 if isthing[c] else 0)
    return (*color_table(inter, t_color, p_color), crowd)


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


#: the rules counted from each image's table (panopticapi's are the PQ sums themselves)
TABLE_RULES = {"torchmetrics": torchmetrics_sums, "vernier-corrected": vernier_corrected_sums, "eomt": eomt_sums}


def rule_summary(rule: str, sums: RuleSums, cats: CategoryTable) -> dict[str, Any]:
    """PQ, SQ and RQ (0-100) for All, Things and Stuff and per class under ``rule``: each class's SQ the mean IoU
    of its matches (0 without one), RQ ``TP / (TP + FP/2 + FN/2)``, PQ their product; a group's the mean over its
    classes with a TP, FP or FN (torchmetrics', vernier's), over all its classes under ``eomt``."""
    denom = sums.tp + 0.5 * sums.fp + 0.5 * sums.fn
    sq = np.where(sums.tp > 0, sums.iou / np.maximum(sums.tp, 1), 0.0)
    rq = np.where(denom > 0, sums.tp / np.where(denom > 0, denom, 1.0), 0.0)
    pq = sq * rq
    things = np.asarray(cats.isthing, bool)
    out: dict[str, Any] = {}
    for suffix, group in (("", np.ones(len(things), bool)), ("_th", things), ("_st", ~things)):
        use = group if rule == "eomt" else group & (denom > 0)
        for key, v in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
            out[key + suffix] = 100 * float(v[use].mean()) if use.any() else 0.0
    out["per_class"] = {str(cid): {"PQ": 100 * float(pq[k]), "SQ": 100 * float(sq[k]), "RQ": 100 * float(rq[k]),
                                   "TP": int(sums.tp[k]), "FP": int(sums.fp[k]), "FN": int(sums.fn[k])}
                        for k, cid in enumerate(cats.ids)}
    return out
