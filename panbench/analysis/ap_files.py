"""AP of a COCO instance results JSON from any system (``panbench score --instances FILE.json``), against the
panoptic ground truth (JSON + PNG folder) converted as :mod:`panbench.analysis.ap` converts it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis.ap import APAccumulator, Instances
from panbench.errors import InputError
from panbench.pq.coco_format import read_ground_truth, safe_join, segments_list
from panbench.pq.png import read_ids

INSTANCES_FORMAT = "give COCO instance results: a list of {image_id, category_id, segmentation: {size, counts}, score}"


def read_instances(path: str | os.PathLike[str], image_ids: set[int]) -> dict[int, Instances]:
    """The COCO instance results in ``path`` by image (one-line errors naming the file and the fix)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: instance results not found; check the --instances path")
    try:
        data = json.loads(p.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not valid JSON ({e}); {INSTANCES_FORMAT}") from e
    if not isinstance(data, list):
        raise InputError(f"{p}: a JSON {type(data).__name__}, not a list; {INSTANCES_FORMAT}")
    by_image: dict[int, tuple[list[dict[str, Any]], list[float], list[int]]] = {}
    for k, r in enumerate(data):
        _check_result(p, k, r, image_ids)
        rles, scores, cats = by_image.setdefault(r["image_id"], ([], [], []))
        seg = r["segmentation"]
        rles.append({"size": [int(s) for s in seg["size"]], "counts": seg["counts"]})
        scores.append(float(r["score"]))
        cats.append(int(r["category_id"]))
    return {i: Instances(r, np.array(s, np.float64), np.array(c, np.int64)) for i, (r, s, c) in by_image.items()}


def _check_result(p: Path, k: int, r: Any, image_ids: set[int]) -> None:
    seg = r.get("segmentation") if isinstance(r, dict) else None
    ok = (isinstance(r, dict) and all(isinstance(r.get(f), int) and not isinstance(r.get(f), bool)
                                      for f in ("image_id", "category_id"))
          and isinstance(r.get("score"), int | float) and isinstance(seg, dict)
          and isinstance(seg.get("counts"), str) and isinstance(seg.get("size"), list) and len(seg["size"]) == 2)
    if not ok:
        raise InputError(f"{p}: result {k} is not a COCO instance result with an RLE mask (counts as a string); "
                         f"{INSTANCES_FORMAT}")
    if r["image_id"] not in image_ids:
        raise InputError(f"{p}: result {k} is for image {r['image_id']}, which the ground truth does not annotate; "
                         "leave it out or score against the ground truth of those images")


def score_instances(gt_json: str | os.PathLike[str], gt_dir: str | os.PathLike[str],
                    instances_json: str | os.PathLike[str]) -> dict[str, float]:
    """AP, AP50, AP75, APs, APm, APl (0-100) of ``instances_json`` on every image the ground truth annotates."""
    return instance_accumulator(gt_json, gt_dir, instances_json).evaluate()


def instance_accumulator(gt_json: str | os.PathLike[str], gt_dir: str | os.PathLike[str],
                         instances_json: str | os.PathLike[str]) -> APAccumulator:
    """The ground truth (every annotated image, its PNG read once) and ``instances_json``'s predictions;
    ``gt_json`` read already (a :class:`~panbench.pq.coco_format.GroundTruthJSON`) is not read again."""
    truth = read_ground_truth(gt_json)
    gt = truth.annotations
    acc = APAccumulator.for_categories(truth.data["categories"])
    preds = read_instances(instances_json, set(gt))
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise InputError(f"{gt_dir}: --gt-dir is not a folder; point it at the folder of panoptic PNGs")
    for image_id in truth.image_ids():
        ann = gt[image_id]
        where = f"image {image_id}"
        ids = read_ids(safe_join(gt_dir, ann["file_name"], f"{where} (ground truth)"), where)
        inst = preds.get(image_id)
        if wrong := ({tuple(r["size"]) for r in inst.rles} if inst is not None else set()) - {ids.shape}:
            raise InputError(f"{instances_json}: image {image_id} has masks of size {sorted(wrong)[0]} (height, "
                             f"width); the ground truth is {ids.shape}: give masks at the image's full size")
        acc.add_image(image_id, ids, segments_list(ann["segments_info"]), inst)
    return acc
