"""``PanbenchPanopticMetric`` (panbench.integrations.mmdet) behaves as MMDetection 3.3's ``CocoPanopticMetric``.

The first cases are MMDetection's own unit-test cases of ``CocoPanopticMetric``, ported to run against
``PanbenchPanopticMetric`` (and, as a check of the port, against ``CocoPanopticMetric`` itself): from
open-mmlab/mmdetection v3.3.0, tests/test_evaluation/test_metrics/test_coco_panoptic_metric.py, Copyright (c)
OpenMMLab, Apache License 2.0.  Their data (one 80x60 image: two persons, a dog and a wall; a prediction with a
shifted person, a false positive and a dog labelled as a cat-free class mapping) and expected numbers are
MMDetection's.  mmdet's own case ``test_init`` (a RuntimeError without panopticapi) is left out: panbench's
metric needs no panopticapi, but for format_only, which is mmdet's own code.
"""

from __future__ import annotations

import json
import pickle
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mmdet")
pytest.importorskip("panopticapi")

import mmcv  # noqa: E402
from mmdet.evaluation import INSTANCE_OFFSET, CocoPanopticMetric  # noqa: E402

from panbench.errors import InputError  # noqa: E402
from panbench.integrations.mmdet import PanbenchPanopticMetric, prediction_segments  # noqa: E402

META = {"classes": ("person", "dog", "wall"), "thing_classes": ("person", "dog"), "stuff_classes": ("wall",)}
TARGET = {  # MMDetection's expected numbers for its case
    "coco_panoptic/PQ": 67.86874803219071, "coco_panoptic/SQ": 80.89770126158936,
    "coco_panoptic/RQ": 83.33333333333334, "coco_panoptic/PQ_th": 60.45252075318891,
    "coco_panoptic/SQ_th": 79.9959505972869, "coco_panoptic/RQ_th": 75.0,
    "coco_panoptic/PQ_st": 82.70120259019427, "coco_panoptic/SQ_st": 82.70120259019427,
    "coco_panoptic/RQ_st": 100.0,
}
METRICS = [PanbenchPanopticMetric, CocoPanopticMetric]


def _box_map(shape: tuple[int, int], fill: int, boxes: list[list[int]], values: list[int]) -> np.ndarray:
    out = np.full(shape, fill, dtype=np.int64)
    for (x, y, w, h), v in zip(boxes, values):
        out[y:y + h, x:x + w] = v
    return out


def write_ground_truth(ann_file: Path, seg_dir: Path) -> None:
    """mmdet's case: 4 categories (person, cat, dog, wall), one image, its PNG in COCO's RGB encoding."""
    cats = [{"id": i, "name": n, "supercategory": n, "isthing": int(n != "wall")}
            for i, n in enumerate(("person", "cat", "dog", "wall"))]
    segs = [{"id": 1, "category_id": 0, "area": 400, "bbox": [10, 10, 10, 40], "iscrowd": 0},
            {"id": 2, "category_id": 0, "area": 400, "bbox": [30, 10, 10, 40], "iscrowd": 0},
            {"id": 3, "category_id": 2, "iscrowd": 0, "bbox": [50, 10, 10, 5], "area": 50},
            {"id": 4, "category_id": 3, "iscrowd": 0, "bbox": [0, 0, 80, 60], "area": 3950}]
    ann_file.write_text(json.dumps({
        "images": [{"id": 0, "width": 80, "height": 60, "file_name": "fake_name1.jpg"}],
        "annotations": [{"segments_info": segs, "file_name": "fake_name1.png", "image_id": 0}],
        "categories": cats}))
    gt = _box_map((60, 80), 4, [[10, 10, 10, 40], [30, 10, 10, 40], [50, 10, 10, 5]], [1, 2, 3])
    rgb = np.stack([gt % 256, gt // 256 % 256, gt // 65536], axis=-1).astype(np.uint8)
    mmcv.imwrite(rgb[:, :, ::-1], str(seg_dir / "fake_name1.png"))


def data_samples(seg_dir: Path) -> list[dict]:
    """mmdet's case: background label 2 (wall, a TP of IoU 0.827), a person shifted by a pixel (TP, IoU 0.78),
    a false-positive person, label 1 (dog) on the dog (TP, IoU 0.818)."""
    pred = _box_map((60, 80), 2, [[11, 11, 10, 40], [38, 10, 10, 40], [51, 10, 10, 5]],
                    [(i + 1) * INSTANCE_OFFSET + label for i, label in enumerate((0, 0, 1))])
    return [{"img_id": 0, "ori_shape": (60, 80), "img_path": "xxx/fake_name1.jpg",
             "segments_info": [{"id": 1, "category": 0, "is_thing": 1}, {"id": 2, "category": 0, "is_thing": 1},
                               {"id": 3, "category": 1, "is_thing": 1}, {"id": 4, "category": 2, "is_thing": 0}],
             "seg_map_path": str(seg_dir / "fake_name1.png"),
             "pred_panoptic_seg": {"sem_seg": torch.from_numpy(pred).unsqueeze(0)}}]


@pytest.fixture
def case(tmp_path: Path) -> dict:
    seg_dir = tmp_path / "gt_seg"
    seg_dir.mkdir()
    write_ground_truth(tmp_path / "gt.json", seg_dir)
    return {"tmp": tmp_path, "ann_file": str(tmp_path / "gt.json"), "seg_dir": str(seg_dir),
            "samples": data_samples(seg_dir)}


def run(metric, samples: list[dict], size: int = 1) -> dict:
    metric.dataset_meta = META
    metric.process({}, deepcopy(samples))
    return metric.evaluate(size=size)


def assert_target(got: dict, want: dict = TARGET) -> None:
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k


# ---- MMDetection's cases (test_evaluate_without_json, test_evaluate_with_json, test_format_only) ----

@pytest.mark.parametrize("metric_type", METRICS)
def test_mmdet_case_without_json_scores_the_data_samples_ground_truth(case, metric_type) -> None:
    kw = dict(ann_file=None, seg_prefix=case["seg_dir"], classwise=False, nproc=1)
    assert_target(run(metric_type(outfile_prefix=None, **kw), case["samples"]))
    assert_target(run(metric_type(outfile_prefix=f"{case['tmp']}/test", **kw), case["samples"]))


@pytest.mark.parametrize("metric_type", METRICS)
def test_mmdet_case_with_json_scores_against_the_annotation_file(case, metric_type) -> None:
    kw = dict(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], nproc=1)
    assert_target(run(metric_type(classwise=False, outfile_prefix=None, **kw), case["samples"]))
    assert_target(run(metric_type(classwise=True, outfile_prefix=None, **kw), case["samples"]))
    assert_target(run(metric_type(classwise=False, outfile_prefix=f"{case['tmp']}/test1", **kw),
                      case["samples"]))


def test_mmdet_case_format_only_writes_mmdets_result_files_and_no_score(case) -> None:
    kw = dict(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], classwise=False, nproc=1, format_only=True)
    # mmdet asserts; panbench says what to set, in one line
    with pytest.raises(InputError, match=r"^PanbenchPanopticMetric: format_only=True .* set outfile_prefix"):
        PanbenchPanopticMetric(outfile_prefix=None, **kw)
    assert run(PanbenchPanopticMetric(outfile_prefix=f"{case['tmp']}/test", **kw), case["samples"]) == {}
    assert (case["tmp"] / "test.panoptic").is_dir()
    assert (case["tmp"] / "test.panoptic.json").is_file()
