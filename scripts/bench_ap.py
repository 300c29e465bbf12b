#!/usr/bin/env python
"""The cost of mask AP beside PQ, side by side in one run, on the real 2-image COCO panoptic sample replicated.

The ground truth is the sample's 2 images copied ``--copies`` times (distinct image ids); the panoptic prediction
is the ground truth itself, the instance prediction 100 masks per image (each ground-truth thing shifted and
thinned at random, then random boxes up to 100; random scores, a fifth with another thing category):
synthetic, not a model's output, the count Mask2Former's ``instance_on`` gives (``max_per_image`` 100).

Printed (medians of interleaved repeats, one process):
  PQ only               ``score_files`` (workers=1, no analyses): both JSONs, both PNG folders, the sums
  PQ + AP               ``score --instances --no-analysis`` on one thread (the AP evaluator needs the id maps):
                        PQ on the per-image path, the ground truth's thing segments as RLEs from the same decode
                        of its PNGs, the instance JSON read, COCO's segm evaluation
  eval's RLEs           what ``eval`` adds per image (not in the two rows above, whose instances come as RLEs
                        in a JSON): the ground truth's thing segments and 100 prediction masks to RLE
  COCOeval (hotcoco)    hotcoco's evaluate + accumulate + summarize, the end of both ``score`` and ``eval``
  pycocotools COCOeval  the same evaluation by pycocotools (when installed), for scale

    .venv/bin/python scripts/bench_ap.py [--copies 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panbench.analysis.ap import APAccumulator, Instances, coco_segm_ap, gt_annotations  # noqa: E402
from panbench.evaluators import Evaluators  # noqa: E402
from panbench.evaluators.files import score_folder  # noqa: E402
from panbench.pq.png import read_ids  # noqa: E402
from panbench.pq.score import read_truth, score_files  # noqa: E402

SAMPLE = Path(os.environ.get("PANBENCH_COCO_SAMPLE", ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample"))


def replicate(out: Path, copies: int) -> tuple[Path, Path]:
    """The sample's ground truth ``copies`` times under ``out`` (JSON, PNG folder)."""
    gt = json.loads((SAMPLE / "annotations" / "panoptic_val2017.json").read_text())
    png = out / "gt"
    png.mkdir(parents=True)
    images, anns = [], []
    for k in range(copies):
        for im, ann in zip(gt["images"], gt["annotations"]):
            new_id = ann["image_id"] + 10**7 * k
            name = f"{new_id:012d}.png"
            shutil.copyfile(SAMPLE / "annotations" / "panoptic_val2017" / ann["file_name"], png / name)
            images.append({**im, "id": new_id, "file_name": name.replace(".png", ".jpg")})
            anns.append({**ann, "image_id": new_id, "file_name": name})
    path = out / "gt.json"
    path.write_text(json.dumps({**gt, "images": images, "annotations": anns}))
    return path, png


def predictions(gt_json: Path, png: Path, seed: int = 0) -> list[dict[str, Any]]:
    """100 instance masks per image perturbed from the ground truth's things (see the module docstring)."""
    rng = np.random.default_rng(seed)
    gt = json.loads(gt_json.read_text())
    things = [c["id"] for c in gt["categories"] if c["isthing"]]
    acc = APAccumulator.for_categories(gt["categories"])
    for ann in gt["annotations"]:
        ids = read_ids(png / ann["file_name"], "bench")
        masks, cats = [], []
        for s in ann["segments_info"]:
            if s["category_id"] in things:
                m = np.roll(ids == s["id"], tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) & (rng.random(ids.shape) > 0.1)
                masks.append(m)
                cats.append(s["category_id"] if rng.random() > 0.2 else int(rng.choice(things)))
        while len(masks) < 100:
            m = np.zeros(ids.shape, bool)
            y, x = rng.integers(0, ids.shape[0] - 8), rng.integers(0, ids.shape[1] - 8)
            m[y : y + int(rng.integers(8, 200)), x : x + int(rng.integers(8, 200))] = True
            masks.append(m)
            cats.append(int(rng.choice(things)))
        acc.add(ann["image_id"], ids.shape, [], Instances.from_masks(np.array(masks), rng.random(100), cats))
    return acc.results()


def per_image_encoding(gt_json: Path, png: Path, results: list[dict[str, Any]]) -> Callable[[], None]:
    """What an eval run adds per image: the thing segments and the 100 prediction masks to RLE."""
    import hotcoco

    gt = json.loads(gt_json.read_text())
    things = [c["id"] for c in gt["categories"] if c["isthing"]]
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    items = [(a, read_ids(png / a["file_name"], "bench").copy(), by_image[a["image_id"]]) for a in gt["annotations"]]
    masks = {a["image_id"]: np.asarray(hotcoco.mask.decode([r["segmentation"] for r in rs])).transpose(2, 0, 1)
             for a, _, rs in items[:2]}  # the two distinct images' masks, decoded once

    def run() -> None:
        for k, (a, ids, _) in enumerate(items):
            gt_annotations(a["image_id"], ids, a["segments_info"], things)
            Instances.from_masks(masks[items[k % 2][0]["image_id"]], np.ones(100), np.ones(100))
    return run


def pq_and_ap(gt_json: Path, png: Path, inst: Path) -> Evaluators:
    """``score --instances --no-analysis`` on one thread: PQ and the AP evaluator fed by one decode of each PNG."""
    truth = read_truth(gt_json)
    scored = Evaluators.for_run(truth.categories, analyses=False, ap=True, ap_source="instances JSON",
                                semantic=False)
    score_folder(scored, truth, png, gt_json, png, workers=1, instances=inst)
    return scored


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=50, help="copies of the 2-image sample (default 50: 100 images)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gt_json, png = replicate(Path(tmp), args.copies)
        results = predictions(gt_json, png)
        inst = Path(tmp) / "instances.json"
        inst.write_text(json.dumps(results))
        ap = next(m for m in pq_and_ap(gt_json, png, inst).members if m.name == "AP")
        gt_ds, res = ap.accumulator.gt_dataset(), ap.accumulator.results()
        rows = {"PQ only": lambda: score_files(gt_json, png, gt_json, png, workers=1),
                "PQ + AP": lambda: pq_and_ap(gt_json, png, inst).evaluate(),
                "eval's RLEs (GT things + 100 masks)": per_image_encoding(gt_json, png, results),
                "COCOeval (hotcoco)": lambda: coco_segm_ap(gt_ds, res)}
        rows.update(_pycocotools_row(gt_ds, res))
        t = {name: median_time(fn, args.repeats) for name, fn in rows.items()}
    n = 2 * args.copies
    print(f"{n} images (the COCO sample x {args.copies}), 100 instance predictions per image, median of "
          f"{args.repeats}")
    for name, s in t.items():
        print(f"  {name:36s} {s:8.3f} s  {n / s:8.1f} images/s")
    print(f"  AP's cost: PQ + AP / PQ only = {t['PQ + AP'] / t['PQ only']:.2f}x")
    return 0


def _pycocotools_row(gt: dict[str, Any], res: list[dict[str, Any]]) -> dict[str, Callable[[], Any]]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return {}
    import contextlib
    import copy
    import io

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = copy.deepcopy(gt)
            coco.createIndex()
            ev = COCOeval(coco, coco.loadRes(copy.deepcopy(res)), "segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    return {"pycocotools COCOeval (for scale)": run}


if __name__ == "__main__":
    raise SystemExit(main())
