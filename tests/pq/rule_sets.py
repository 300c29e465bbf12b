"""The image sets that PQ's rules are checked on (tests/pq/test_rules.py, tests/pq/test_quirks.py, the EoMT fixture's
recorder scripts/record_eomt_fixture.py): a synthetic set of the cases the rules differ on, and the COCO sample with
predictions made from its ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS

from panbench.data.synth import random_image

THINGS = {c["id"] for c in CATS if c["isthing"]}
STUFFS = {c["id"] for c in CATS if not c["isthing"]}
VOID_CAT = -1  # a category neither thing nor stuff: torchmetrics maps it to its void colour


def prediction(rng: np.random.Generator, gt_ids: np.ndarray, segs: list[dict],
                cats: list[dict] = CATS) -> tuple[np.ndarray, list[dict]]:
    """The ground truth shifted, a segment dropped to VOID, one relabelled, crowd flags cleared."""
    things = {c["id"] for c in cats if c["isthing"]}
    ids = np.roll(gt_ids, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1)).copy()
    kept = []
    for k, s in enumerate(segs):
        if k == 0 and len(segs) > 2:
            ids[ids == s["id"]] = 0
            continue
        cat = s["category_id"]
        if k == 1:  # another category of the same kind
            same = [c["id"] for c in cats if c["isthing"] == (cat in things) and c["id"] != cat]
            cat = int(rng.choice(same))
        kept.append({"id": s["id"], "category_id": cat, "iscrowd": 0})
    out = []
    for s in kept:
        area = int((ids == s["id"]).sum())
        if area:
            out.append({**s, "area": area})
    return ids, out


def images() -> list[tuple[np.ndarray, list[dict], np.ndarray, list[dict]]]:
    rng = np.random.default_rng(7)
    imgs = []
    for k in range(10):
        g = random_image(rng, 48, 64, CATS, crowd_prob=0.5, void_fraction=0.05)
        segs = [dict(s) for s in g.segments_info]
        if k == 0:  # two crowd segments of one category
            things = [s for s in segs if s["category_id"] in THINGS]
            for s in things[:2]:
                s["iscrowd"], s["category_id"] = 1, things[0]["category_id"]
        p_ids, p_segs = prediction(rng, g.ids, segs)
        if k == 1 and p_segs:  # a class the ground truth of this image lacks, over mostly VOID
            p_ids[:20, :20] = 999
            p_segs.append({"id": 999, "category_id": max(THINGS), "iscrowd": 0, "area": int((p_ids == 999).sum())})
            p_segs = [{**s, "area": int((p_ids == s["id"]).sum())} for s in p_segs if (p_ids == s["id"]).any()]
        if k == 2:  # a ground-truth VOID block that a prediction covers: more than half over VOID, no FP
            gt_ids = g.ids.copy()
            gt_ids[30:40, 40:60] = 0
            segs = [{**s, "area": int((gt_ids == s["id"]).sum())} for s in segs if (gt_ids == s["id"]).any()]
            p_ids[28:40, 40:60] = 777
            p_segs = [{**s, "area": int((p_ids == s["id"]).sum())} for s in p_segs if (p_ids == s["id"]).any()]
            p_segs.append({"id": 777, "category_id": min(THINGS), "iscrowd": 0, "area": int((p_ids == 777).sum())})
            imgs.append((gt_ids, segs, p_ids, p_segs))
            continue
        if k == 3:  # a ground-truth area in the JSON larger than its pixels
            segs[-1] = {**segs[-1], "area": segs[-1]["area"] + 10}
        imgs.append((g.ids, segs, p_ids, p_segs))
    imgs.append(crowd_pair())
    empty = np.zeros((16, 16), np.uint32)
    imgs.append((empty, [], empty.copy(), []))
    return imgs


def crowd_pair() -> tuple[np.ndarray, list[dict], np.ndarray, list[dict]]:
    """Two crowd segments of one category and a prediction of it lying on both, on neither more than half of it but
    on the two together: panopticapi (the last crowd) counts it a false positive, vernier (every crowd) does not."""
    cat, stuff = min(THINGS), min(STUFFS)
    gt = np.full((20, 40), 3, np.uint32)
    gt[:, :10], gt[:, 30:] = 1, 2
    segs = [{"id": 1, "category_id": cat, "iscrowd": 1, "area": 200}, {"id": 2, "category_id": cat, "iscrowd": 1,
            "area": 200}, {"id": 3, "category_id": stuff, "iscrowd": 0, "area": 400}]
    pred = gt.copy()
    pred[pred != 3] = 0
    pred[:, 4:10], pred[:, 30:36], pred[:2, 10:30] = 5, 5, 5  # 120 pixels on the crowds, 40 beside them
    p_segs = [{"id": 3, "category_id": stuff, "iscrowd": 0, "area": int((pred == 3).sum())},
              {"id": 5, "category_id": cat, "iscrowd": 0, "area": int((pred == 5).sum())}]
    return gt, segs, pred, p_segs


def coco_images() -> tuple[list[tuple[np.ndarray, list[dict], np.ndarray, list[dict]]], list[dict]]:
    """The COCO sample's two images (COCO's own PNGs: crowd segments, VOID), each with a prediction made from it as
    :func:`prediction` makes one, and COCO's 133 categories."""
    from conftest import COCO_SAMPLE

    from panbench.pq.png import read_ids

    ann = COCO_SAMPLE / "annotations"
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    rng = np.random.default_rng(11)
    imgs = []
    for a in gt["annotations"]:
        ids = read_ids(ann / "panoptic_val2017" / a["file_name"], "gt").copy()
        imgs.append((ids, a["segments_info"], *prediction(rng, ids, a["segments_info"], gt["categories"])))
    return imgs, gt["categories"]


@pytest.fixture(params=["synthetic", "coco_sample"], name="image_set")
def image_set_fixture(request) -> tuple[str, list, list[dict]]:
    """``image_set``: the set's name, its images (ground truth and prediction) and categories: the synthetic set, and
    the COCO sample (skipped where it is not found). A test module imports it to use it."""
    if request.param == "synthetic":
        return "synthetic", images(), CATS
    request.getfixturevalue("coco_sample")
    return ("coco_sample", *coco_images())
