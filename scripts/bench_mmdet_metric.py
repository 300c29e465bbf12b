#!/usr/bin/env python
"""PQ inside MMEngine's evaluator: MMDetection 3.3's ``CocoPanopticMetric`` vs panbench's
``PanbenchPanopticMetric`` (panbench.integrations.mmdet) on the same data samples.

The model outputs are recorded once, then both metrics are fed the same ones, one batch at a time, as
mmengine's Evaluator feeds a metric; what is timed is the metric's own time: ``process`` summed over the
batches, plus ``evaluate`` (mmengine's collect and the metric's ``compute_metrics``).  Each metric gets its own
copy of a batch's maps, made outside the timer (``CocoPanopticMetric`` writes VOID into them in place).

Two sets:

- demo: a demo model's outputs (``Runner.test`` of configs/demo/<model>.py with its committed checkpoint) on the
  demo val set (panbench data demo: 60 images about 200x150);
- coco: scripts/bench_pq.py's real set (scripts/pq_bench_data.py: COCO's own ground-truth PNGs of the shared
  2-image val2017 sample replicated to ``--images``, each with a perturbed prediction PNG), each prediction PNG
  turned into the data sample a model gives: ``pred_panoptic_seg.sem_seg`` = label + instance * INSTANCE_OFFSET
  (int32, VOID as the number of classes), the labels in the annotation file's category order.

Every metric's nine numbers must equal the other's to 1e-9 before any ratio is printed (exit 1 otherwise).  Then a
second round on the same metric objects: panbench's with ``keep_ground_truth`` (the default) scores from the
ground truth it decoded in round 1 (round 2 / round 1); a third row, ``keep_ground_truth=False``, decodes it
every round (and keeps nothing).  Printed beside the numbers: the date, the commit, the
machine and its load (os.getloadavg) before and after.

    .venv/bin/python scripts/bench_mmdet_metric.py [--model mask2former] [--images 1000] [--set demo|coco|both]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from copy import copy
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

TOL = 1e-9


def record_demo_outputs(model: str, limit: int | None) -> tuple[list[dict], dict, str, str]:
    """Runner.test of a demo model with a metric that keeps each data sample: the samples, the dataset meta,
    the annotation file and the PNG folder."""
    import logging

    from mmdet.registry import METRICS
    from mmengine.config import Config
    from mmengine.evaluator import BaseMetric
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from panbench.data.demo import make_demo
    from panbench.ops import install

    install()
    root = make_demo(ROOT / "data" / "demo")
    kept: list[dict] = []

    class RecordDataSamples(BaseMetric):
        def process(self, data_batch: Any, data_samples: Any) -> None:
            kept.extend(_own_sample(s) for s in data_samples)

        def compute_metrics(self, results: list) -> dict:
            return {}

    METRICS.register_module(module=RecordDataSamples, force=True)
    cfg = Config.fromfile(str(ROOT / "configs" / "demo" / f"{model}.py"))
    cfg.load_from = str(sorted((ROOT / "checkpoints" / "demo").glob(f"demo-{model}-*.pth"))[-1])
    cfg.work_dir = str(Path("/tmp") / "bench_mmdet_metric_work")
    cfg.log_level = "WARNING"
    cfg.test_dataloader.dataset.data_root = str(root) + "/"
    if limit:
        cfg.test_dataloader.dataset.indices = limit
    cfg.test_evaluator = dict(type="RecordDataSamples")
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    runner = Runner.from_cfg(cfg)
    runner.test()
    meta = dict(runner.test_dataloader.dataset.metainfo)
    ann = root / "annotations" / "panoptic_val2017.json"
    return kept, meta, str(ann), str(root / "annotations" / "panoptic_val2017") + "/"


def _own_sample(s: dict) -> dict:
    """What a panoptic metric reads of a data sample, with its own copy of the map."""
    keep = ("img_id", "img_path", "ori_shape", "segments_info", "seg_map_path")
    out = {k: s[k] for k in keep if k in s}
    out["pred_panoptic_seg"] = {"sem_seg": s["pred_panoptic_seg"]["sem_seg"].detach().cpu().clone()}
    return out


def coco_png_samples(work: Path, n: int, sample: Path | None = None) -> tuple[list[dict], dict, str, str, str]:
    """bench_pq.py's real set as data samples (prediction PNG -> mmdet's label + instance * INSTANCE_OFFSET)."""
    import json

    import torch
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from pq_bench_data import SAMPLE, _read_rgb_ids, make_real_set

    what = make_real_set(work, n, sample or SAMPLE)
    gt = json.loads((work / "gt.json").read_text())
    pred = json.loads((work / "pred.json").read_text())
    cats = gt["categories"]
    label = {c["id"]: k for k, c in enumerate(cats)}
    meta = {"classes": tuple(c["name"] for c in cats),
            "thing_classes": tuple(c["name"] for c in cats if c["isthing"]),
            "stuff_classes": tuple(c["name"] for c in cats if not c["isthing"])}
    samples = []
    for ann in pred["annotations"]:
        ids = _read_rgb_ids(work / "pred" / ann["file_name"]).astype(np.int64)
        lut = {0: len(cats)}
        for k, s in enumerate(ann["segments_info"]):
            lut[s["id"]] = label[s["category_id"]] + (k + 1) * INSTANCE_OFFSET
        u, inv = np.unique(ids, return_inverse=True)
        pan = np.array([lut[int(v)] for v in u], np.int32)[inv].reshape(ids.shape)
        samples.append({"img_id": ann["image_id"], "img_path": f"images/{ann['file_name'].replace('.png', '.jpg')}",
                        "ori_shape": ids.shape, "pred_panoptic_seg": {"sem_seg": torch.from_numpy(pan)[None]}})
    return samples, meta, str(work / "gt.json"), str(work / "gt") + "/", what


def one_round(metric: Any, samples: list[dict], batch: int) -> tuple[dict, float, float]:
    """Feed ``samples`` batch by batch; the metrics, process seconds (summed) and evaluate seconds."""
    t_process = 0.0
    for i in range(0, len(samples), batch):
        part = [copy(s) | {"pred_panoptic_seg": {"sem_seg": s["pred_panoptic_seg"]["sem_seg"].clone()}}
                for s in samples[i:i + batch]]
        t = time.perf_counter()
        metric.process({}, part)
        t_process += time.perf_counter() - t
    t = time.perf_counter()
    out = metric.evaluate(len(samples))
    return out, t_process, time.perf_counter() - t


def conversion_seconds(samples: list[dict], meta: dict) -> float:
    """panbench's own share of ``process``: the sem_seg maps to COCO id maps and segments (no scoring)."""
    from panbench.integrations.mmdet import prediction_segments

    n = len(meta["classes"])
    t = time.perf_counter()
    for s in samples:
        prediction_segments(s["pred_panoptic_seg"]["sem_seg"].numpy()[0], n, n, dict(enumerate(range(n))))
    return time.perf_counter() - t


SIDES = (("CocoPanopticMetric", "mmdet", {}), ("PanbenchPanopticMetric", "panbench", {}),
         ("  keep_ground_truth=False", "panbench", {"keep_ground_truth": False}))


def bench(name: str, samples: list[dict], meta: dict, ann: str, seg: str, batch: int) -> bool:
    """Each side two rounds on the same samples; False (and no ratio) when a number differs from mmdet's."""
    from mmdet.evaluation import CocoPanopticMetric

    from panbench.integrations.mmdet import PanbenchPanopticMetric

    types = {"mmdet": CocoPanopticMetric, "panbench": PanbenchPanopticMetric}
    rows, outs = [], []
    for label, side, kw in SIDES:
        t = time.perf_counter()
        metric = types[side](ann_file=ann, seg_prefix=seg, **kw)
        build = time.perf_counter() - t
        metric.dataset_meta = meta
        r1 = one_round(metric, samples, batch)
        r2 = one_round(metric, samples, batch)
        outs.append((r1[0], r2[0]))
        rows.append((label, build, r1[1], r1[2], r2[1], r2[2]))
    theirs = outs[0]
    bad = [(label, k, r, o[k], t[k]) for (label, _, _), ours in zip(SIDES[1:], outs[1:])
           for r, (t, o) in enumerate(zip(theirs, ours), 1) for k in t if not abs(o.get(k, float("nan")) - t[k]) <= TOL]
    bad += [(label, "keys", sorted(o[0])) for (label, _, _), o in zip(SIDES[1:], outs[1:])
            if set(o[0]) != set(theirs[0])]
    print(f"\n== {name}: {len(samples)} images, batch {batch}; PQ {theirs[0]['coco_panoptic/PQ']:.6f}")
    print(f"{'metric':<26} {'build s':>8} {'r1 process s':>13} {'r1 compute s':>13} {'r1 total s':>11} "
          f"{'r2 total s':>11} {'r2/r1':>6}")
    for label, build, p1, c1, p2, c2 in rows:
        print(f"{label:<26} {build:8.2f} {p1:13.2f} {c1:13.3f} {p1 + c1:11.2f} {p2 + c2:11.2f} "
              f"{(p2 + c2) / (p1 + c1):6.2f}")
    if bad:
        print(f"NUMBERS DIFFER (no ratio printed): {bad[:5]}")
        return False
    print(f"every key equal to {TOL:g} (rounds 1 and 2)")
    mm = rows[0]
    for label, _, p1, c1, p2, c2 in rows[1:]:
        print(f"speed-up of {label.strip()}: round 1 {(mm[2] + mm[3]) / (p1 + c1):.1f}x, "
              f"round 2 {(mm[4] + mm[5]) / (p2 + c2):.1f}x")
    conv, pb = conversion_seconds(samples, meta), rows[1]
    print(f"panbench round 1 by stage: sem_seg -> id map and segments {conv:.2f} s, scoring with the ground-truth "
          f"decode {pb[2] - conv:.2f} s (round 2, decoded ground truth kept: {pb[4] - conv:.2f} s), "
          f"compute {pb[3]:.3f} s")
    return True


def header() -> None:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}"
          f"{' (+ uncommitted changes)' if dirty else ''}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, nice {os.nice(0)}, load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


def set_arguments(description: str, batch_help: str) -> argparse.ArgumentParser:
    """The options of a metric benchmark on the demo set and bench_pq.py's real set (this script's and
    bench_detectron2.py's)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("demo", "coco", "both"), default="both")
    ap.add_argument("--model", default="mask2former", help="the demo model whose outputs are scored")
    ap.add_argument("--demo-images", type=int, help="the first N demo val images (default: all 60)")
    ap.add_argument("--images", type=int, default=1000, help="images of the coco set (bench_pq.py's real set)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-pq"))
    ap.add_argument("--batch", type=int, default=1, help=batch_help)
    return ap


def main() -> int:
    a = set_arguments(__doc__, "data samples per process() call (a val loader's batch)").parse_args()
    import logging

    from mmengine.logging import MMLogger

    header()
    ok = True
    if a.set in ("demo", "both"):
        samples, meta, ann, seg = record_demo_outputs(a.model, a.demo_images)
        MMLogger.get_instance("bench_mmdet_metric", log_level="WARNING").setLevel(logging.WARNING)
        ok &= bench(f"demo set, demo-{a.model}'s outputs", samples, meta, ann, seg, a.batch)
    if a.set in ("coco", "both"):
        work = a.workdir / f"real{a.images}"
        work.mkdir(parents=True, exist_ok=True)
        samples, meta, ann, seg, what = coco_png_samples(work, a.images)
        MMLogger.get_instance("bench_mmdet_metric", log_level="WARNING").setLevel(logging.WARNING)
        ok &= bench(f"coco set: {what}", samples, meta, ann, seg, a.batch)
    print(f"load average after {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
