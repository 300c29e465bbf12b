"""panbench's PQ equals panopticapi's pq_compute to 1e-9, with exact per-class TP/FP/FN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import panopticapi_reference

from panbench.data.synth import PanopticImage, coco_like_categories, perturb, random_image, write_panoptic
from panbench.pq.coco_format import decode_png, rgb2id
from panbench.pq.matching import METRIC_KEYS
from panbench.pq.score import score_files

CATS = coco_like_categories(8, 6)


def assert_parity(tmp_path: Path, gt: list[tuple[int, PanopticImage]], pred: list[tuple[int, PanopticImage]],
                  cats=CATS) -> dict:
    gt_json, gt_dir = write_panoptic(tmp_path, "gt", gt, cats)
    pred_json, pred_dir = write_panoptic(tmp_path, "pred", pred, cats)
    return assert_parity_files(gt_json, gt_dir, pred_json, pred_dir)


def assert_parity_files(gt_json, gt_dir, pred_json, pred_dir) -> dict:
    ours = score_files(gt_json, gt_dir, pred_json, pred_dir)
    ref = panopticapi_reference(gt_json, gt_dir, pred_json, pred_dir)
    for k in METRIC_KEYS:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k
    for cid, r in ref["per_class"].items():
        o = ours["per_class"][cid]
        assert (o["TP"], o["FP"], o["FN"]) == (r["TP"], r["FP"], r["FN"]), cid
    return ours


def test_coco_sample_against_itself(coco_sample: Path, tmp_path: Path) -> None:
    a = coco_sample / "annotations"
    ours = assert_parity_files(a / "panoptic_val2017.json", a / "panoptic_val2017",
                               a / "panoptic_val2017.json", a / "panoptic_val2017")
    assert ours["PQ"] == 100.0 and ours["n_images"] == 2


@pytest.mark.parametrize("seed", range(6))
def test_coco_sample_against_perturbed_copies(coco_sample: Path, tmp_path: Path, seed: int) -> None:
    a = coco_sample / "annotations"
    gt = json.loads((a / "panoptic_val2017.json").read_text())
    rng = np.random.default_rng(seed)
    anns = []
    (tmp_path / "pred").mkdir()
    from panbench.data.synth import write_png

    for ann in gt["annotations"]:
        ids = rgb2id(decode_png(a / "panoptic_val2017" / ann["file_name"], "test"))
        p = perturb(rng, PanopticImage(ids, ann["segments_info"]), gt["categories"])
        write_png(tmp_path / "pred" / ann["file_name"], p.ids)
        anns.append({"image_id": ann["image_id"], "file_name": ann["file_name"], "segments_info": p.segments_info})
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": anns}))
    ours = assert_parity_files(a / "panoptic_val2017.json", a / "panoptic_val2017", tmp_path / "pred.json",
                               tmp_path / "pred")
    assert 0 < ours["PQ"] < 100


def _img(rows: list[list[int]], segs: list[tuple[int, int, int]]) -> PanopticImage:
    ids = np.array(rows, np.uint32)
    info = [{"id": i, "category_id": c, "iscrowd": crowd, "area": int((ids == i).sum())} for i, c, crowd in segs]
    return PanopticImage(ids, info)


THING, THING2, STUFF = CATS[0]["id"], CATS[2]["id"], CATS[1]["id"]


def test_void_pixels_are_left_out_of_the_union(tmp_path: Path) -> None:
    gt = _img([[0, 0, 5, 5], [0, 0, 5, 5], [7, 7, 7, 7]], [(5, THING, 0), (7, STUFF, 0)])
    # prediction covers GT segment 5 plus the void region: IoU > 0.5 only because void is left out
    pred = _img([[9, 9, 9, 9], [9, 9, 9, 9], [8, 8, 8, 8]], [(9, THING, 0), (8, STUFF, 0)])
    ours = assert_parity(tmp_path, [(1, gt)], [(1, pred)])
    assert ours["per_class"][str(THING)]["TP"] == 1


def test_crowd_regions_absorb_false_positives(tmp_path: Path) -> None:
    gt = _img([[3, 3, 3, 3], [3, 3, 3, 3], [7, 7, 7, 7]], [(3, THING, 1), (7, STUFF, 0)])
    pred = _img([[4, 4, 0, 0], [4, 4, 0, 0], [8, 8, 8, 8]], [(4, THING, 0), (8, STUFF, 0)])
    ours = assert_parity(tmp_path, [(1, gt)], [(1, pred)])
    assert ours["per_class"][str(THING)]["FP"] == 0 and ours["per_class"][str(THING)]["FN"] == 0


def test_empty_prediction(tmp_path: Path) -> None:
    gt = _img([[1, 1, 2, 2], [1, 1, 2, 2]], [(1, THING, 0), (2, STUFF, 0)])
    pred = _img([[0, 0, 0, 0], [0, 0, 0, 0]], [])
    ours = assert_parity(tmp_path, [(1, gt)], [(1, pred)])
    assert ours["PQ"] == 0.0


def test_empty_ground_truth(tmp_path: Path) -> None:
    gt = _img([[0, 0, 0, 0], [0, 0, 0, 0]], [])
    pred = _img([[1, 1, 2, 2], [1, 1, 2, 2]], [(1, THING, 0), (2, STUFF, 0)])
    gt2 = _img([[1, 1, 2, 2], [1, 1, 2, 2]], [(1, THING, 0), (2, STUFF, 0)])
    assert_parity(tmp_path, [(1, gt), (2, gt2)], [(1, pred), (2, pred)])


def test_category_only_in_prediction(tmp_path: Path) -> None:
    gt = _img([[1, 1, 2, 2], [1, 1, 2, 2]], [(1, THING, 0), (2, STUFF, 0)])
    pred = _img([[1, 1, 2, 2], [1, 1, 3, 3]], [(1, THING2, 0), (2, STUFF, 0), (3, CATS[4]["id"], 0)])
    ours = assert_parity(tmp_path, [(1, gt)], [(1, pred)])
    assert ours["per_class"][str(THING2)]["FP"] == 1


def test_touching_instances_of_one_class(tmp_path: Path) -> None:
    gt = _img([[1, 1, 2, 2, 2], [1, 1, 2, 2, 2]], [(1, THING, 0), (2, THING, 0)])
    pred = _img([[5, 5, 5, 6, 6], [5, 5, 5, 6, 6]], [(5, THING, 0), (6, THING, 0)])
    ours = assert_parity(tmp_path, [(1, gt)], [(1, pred)])
    assert ours["per_class"][str(THING)]["TP"] == 2


def test_images_of_several_sizes_and_large_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gt, pred = [], []
    for k, (h, w) in enumerate([(37, 53), (64, 48), (120, 90), (17, 200)]):
        g = random_image(rng, h, w, CATS)
        big = 256**3 - 1 - k  # the largest 24-bit ids
        g.ids[g.ids == g.segments_info[0]["id"]] = big
        g.segments_info[0]["id"] = big
        gt.append((k + 1, g))
        pred.append((k + 1, perturb(rng, g, CATS)))
    assert_parity(tmp_path, gt, pred)


@pytest.mark.parametrize("seed", range(4))
def test_generated_coco_like_sets(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    gt = [(i, random_image(rng, int(rng.integers(60, 160)), int(rng.integers(60, 160)), CATS)) for i in range(12)]
    pred = [(i, perturb(rng, g, CATS)) for i, g in gt]
    assert_parity(tmp_path, gt, pred)
