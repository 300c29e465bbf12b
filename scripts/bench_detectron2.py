#!/usr/bin/env python
"""PQ inside detectron2's evaluation: detectron2's ``COCOPanopticEvaluator`` vs panbench's
``PanbenchPanopticEvaluator`` (panbench.integrations.detectron2) on the same model outputs.

The predictions are made once, then both evaluators are fed the same ones as ``inference_on_dataset`` feeds an
evaluator (``reset``, ``process`` one batch at a time, ``evaluate``); what is timed is the evaluator's own time:
building it, ``process`` summed over the batches, and ``evaluate`` (detectron2's gather, and for
``COCOPanopticEvaluator`` its PNGs written and panopticapi's ``pq_compute``, which runs a process per core).  Each
evaluator gets its own copy of a batch's outputs, made outside the timer (``COCOPanopticEvaluator`` changes
them in place).  An output is what a detectron2 panoptic model returns: ``panoptic_seg`` = (int32 id map,
segments_info with contiguous category ids and ``isthing``), or with ``--form labels`` (category * label_divisor
+ instance with -1 VOID, None); the dataset is registered in ``MetadataCatalog`` as detectron2's builtin COCO
panoptic is (contiguous id = the index in the annotation file's categories, label_divisor 1000).

Two sets, those of scripts/bench_mmdet_metric.py (its helpers, imported):

- demo: a demo model's outputs (``Runner.test`` of configs/demo/<model>.py with its committed checkpoint) on the
  demo val set (60 images about 200x150), each turned into a COCO id map and segments as mmdet's metric turns it;
- coco: scripts/bench_pq.py's real set (scripts/pq_bench_data.py: COCO's own ground-truth PNGs of the shared
  2-image val2017 sample replicated to ``--images``, each with a perturbed prediction PNG).

Each evaluator runs ``--repeat`` rounds (default 3), interleaved with the other's; its round of median total time
is printed.  Every one of the nine numbers, in every round, must equal the other evaluator's to 1e-9 before any
ratio is printed (exit 1 otherwise).  Printed beside the numbers: the date, the commit, the machine and its load
before and after.
detectron2 is not on PyPI: without an importable one, its source is unpacked from ../shared/vendor.

    .venv-vision/bin/python scripts/bench_detectron2.py [--set demo|coco|both] [--images 1000] [--form segments]
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_mmdet_metric import header, set_arguments  # noqa: E402

TOL = 1e-9
VENDOR = ROOT.parent / "shared" / "vendor" / "detectron2-02b5c4e.tar.gz"
Record = tuple[Any, np.ndarray, list[dict[str, Any]]]  # image id, COCO id map, segments (the dataset's ids)


def ensure_detectron2(folder: Path = Path("/tmp/panbench-detectron2-02b5c4e")) -> None:
    """detectron2 importable: as installed, or unpacked from ../shared/vendor into ``folder``."""
    try:
        import detectron2  # noqa: F401
        return
    except ImportError:
        pass
    if not any(folder.glob("*/detectron2")):
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(VENDOR) as tar:
            tar.extractall(folder, filter="data")
    sys.path.insert(0, str(next(folder.glob("*/detectron2")).parent))


def demo_records(model: str, limit: int | None, work: Path) -> tuple[list[Record], str, str, str]:
    """A demo model's outputs on the demo val set as COCO id maps and segments; the ground truth's JSON and
    PNG folder."""
    from bench_mmdet_metric import record_demo_outputs

    from panbench.integrations.mmdet import prediction_segments

    samples, meta, ann, seg = record_demo_outputs(model, limit)
    cats = json.loads(Path(ann).read_text())["categories"]
    by_name = {c["name"]: c["id"] for c in cats}
    label2cat = {k: by_name[n] for k, n in enumerate(meta["classes"])}
    n = len(meta["classes"])
    records = []
    for s in samples:
        ids, segs = prediction_segments(s["pred_panoptic_seg"]["sem_seg"].numpy()[0], n, n, label2cat)
        records.append((s["img_id"], np.asarray(ids, np.int64), segs))
    if limit:  # the ground truth of the images predicted (COCOPanopticEvaluator scores every image of its JSON)
        ann = _subset(Path(ann), {r[0] for r in records}, work)
    return records, ann, seg.rstrip("/"), f"demo-{model}'s outputs on the demo val set"


def _subset(gt_json: Path, ids: set, work: Path) -> str:
    gt = json.loads(gt_json.read_text())
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in ids]
    gt["images"] = [i for i in gt["images"] if i["id"] in ids]
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"bench_detectron2_gt_{len(ids)}.json"
    out.write_text(json.dumps(gt))
    return str(out)


def coco_records(work: Path, n: int, sample: Path | None = None) -> tuple[list[Record], str, str, str]:
    """bench_pq.py's real set: its prediction PNGs as COCO id maps and segments; the ground truth's JSON and
    PNG folder."""
    from pq_bench_data import SAMPLE, _read_rgb_ids, make_real_set

    what = make_real_set(work, n, sample or SAMPLE)
    pred = json.loads((work / "pred.json").read_text())
    records = [(a["image_id"], _read_rgb_ids(work / "pred" / a["file_name"]).astype(np.int64), a["segments_info"])
               for a in pred["annotations"]]
    return records, str(work / "gt.json"), str(work / "gt"), what


def register(gt_json: str, gt_dir: str) -> str:
    """The ground truth as a detectron2 dataset of MetadataCatalog, as its builtin COCO panoptic registers one."""
    from detectron2.data import MetadataCatalog

    cats = json.loads(Path(gt_json).read_text())["categories"]
    name = f"bench_detectron2_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(name).set(
        thing_dataset_id_to_contiguous_id={c["id"]: k for k, c in enumerate(cats) if c["isthing"]},
        stuff_dataset_id_to_contiguous_id={c["id"]: k for k, c in enumerate(cats) if not c["isthing"]},
        panoptic_json=gt_json, panoptic_root=gt_dir, label_divisor=1000)
    return name


def model_outputs(records: list[Record], dataset: str, form: str) -> list[tuple[dict, dict]]:
    """(input, output) pairs as a detectron2 panoptic model returns them (module docstring)."""
    import torch
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(dataset)
    things, stuff = meta.thing_dataset_id_to_contiguous_id, meta.stuff_dataset_id_to_contiguous_id
    pairs: list[tuple[dict, dict]] = []
    for image_id, ids, segs in records:
        inp = {"image_id": image_id, "file_name": f"images/{image_id}.jpg"}
        cont = [things.get(s["category_id"], stuff.get(s["category_id"])) for s in segs]
        if form == "segments":
            info = [{"id": s["id"], "category_id": c, "isthing": s["category_id"] in things}
                    for s, c in zip(segs, cont)]
            pairs.append((inp, {"panoptic_seg": (torch.from_numpy(ids.astype(np.int32)), info)}))
            continue
        lut, seen = {0: -1}, dict[int, int]()
        for s, c in zip(segs, cont):
            seen[c] = seen.get(c, -1) + 1
            lut[s["id"]] = c * meta.label_divisor + seen[c]
        u, inv = np.unique(ids, return_inverse=True)
        pan = np.array([lut[int(v)] for v in u], np.int32)[inv].reshape(ids.shape)
        pairs.append((inp, {"panoptic_seg": (torch.from_numpy(pan), None)}))
    return pairs


def one_round(make: Any, pairs: list[tuple[dict, dict]], batch: int) -> tuple[dict, float, float, float]:
    """Build an evaluator, feed it ``pairs`` batch by batch, evaluate: its result, build, process and evaluate
    seconds."""
    t = time.perf_counter()
    evaluator = make()
    evaluator.reset()
    build, t_process = time.perf_counter() - t, 0.0
    for i in range(0, len(pairs), batch):
        part = pairs[i:i + batch]
        outs = [{"panoptic_seg": (o["panoptic_seg"][0].clone(), copy.deepcopy(o["panoptic_seg"][1]))}
                for _, o in part]
        t = time.perf_counter()
        evaluator.process([p[0] for p in part], outs)
        t_process += time.perf_counter() - t
    t = time.perf_counter()
    out = evaluator.evaluate()
    return out, build, t_process, time.perf_counter() - t


def bench(name: str, records: list[Record], gt_json: str, gt_dir: str, batch: int = 1, form: str = "segments",
          repeat: int = 3) -> bool:
    """Both evaluators on the same outputs, ``repeat`` rounds each, interleaved (detectron2's, panbench's,
    detectron2's, ...); each evaluator's row is its round of median total time.  False (and no ratio) when a
    number of any round differs."""
    from detectron2.evaluation import COCOPanopticEvaluator

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset = register(gt_json, gt_dir)
    pairs = model_outputs(records, dataset, form)
    evaluators = (("COCOPanopticEvaluator", COCOPanopticEvaluator), ("PanbenchPanopticEvaluator",
                                                                     PanbenchPanopticEvaluator))
    rounds: dict[str, list[tuple]] = {label: [] for label, _ in evaluators}
    for _ in range(repeat):
        for label, cls in evaluators:
            rounds[label].append(one_round(lambda cls=cls: cls(dataset), pairs, batch))
    results = {label: [r[0] for r in rs] for label, rs in rounds.items()}
    rows = [(label, *sorted(rs, key=lambda r: sum(r[1:]))[len(rs) // 2]) for label, rs in rounds.items()]
    theirs, ours = rows[0][1]["panoptic_seg"], rows[1][1]["panoptic_seg"]
    bad = [(k, ours.get(k), v) for k, v in theirs.items() if not abs(ours.get(k, float("nan")) - v) <= TOL]
    if list(ours) != list(theirs):
        bad.append(("keys", list(ours), list(theirs)))
    bad += [("rounds", label) for label, rs in results.items() if any(r != rs[0] for r in rs)]
    print(f"\n== {name}: {len(pairs)} images, batch {batch}, panoptic_seg with "
          f"{'segments_info' if form == 'segments' else 'segments_info None (label_divisor)'}; PQ {theirs['PQ']:.6f}"
          f"; the median of {repeat} interleaved rounds")
    print(f"{'evaluator':<26} {'build s':>8} {'process s':>10} {'evaluate s':>11} {'total s':>8}")
    for label, _, build, p, e in rows:
        print(f"{label:<26} {build:8.3f} {p:10.2f} {e:11.3f} {build + p + e:8.2f}")
    if bad:
        print(f"NUMBERS DIFFER (no ratio printed): {bad[:5]}")
        return False
    print(f"every number equal to {TOL:g}: {', '.join(f'{k} {v:.6f}' for k, v in theirs.items())}")
    total = [sum(r[2:]) for r in rows]
    print(f"speed-up of PanbenchPanopticEvaluator: {total[0] / total[1]:.1f}x")
    return True


def main() -> int:
    ap = set_arguments(__doc__, "outputs per process() call (a test loader's batch)")
    ap.add_argument("--form", choices=("segments", "labels", "both"), default="segments",
                    help="panoptic_seg with segments_info, or None with category * label_divisor + instance")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of each evaluator, interleaved; the median is shown")
    a = ap.parse_args()
    ensure_detectron2()
    header()
    forms = ("segments", "labels") if a.form == "both" else (a.form,)
    sets = []
    if a.set in ("demo", "both"):
        sets.append(demo_records(a.model, a.demo_images, a.workdir))
    if a.set in ("coco", "both"):
        work = a.workdir / f"real{a.images}"
        work.mkdir(parents=True, exist_ok=True)
        sets.append(coco_records(work, a.images))
    logging.getLogger("detectron2").setLevel(logging.WARNING)
    ok = True
    for records, gt_json, gt_dir, what in sets:
        for form in forms:
            ok &= bench(what, records, gt_json, gt_dir, a.batch, form, a.repeat)
    print(f"load average after {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
