"""Each PQ rule of panbench.pq.rules as one pure function from an image's intersection table to its sums, written
from the rule's description (panbench/pq/rules.py's docstring): the references that the quirk matcher with all of a
rule's quirks on (panbench.pq.quirks, what panbench runs) is checked against, image by image."""

from __future__ import annotations

import numpy as np

from panbench.pq.matching import IGNORED_SHARE, MATCH_IOU, CategoryTable, Segments, pair_ious
from panbench.pq.rules import Color, RuleSums, color_table
from panbench.pq.sums import IOU_SCALE


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
    out.add_ious(g_cat[g_hit], iou[g_hit, p_hit].astype(np.float64))
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
    out.add_ious(gt.cats[g_hit], iou[g_hit, p_hit])
    np.add.at(out.fn, gt.cats[~hit.any(1) & ~gt.iscrowd], 1)
    on_crowd = (inter[1:n_gt + 1, 1:] * (gt.iscrowd[:, None] & same)).sum(0)  # every crowd of its category
    ignored = (inter[0, 1:] + on_crowd) / np.maximum(pred.areas, 1) > IGNORED_SHARE
    np.add.at(out.fp, pred.cats[~hit.any(0) & ~ignored], 1)
    return out


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
            out.iou[tc[0]] += int(np.rint(float(iou) * IOU_SCALE))
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
    by_class = np.argsort(np.argsort(cats.ids, kind="stable"), kind="stable")  # each category's class
    return RuleSums(out.tp[by_class], out.fp[by_class], out.fn[by_class], out.iou[by_class])


def _eomt_colors(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable,
                 void: Color) -> tuple[dict[tuple[Color, Color], int], dict[Color, int], dict[Color, int], list[bool]]:
    """EoMT's input as torchmetrics sees it, from the table: each (prediction, target) colour pair's pixels, each
    colour's area (the targets' in ``torch.unique``'s order) and the targets' crowd flags by instance. A colour's
    class is its category's position among the sorted ids (EoMT's ``CLASS_MAPPING``)."""
    n_gt, isthing = len(gt), cats.isthing
    cls = np.argsort(np.argsort(cats.ids, kind="stable"), kind="stable").tolist()
    present = np.flatnonzero(inter[1:n_gt + 1].sum(1) > 0)
    order = present[np.argsort(gt.ids[present], kind="stable")]  # the dataset's target.unique(): by segment id
    crowd = [bool(gt.iscrowd[g]) for g in order.tolist()]
    t_color: dict[int, Color] = {0: void, n_gt + 1: void}  # table row -> colour (VOID and unlisted ids: VOID)
    for i, g in enumerate(order.tolist()):
        c = int(gt.cats[g])
        t_color[g + 1] = (cls[c], i if isthing[c] else 0)
    p_color: dict[int, Color] = {0: (len(cats), 0)}  # predicted VOID: class num_classes (stuff)
    for j in range(len(pred)):
        c = int(pred.cats[j])
        p_color[j + 1] = (cls[c], j + 1 if isthing[c] else 0)
    return (*color_table(inter, t_color, p_color), crowd)


#: each rule's reference (panopticapi's are the PQ sums themselves)
TABLE_RULES = {"torchmetrics": torchmetrics_sums, "vernier-corrected": vernier_corrected_sums, "eomt": eomt_sums}


def vernier_evaluation(imgs: list, cats: list[dict]):
    """vernier's own corrected-parity evaluation of ``imgs`` (``(gt_ids, gt_segments, pred_ids, pred_segments)``
    each) over ``cats``; skips the test where vernier is not installed."""
    import json

    import pytest

    vp = pytest.importorskip("vernier.panoptic")
    gt = vp.Dataset.from_arrays({i: g.astype(np.uint32) for i, (g, _, _, _) in enumerate(imgs)},
                                json.dumps({str(i): s for i, (_, s, _, _) in enumerate(imgs)}).encode(),
                                json.dumps(cats).encode())
    dt = vp.Predictions.from_arrays({i: p.astype(np.uint32) for i, (_, _, p, _) in enumerate(imgs)},
                                    json.dumps({str(i): s for i, (_, _, _, s) in enumerate(imgs)}).encode())
    return vp.Evaluator(parity_mode="corrected").evaluate(gt, dt)
