"""panbench's PQ equals panopticapi's pq_compute to 1e-9, with exact per-class TP/FP/FN and per-class
IoU sums and PQ/SQ/RQ to 1e-9, on the C kernels and on their numpy twins (tests/kernel_references.py, for every
table size), through the paths score and eval use: ``score_files`` (score_stream without the per-image results,
i.e. score_pair), ``score``'s composite (score_stream keeping the per-image results) and
``PanopticAccumulator.process``."""

from __future__ import annotations

import json
from pathlib import Path

import kernel_references
import numpy as np
import pytest
from conftest import panopticapi_reference
from helpers import GENERATED_CATS as CATS
from helpers import score_with_analyses, write_perturbed_sample
from kernel_references import numpy_kernels

from panbench.data.synth import PanopticImage, perturb, random_image, write_panoptic
from panbench.pq import batch, evaluator
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import METRIC_KEYS, CategoryTable
from panbench.pq.score import load_pairs, read_pair, read_truth, score_files


def assert_parity(tmp_path: Path, gt: list[tuple[int, PanopticImage]], pred: list[tuple[int, PanopticImage]],
                  cats=CATS) -> dict:
    gt_json, gt_dir = write_panoptic(tmp_path, "gt", gt, cats)
    pred_json, pred_dir = write_panoptic(tmp_path, "pred", pred, cats)
    return assert_parity_files(gt_json, gt_dir, pred_json, pred_dir)


def process_images(gt_json, gt_dir, pred_json, pred_dir) -> tuple[dict, dict[str, float]]:
    """The metrics and per-category IoU sums (the fixed-point sums, as float) of eval's evaluator, fed one
    image at a time through :meth:`PanopticAccumulator.process`."""
    cats, pairs = load_pairs(read_truth(gt_json), pred_json)
    ev = PanopticAccumulator(cats)
    for pair in pairs:
        ev.add(score_pair(ev.categories, *read_pair(Path(gt_dir), Path(pred_dir), pair)))
    return ev.evaluate(), {str(cid): float(v) for cid, v in zip(cats.ids, ev.stats.iou_sum)}


def assert_parity_files(gt_json, gt_dir, pred_json, pred_dir) -> dict:
    ours = score_files(gt_json, gt_dir, pred_json, pred_dir)
    ref = panopticapi_reference(gt_json, gt_dir, pred_json, pred_dir)
    processed, iou = process_images(gt_json, gt_dir, pred_json, pred_dir)
    with_analyses = score_with_analyses(gt_json, gt_dir, pred_json, pred_dir)[0]
    assert json.dumps(processed, sort_keys=True) == json.dumps(ours, sort_keys=True)  # bit for bit
    assert json.dumps(with_analyses, sort_keys=True) == json.dumps(ours, sort_keys=True)
    for k in METRIC_KEYS:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k
    for cid, r in ref["per_class"].items():
        o = ours["per_class"][cid]
        assert (o["TP"], o["FP"], o["FN"]) == (r["TP"], r["FP"], r["FN"]), cid
        assert iou[cid] == pytest.approx(r["IOU"], abs=1e-9), cid
        for k in ("PQ", "SQ", "RQ"):
            assert o[k] == pytest.approx(r[k], abs=1e-9), (cid, k)
    return ours


def test_coco_sample_against_itself(coco_sample: Path, tmp_path: Path) -> None:
    a = coco_sample / "annotations"
    ours = assert_parity_files(a / "panoptic_val2017.json", a / "panoptic_val2017",
                               a / "panoptic_val2017.json", a / "panoptic_val2017")
    assert ours["PQ"] == 100.0 and ours["n_images"] == 2


@pytest.mark.parametrize("seed", range(6))
def test_coco_sample_against_perturbed_copies(coco_sample: Path, tmp_path: Path, seed: int) -> None:
    a = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(a, tmp_path, seed)
    ours = assert_parity_files(a / "panoptic_val2017.json", a / "panoptic_val2017", pred_json, pred_dir)
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


def _tiles(rng: np.random.Generator, offset: int, base: int, size: int = 96, tile: int = 4,
           flip: float = 0.0, cats=CATS) -> tuple[PanopticImage, np.ndarray]:
    """An image of tile x tile squares, shifted ``offset`` pixels to the left: one segment each."""
    y, x = np.mgrid[:size, :size]
    row, col = y // tile, (x + offset) // tile
    n_cols = int(col.max()) + 1
    ids = (base + row * n_cols + col).astype(np.uint32)
    seg_ids, counts = np.unique(ids, return_counts=True)
    tile_cat = np.array([cats[int((r + c) % len(cats))]["id"] for r, c in zip(*np.divmod(seg_ids - base, n_cols))])
    changed = rng.random(len(seg_ids)) < flip
    tile_cat[changed] = [cats[int(k)]["id"] for k in rng.integers(0, len(cats), int(changed.sum()))]
    info = [{"id": int(i), "category_id": int(c), "area": int(n), "iscrowd": 0}
            for i, c, n in zip(seg_ids, tile_cat, counts)]
    return PanopticImage(ids, info), seg_ids


def test_tables_above_65534_cells_numpy_and_c_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """576 ground-truth by 600 predicted segments: a 578 x 601 table, past the uint16 pair index of
    the numpy twin's fast branch, so it takes the wide one (intp pair index).  Both paths (the pixel
    pass and the match, each in C and in the numpy twins of tests/kernel_references.py) equal panopticapi, and
    each other image by image."""
    rng = np.random.default_rng(7)
    gt, gt_ids = _tiles(rng, 0, 1000)
    pred, pred_ids = _tiles(rng, 1, 200000, flip=0.3)
    gt.ids[:3] = 0  # some VOID
    for s in gt.segments_info:
        s["area"] = int((gt.ids == s["id"]).sum())
    gt.segments_info = [s for s in gt.segments_info if s["area"]]
    for s in gt.segments_info[::37]:
        s["iscrowd"] = 1
    assert (len(gt.segments_info) + 2) * (len(pred.segments_info) + 1) > 65534
    steps = []
    real = kernel_references.intersections

    def spy(*a, **kw):
        steps.append(kw["gt_step"])
        return real(*a, **kw)

    ours = {}
    for path in ("native", "numpy"):
        if path == "numpy":
            numpy_kernels(monkeypatch)
            monkeypatch.setattr(batch, "available", lambda: False)  # the per-image path, where the twins run
            monkeypatch.setattr(kernel_references, "intersections", spy)  # what the twin pair_counts calls
        ours[path] = assert_parity(tmp_path / path, [(1, gt)], [(1, pred)])
        cats = CategoryTable.from_coco(CATS)
        ours[path + " image"] = evaluator.score_pair(cats, gt.ids, gt.segments_info, pred.ids,
                                                     pred.segments_info, "image 1").stats
    assert steps and all(s == 1 for s in steps)  # the wide branch ran
    assert 0 < ours["numpy"]["PQ"] < 100 and ours["numpy"]["per_class"][str(CATS[0]["id"])]["TP"] > 0
    assert json.dumps(ours["native"], sort_keys=True) == json.dumps(ours["numpy"], sort_keys=True)
    a, b = ours["native image"], ours["numpy image"]
    for f in ("tp_cats", "tp_ious", "fn_cats", "fp_cats", "sem_gt", "sem_pred", "sem_px"):
        assert np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True), f
