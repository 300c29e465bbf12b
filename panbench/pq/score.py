"""Score COCO-panoptic-format predictions (JSON + PNG folder) against ground truth.

Streaming: images are read, scored and dropped one by one; ``workers > 1`` splits the
images into chunks scored in worker processes whose per-category sums are added.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

from panbench.errors import InputError
from panbench.pq.coco_format import parse_annotations, parse_categories, read_json, safe_join
from panbench.pq.evaluator import PanopticEvaluator, score_image
from panbench.pq.matching import CategoryTable, PQStats
from panbench.pq.png import read_ids

Pair = tuple[dict[str, Any], dict[str, Any]]


def load_pairs(gt_json: str | os.PathLike[str], pred_json: str | os.PathLike[str]) -> tuple[CategoryTable, list[Pair]]:
    """Categories and (ground truth, prediction) annotation pairs matched by image id."""
    gt_data = read_json(gt_json, "ground-truth JSON")
    cats = parse_categories(gt_data, gt_json)
    gt = parse_annotations(gt_data, gt_json, gt=True)
    pred = parse_annotations(read_json(pred_json, "prediction JSON"), pred_json, gt=False)
    pairs = []
    for image_id, gt_ann in gt.items():
        pred_ann = pred.get(image_id)
        if pred_ann is None:
            raise InputError(
                f"{pred_json}: no prediction for image {image_id}; predict every ground-truth image "
                "or restrict the ground-truth JSON to the images you predicted"
            )
        pairs.append((gt_ann, pred_ann))
    return cats, pairs


def score_pair(cats: CategoryTable, gt_dir: Path, pred_dir: Path, pair: Pair):
    """Decode one pair of PNGs and return the image's PQ contributions."""
    gt_ann, pred_ann = pair
    where = f"image {gt_ann['image_id']}"
    gt_png = safe_join(gt_dir, gt_ann["file_name"], f"{where} (ground truth)")
    pred_png = safe_join(pred_dir, pred_ann["file_name"], f"{where} (prediction)")
    gt_ids = read_ids(gt_png, where, "gt")  # reused buffers
    pred_ids = read_ids(pred_png, where, "pred", shape=gt_ids.shape)  # size checked before inflating
    return score_image(cats, gt_ids, gt_ann["segments_info"], pred_ids, pred_ann["segments_info"], where)


_WORKER: dict[str, Any] = {}


def _init_worker(cats: CategoryTable, gt_dir: Path, pred_dir: Path) -> None:
    _WORKER.update(cats=cats, gt_dir=gt_dir, pred_dir=pred_dir)


def _score_chunk(chunk: list[Pair]) -> PQStats:
    stats = PQStats.zeros(len(_WORKER["cats"]))
    for pair in chunk:
        stats.add_image(score_pair(_WORKER["cats"], _WORKER["gt_dir"], _WORKER["pred_dir"], pair))
    return stats


def score_files(
    gt_json: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    pred_json: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    workers: int = 1,
) -> dict[str, Any]:
    """panopticapi's ``pq_compute`` result, computed streaming; see :func:`panbench.pq.matching.summarize`."""
    cats, pairs = load_pairs(gt_json, pred_json)
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d, what in ((gt_dir, "--gt-dir"), (pred_dir, "--pred-dir")):
        if not d.is_dir():
            raise InputError(f"{d}: {what} is not a folder; point it at the folder of panoptic PNGs")
    ev = PanopticEvaluator(cats)
    if workers <= 1 or len(pairs) < 2 * workers:
        for pair in pairs:
            ev.add(score_pair(cats, gt_dir, pred_dir, pair))
    else:
        size = max(1, min(64, len(pairs) // (4 * workers)))
        chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(workers, initializer=_init_worker, initargs=(cats, gt_dir, pred_dir)) as pool:
            for part in pool.imap(_score_chunk, chunks):
                ev.merge(part)
    return ev.evaluate()
