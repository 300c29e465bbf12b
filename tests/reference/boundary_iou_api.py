"""Boundary PQ as the paper authors' reference implementation computes it, restated for the tests.

Source: https://github.com/bowenc0221/boundary-iou-api (Bowen Cheng; BSD-2-Clause "FreeBSD" license,
copyright (c) 2021 Bowen Cheng; its panoptic part derives from panopticapi, copyright (c) 2018
Alexander Kirillov, same license), commit 8006aa98e931ee410dbb1fede30271d5bc859769:
``boundary_iou/coco_panoptic_api/evaluation.py`` (``pq_compute_single_core`` with
``iou_type="boundary"``, ``dilation_ratio=0.02`` by default) and
``boundary_iou/utils/boundary_utils.py`` (``mask_to_boundary``).  Not on PyPI.

This file is NOT a copy of that code: it restates, step by step, what the reference computes (the
same OpenCV calls, the same order of operations, the same quirks), in this project's words, on
in-memory id maps (the PNG reading, printing and multiprocessing are left out).  The per-category
accumulation and averaging are panopticapi's own ``PQStat`` (installed, ``panopticapi-lite``), which
the reference's ``PQStat`` repeats line for line.  The restatement was checked once to give exactly
the same ``PQStat`` (TP/FP/FN equal, IoU sums equal as floats) as the upstream module on every case
of tests/analysis/test_analysis_boundary_reference.py (see docs/analysis.md).

What the reference does per image:

1. ``d = int(round(ratio * sqrt(h**2 + w**2)))``, at least 1 (Python's ``round`` of a numpy float:
   halves go to even).  A segment's boundary is its mask minus the mask eroded ``d`` times by a
   3x3 square inside a one-pixel zero frame (``cv2.copyMakeBorder`` + ``cv2.erode``), so the image
   border counts as contour.
2. A "boundary map" per side: walking ``segments_info`` in order, the segment's pixels *in the map
   as relabelled so far* become ``BOUNDARY_ID = max(category ids) + 1``, then its boundary pixels get
   its id back.  The boundary area of a segment is its number of boundary pixels.
   Quirk: a segment whose id equals ``BOUNDARY_ID`` takes in the interiors of the segments listed
   before it (and its boundary overlaps every interior in step 3).  The tests never use that id.
3. Pair counts of the id maps and of the two boundary maps (``np.unique`` of ``gt * 2^24 + pred``).
4. For each (gt, pred) pair with pixels in common, both listed, gt not crowd, same category:
   mask IoU as panopticapi (gt area from the JSON, pred area from the PNG, pred pixels on VOID out
   of the union); boundary IoU ``Bi / (Bp + Bg - Bi - (pred boundary pixels on gt VOID))``;
   IoU = min of the two; a TP when > 0.5.
5. FN and FP exactly as panopticapi (crowd of the prediction's category -- the last listed one --
   and VOID make up more than half of an unmatched prediction: ignored).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from panopticapi.evaluation import PQStat

OFFSET = 256 * 256 * 256
VOID = 0


def dilation_pixels(h: int, w: int, ratio: float) -> int:
    """The reference's ``d``: ``int(round(ratio * np.sqrt(h**2 + w**2)))``, at least 1."""
    return max(1, int(round(ratio * np.sqrt(h**2 + w**2))))


def mask_boundary(mask: np.ndarray, ratio: float) -> np.ndarray:
    """uint8 mask -> uint8 boundary: the mask minus its d-fold 3x3 erosion inside a zero frame."""
    h, w = mask.shape
    d = dilation_pixels(h, w, ratio)
    framed = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(framed, np.ones((3, 3), np.uint8), iterations=d)
    return mask - eroded[1 : h + 1, 1 : w + 1]


def boundary_map(ids: np.ndarray, segments_info: list[dict[str, Any]], boundary_id: int,
                 ratio: float) -> tuple[np.ndarray, dict[int, int]]:
    """Step 2: the relabelled map (interiors -> ``boundary_id``) and each segment's boundary area."""
    out = ids.copy()
    areas: dict[int, int] = {}
    for seg in segments_info:
        mask = (out == seg["id"]).astype(np.uint8)
        edge = mask_boundary(mask, ratio) > 0
        out[mask > 0] = boundary_id
        out[edge] = seg["id"]
        areas[seg["id"]] = int(edge.sum())
    return out, areas


def pair_counts(gt_map: np.ndarray, pred_map: np.ndarray) -> dict[tuple[int, int], int]:
    """Step 3: pixels of every (gt id, pred id) pair present."""
    keys, counts = np.unique(gt_map.astype(np.uint64) * OFFSET + pred_map.astype(np.uint64), return_counts=True)
    return {(int(k // OFFSET), int(k % OFFSET)): int(c) for k, c in zip(keys, counts)}


def add_image(stat: PQStat, gt_ids: np.ndarray, gt_info: list[dict[str, Any]], pred_ids: np.ndarray,
              pred_info: list[dict[str, Any]], categories: dict[int, dict[str, Any]], ratio: float = 0.02) -> None:
    """Add one image's boundary-PQ contributions to ``stat`` (steps 1-5).  ``gt_info`` carries the
    JSON areas and ``iscrowd``; valid input is assumed (the reference's sanity checks are left out)."""
    boundary_id = int(np.amax(list(categories.keys()))) + 1
    gt_segs = {s["id"]: s for s in gt_info}
    pred_segs = {s["id"]: s for s in pred_info}
    pred_area = {int(k): int(c) for k, c in zip(*np.unique(pred_ids, return_counts=True))}
    gt_bmap, gt_barea = boundary_map(gt_ids, gt_info, boundary_id, ratio)
    pred_bmap, pred_barea = boundary_map(pred_ids, pred_info, boundary_id, ratio)
    mask_pairs = pair_counts(gt_ids, pred_ids)
    edge_pairs = pair_counts(gt_bmap, pred_bmap)

    gt_hit, pred_hit = set(), set()
    for (g, p), inter in mask_pairs.items():
        if g not in gt_segs or p not in pred_segs or gt_segs[g]["iscrowd"] == 1:
            continue
        cat = gt_segs[g]["category_id"]
        if cat != pred_segs[p]["category_id"]:
            continue
        iou = inter / (pred_area[p] + gt_segs[g]["area"] - inter - mask_pairs.get((VOID, p), 0))
        b_inter = edge_pairs.get((g, p), 0)
        b_union = pred_barea[p] + gt_barea[g] - b_inter - edge_pairs.get((VOID, p), 0)
        iou = min(iou, b_inter / b_union)
        if iou > 0.5:
            stat[cat].tp += 1
            stat[cat].iou += iou
            gt_hit.add(g)
            pred_hit.add(p)

    crowd_of_cat = {}
    for g, seg in gt_segs.items():
        if g in gt_hit:
            continue
        if seg["iscrowd"] == 1:
            crowd_of_cat[seg["category_id"]] = g
            continue
        stat[seg["category_id"]].fn += 1
    for p, seg in pred_segs.items():
        if p in pred_hit:
            continue
        ignored = mask_pairs.get((VOID, p), 0)
        if seg["category_id"] in crowd_of_cat:
            ignored += mask_pairs.get((crowd_of_cat[seg["category_id"]], p), 0)
        if ignored / pred_area[p] > 0.5:
            continue
        stat[seg["category_id"]].fp += 1


def summary(stat: PQStat, categories: dict[int, dict[str, Any]]) -> dict[str, float]:
    """The nine metrics (0-100) in panbench's key names; a group with no category present gives 0
    (the reference divides by zero there)."""
    out: dict[str, float] = {}
    for sfx, isthing in (("", None), ("_th", True), ("_st", False)):
        try:
            res, _ = stat.pq_average(categories, isthing=isthing)
        except ZeroDivisionError:
            res = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
        out["PQ" + sfx], out["SQ" + sfx], out["RQ" + sfx] = 100 * res["pq"], 100 * res["sq"], 100 * res["rq"]
    return out
