"""Helpers of the AP tests: pycocotools as the reference, the COCO sample's and synthetic sets' ground truth, and
predictions perturbed from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.analysis.ap import AP_KEYS, APAccumulator, Instances
from panbench.pq.png import read_ids


def _pycocotools() -> Any:
    return pytest.importorskip("pycocotools.cocoeval", reason="the reference is pycocotools (pip install pycocotools)")


def pycocotools_ap(gt: dict[str, Any], results: list[dict[str, Any]] | str | Path) -> np.ndarray:
    """pycocotools' COCOeval(segm) stats[0:6] of ``results`` (a list, or a JSON file) on the dataset ``gt``."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        dt = coco.loadRes(str(results) if isinstance(results, (str, Path)) else copy.deepcopy(results))
        ev = COCOeval(coco, dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats[:6])


def assert_same_ap(ours: dict[str, float], ref: np.ndarray) -> None:
    got = np.array([ours[k] / 100 if ours[k] >= 0 else -1.0 for k in AP_KEYS])
    assert np.max(np.abs(got - ref)) <= 1e-9, (got, ref)


def perturbed_predictions(acc: APAccumulator, ids_by_image: dict[int, np.ndarray], seed: int,
                          extra: int = 3) -> None:
    """Predictions for every ground-truth thing of ``acc``: its mask shifted and eroded at random, a random score
    (some tied), sometimes another thing category; plus ``extra`` random boxes per image."""
    rng = np.random.default_rng(seed)
    cats = acc.thing_ids
    for image_id, ids in ids_by_image.items():
        masks, scores, labels = [], [], []
        for a in acc.gt[image_id]:
            m = _decode(a["segmentation"])
            m = np.roll(m, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) & (rng.random(m.shape) > rng.random() * 0.3)
            masks.append(m)
            scores.append(round(float(rng.random()), 1))  # ties
            labels.append(a["category_id"] if rng.random() > 0.2 else int(rng.choice(cats)))
        for _ in range(extra):
            m = np.zeros(ids.shape, bool)
            y, x = rng.integers(0, ids.shape[0] - 2), rng.integers(0, ids.shape[1] - 2)
            m[y : y + int(rng.integers(2, 120)), x : x + int(rng.integers(2, 120))] = True
            masks.append(m)
            scores.append(float(rng.random()))
            labels.append(int(rng.choice(cats)))
        inst = Instances.from_masks(np.array(masks), scores, labels) if masks else None
        acc.dt[image_id] = inst if inst is not None else Instances.empty()


def _decode(rle: dict[str, Any]) -> np.ndarray:
    import hotcoco

    return np.asarray(hotcoco.mask.decode({"size": rle["size"], "counts": rle["counts"]}), bool)


def coco_sample_accumulator(root: Path) -> tuple[APAccumulator, dict[int, np.ndarray], dict[str, Any]]:
    gt = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())
    acc = APAccumulator.for_categories(gt["categories"])
    ids_by_image = {}
    for ann in gt["annotations"]:
        ids = read_ids(root / "annotations" / "panoptic_val2017" / ann["file_name"], "test")
        ids_by_image[ann["image_id"]] = ids.copy()
        acc.add_image(ann["image_id"], ids, ann["segments_info"], None)
    return acc, ids_by_image, gt


def synthetic_set(seed: int, n_images: int = 12) -> tuple[APAccumulator, dict[int, np.ndarray]]:
    """Panoptic images of random rectangles of 3 thing and 1 stuff categories, every COCO size, some crowds."""
    rng = np.random.default_rng(seed)
    categories = [{"id": 3, "name": "a", "isthing": 1}, {"id": 7, "name": "b", "isthing": 1},
                  {"id": 9, "name": "c", "isthing": 1}, {"id": 20, "name": "s", "isthing": 0}]
    acc = APAccumulator.for_categories(categories)
    ids_by_image = {}
    for image_id in range(5, 5 + n_images):
        h, w = int(rng.integers(100, 300)), int(rng.integers(100, 300))
        ids = np.zeros((h, w), np.uint32)
        ids[: h // 4] = 1  # stuff
        segs = [{"id": 1, "category_id": 20, "iscrowd": 0}]
        for k in range(int(rng.integers(0, 9))):
            side = int(rng.choice([5, 20, 60, 150]))
            y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
            ids[y : y + side, x : x + int(side * rng.uniform(0.5, 1.5))] = k + 2
            segs.append({"id": k + 2, "category_id": int(rng.choice([3, 7, 9])), "iscrowd": int(rng.random() < 0.1)})
        segs = [s for s in segs if (ids == s["id"]).any()]
        for s in segs:
            ys, xs = np.nonzero(ids == s["id"])
            s.update(area=int(len(ys)), bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)])
        ids_by_image[image_id] = ids
        acc.add_image(image_id, ids, segs, None)
    return acc, ids_by_image
