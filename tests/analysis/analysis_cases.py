"""Hand-built images for the analysis tests: rectangles painted in order on an id map."""

from __future__ import annotations

import numpy as np

from panbench.analysis import AnalysisSet
from panbench.analysis.resample import count_chunks
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable, ImageMatch, ImageStats

# A, B things; S, T stuff (COCO-like non-contiguous ids)
CATS = [
    {"id": 1, "name": "A", "isthing": 1},
    {"id": 3, "name": "B", "isthing": 1},
    {"id": 7, "name": "S", "isthing": 0},
    {"id": 9, "name": "T", "isthing": 0},
]
TABLE = CategoryTable.from_coco(CATS)
A, B, S, T = 0, 1, 2, 3  # indices into the table


def paint(shape: tuple[int, int], rects: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Id map: rects (id, y0, y1, x0, x1) painted in order over VOID (0)."""
    m = np.zeros(shape, np.uint32)
    for sid, y0, y1, x0, x1 in rects:
        m[y0:y1, x0:x1] = sid
    return m


def infos(ids: np.ndarray, cats: dict[int, int], crowd: set[int] = frozenset(), gt: bool = True,
          order: list[int] | None = None) -> list[dict]:
    """segments_info for the ids present in ``ids`` (COCO category id per segment id)."""
    out = []
    for sid in order or sorted(cats):
        area = int((ids == sid).sum())
        if area == 0:
            continue
        s = {"id": sid, "category_id": cats[sid], "iscrowd": int(sid in crowd)}
        if gt:
            s["area"] = area
        out.append(s)
    return out


def run(gt_ids, gt_info, pred_ids, pred_info) -> tuple[ImageStats, ImageMatch]:
    result = score_pair(TABLE, gt_ids, gt_info, pred_ids, pred_info, "test image")
    return result.stats, result.match


def one_set(*images) -> AnalysisSet:
    """An AnalysisSet of hand-built images given as (gt_ids, gt_info, pred_ids, pred_info)."""
    return AnalysisSet.from_images([run(*im)[1] for im in images], len(TABLE))


def resample_counts(n_images: int, n_resamples: int, seed: int) -> np.ndarray:
    """``R x N`` float64 counts: row r says how often each image is drawn in resample r (the bootstrap's draws)."""
    return np.concatenate([w.copy() for w in count_chunks(n_images, n_resamples, seed, max(n_resamples, 1))])
