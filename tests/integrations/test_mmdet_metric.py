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


# ---- panbench's metric beyond mmdet's cases ----

def test_classwise_tables_print_as_mmdets(case, monkeypatch) -> None:
    from mmdet.evaluation.metrics import coco_panoptic_metric

    printed: list[str] = []
    monkeypatch.setattr(coco_panoptic_metric, "print_log", lambda msg, logger=None: printed.append(msg))
    kw = dict(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], classwise=True)
    run(CocoPanopticMetric(**kw), case["samples"])
    theirs, printed[:] = list(printed), []
    run(PanbenchPanopticMetric(**kw), case["samples"])
    assert len(theirs) == 2 and "Classwise" in theirs[1] and printed == theirs


def test_no_png_is_written_and_the_shared_prediction_stays_as_it_was(case, monkeypatch) -> None:
    samples = data_samples(Path(case["seg_dir"]))
    samples[0]["pred_panoptic_seg"]["sem_seg"][0, 40:, :20] = len(META["classes"])  # void pixels
    before = samples[0]["pred_panoptic_seg"]["sem_seg"].clone()
    want = run(CocoPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"]), deepcopy(samples))

    def refuse(*a, **k):
        raise AssertionError("a PNG was written")

    monkeypatch.setattr(mmcv, "imwrite", refuse)
    metric = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"])
    metric.dataset_meta = META
    metric.process({}, samples)
    assert_target(metric.evaluate(size=1), want)
    assert want != TARGET and torch.equal(samples[0]["pred_panoptic_seg"]["sem_seg"], before)


def two_images(case: dict) -> list[list[dict]]:
    """mmdet's image as image 0 and, as image 1, the same ground truth with the dog missed; one list per rank."""
    second = deepcopy(case["samples"])
    second[0]["img_id"] = 1
    second[0]["pred_panoptic_seg"]["sem_seg"][0, 10:15, 51:61] = 2  # the dog missed: another image's numbers
    gt = json.loads(Path(case["ann_file"]).read_text())
    gt["images"].append({**gt["images"][0], "id": 1})
    gt["annotations"].append({**gt["annotations"][0], "image_id": 1})
    Path(case["ann_file"]).write_text(json.dumps(gt))
    return [case["samples"], second]


def test_the_results_of_two_ranks_add_up_as_one_metric(case) -> None:
    """What mmengine's collect_results does with the parts of two ranks: pickled results, concatenated."""
    parts = two_images(case)
    ranks = [PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"]) for _ in range(2)]
    for metric, samples in zip(ranks, parts):
        metric.dataset_meta = META
        metric.process({}, deepcopy(samples))
    collected = pickle.loads(pickle.dumps(ranks[0].results + ranks[1].results))
    both = ranks[0].compute_metrics(collected)
    alone = CocoPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"])
    want = run(alone, parts[0] + parts[1], size=2)
    assert_target({f"coco_panoptic/{k}": v for k, v in both.items()}, want)
    assert want != TARGET


def _rank(rank: int, port: int, case: dict, samples: list[dict], out: Path, evaluators: tuple = ()) -> None:
    import os

    import torch.distributed as dist
    from helpers import close_ranks, end_rank

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        metric = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], evaluators=evaluators)
        got = run(metric, samples, size=2)
        (out / f"rank{rank}.json").write_text(json.dumps({"metrics": got, "n_results": len(metric.results)}))
    finally:
        close_ranks()
    end_rank()


def test_two_gloo_ranks_give_one_metric_through_mmengines_collect(case) -> None:
    """Two real torch.distributed ranks (gloo, spawned processes), one image each: mmengine's evaluate collects the
    images' results on rank 0, which computes mmdet's numbers for both images and broadcasts them."""
    from helpers import free_port, spawn_ranks

    parts = two_images(case)
    want = run(CocoPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"]), parts[0] + parts[1], 2)
    port = free_port()
    assert spawn_ranks(_rank, [(r, port, case, parts[r], case["tmp"]) for r in range(2)]) == [0, 0]
    for r in range(2):
        got = json.loads((case["tmp"] / f"rank{r}.json").read_text())
        assert got["n_results"] == 0  # cleared after evaluate, on every rank
        assert_target(got["metrics"], want)


IMAGE_COUNT = f"{Path(__file__).parents[2] / 'examples' / 'evaluators' / 'image_count.py'}:ImageCount"


@pytest.mark.parametrize("ann_file", [True, False], ids=["ann_file", "dataset_meta"])
def test_a_user_evaluator_gets_each_image_once_and_its_fields_come_back_under_evaluators(case, ann_file) -> None:
    """``evaluators=[...]``: each sample's part kept as its result (mmengine's collect keeps one per sample), two
    ranks' results added as one; the nine numbers are those without it."""
    parts = two_images(case)
    kwargs = {"ann_file": case["ann_file"], "seg_prefix": case["seg_dir"]} if ann_file else {}
    ranks = [PanbenchPanopticMetric(**kwargs, evaluators=[IMAGE_COUNT]) for _ in range(2)]
    for metric, samples in zip(ranks, parts):
        metric.dataset_meta = META
        metric.process({}, deepcopy(samples))
    got = ranks[0].compute_metrics(pickle.loads(pickle.dumps(ranks[0].results + ranks[1].results)))
    assert got.pop("evaluators") == {"ImageCount": {"images": 2, "gt_segments": 8}}
    want = PanbenchPanopticMetric(**kwargs)
    want.dataset_meta = META
    want.process({}, deepcopy(parts[0] + parts[1]))
    assert got == want.compute_metrics(want.results)


@pytest.mark.system  # two spawned ranks (seconds); the merge of two ranks' results is the test above, in make test
def test_two_gloo_ranks_give_a_user_evaluator_every_image_through_mmengines_collect(case) -> None:
    from helpers import free_port, spawn_ranks

    parts = two_images(case)
    port = free_port()
    args = [(r, port, case, parts[r], case["tmp"], (IMAGE_COUNT,)) for r in range(2)]
    assert spawn_ranks(_rank, args) == [0, 0]
    for r in range(2):
        got = json.loads((case["tmp"] / f"rank{r}.json").read_text())["metrics"]
        assert got.pop("coco_panoptic/evaluators") == {"ImageCount": {"images": 2, "gt_segments": 8}}
        assert_target(got, run(CocoPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"]),
                               parts[0] + parts[1], 2))


def test_an_evaluator_that_cannot_be_loaded_or_would_see_no_image_is_refused_when_the_metric_is_built(case) -> None:
    with pytest.raises(InputError, match="evaluator .nowhere.py:Nothing."):
        PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], evaluators=["nowhere.py:Nothing"])
    with pytest.raises(InputError, match="format_only=True writes the predictions and scores nothing"):
        PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], format_only=True,
                               outfile_prefix=str(case["tmp"] / "out"), evaluators=[IMAGE_COUNT])


def test_a_second_round_scores_from_the_kept_ground_truth(case) -> None:
    kept = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"])
    dropped = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], keep_ground_truth=False)
    for metric in (kept, dropped):
        assert_target(run(metric, case["samples"]))
    (Path(case["seg_dir"]) / "fake_name1.png").unlink()
    assert_target(run(kept, case["samples"]))  # round 2: no PNG read
    with pytest.raises(InputError, match="fake_name1.png"):
        run(dropped, case["samples"])


def test_the_void_label_ignore_index_and_label_zero_become_what_mmdet_scores() -> None:
    # labels of 3 classes; 3 (= the number of classes) and 7 (ignore_index) are VOID; value 0 is label 0's segment
    pan = np.array([[0, 0, 3, 2 + INSTANCE_OFFSET], [7, 1 + 2 * INSTANCE_OFFSET, 3 + INSTANCE_OFFSET, 2]], np.int32)
    ids, segments = prediction_segments(pan, 3, 7, {0: 10, 1: 11, 2: 12})
    by_id = {s["id"]: (s["category_id"], s["area"]) for s in segments}
    new0 = max(by_id)
    assert by_id == {2: (12, 1), 1002: (12, 1), 2001: (11, 1), new0: (10, 5)}  # VOID is label 0's, as for mmdet
    assert new0 not in pan
    assert ids.tolist() == [[new0, new0, new0, 1002], [new0, 2001, new0, 2]]
    assert pan.tolist()[0][:3] == [0, 0, 3]  # the input map is not modified
    ids, segments = prediction_segments(pan, 3, 7, None)  # without ann_file the label is the category
    assert sorted(s["category_id"] for s in segments) == [0, 1, 2, 2]


def test_ids_past_cocos_rgb_range_still_convert() -> None:
    pan = np.array([[1 << 25, 5], [5, 3]], np.int64)
    ids, segments = prediction_segments(pan, 3, 3, None)
    assert ids.tolist() == [[1 << 25, 5], [5, 0]]
    assert {s["id"]: s["area"] for s in segments} == {5: 2, 1 << 25: 1}


def test_a_class_the_annotation_file_lacks_is_refused_in_one_line(case) -> None:
    metric = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"])
    metric.dataset_meta = {**META, "classes": ("person", "dog", "floor")}
    with pytest.raises(InputError, match=r"gt.json: no category named 'floor' .*pass the annotation file"):
        metric.process({}, deepcopy(case["samples"]))


def test_deprecated_and_remote_file_arguments_are_refused_in_one_line(case) -> None:
    with pytest.raises(InputError, match="file_client_args is deprecated .* pass backend_args"):
        PanbenchPanopticMetric(ann_file=case["ann_file"], file_client_args={"backend": "disk"})
    with pytest.raises(InputError, match="reads local files only"):
        PanbenchPanopticMetric(ann_file=case["ann_file"], backend_args={"backend": "petrel"})


def test_a_seg_prefix_or_ann_file_that_is_not_one_is_named_by_its_own_argument_and_kind(case) -> None:
    empty, loop = case["tmp"] / "empty", case["tmp"] / "loop"
    empty.write_bytes(b"")
    loop.symlink_to(loop)
    fix = "point seg_prefix at the folder of the ground-truth panoptic PNGs"
    for there, kind in ((empty, "an empty file (0 bytes)"), (loop, "a symbolic link loop")):
        for ann_file in (case["ann_file"], None):
            with pytest.raises(InputError) as e:
                PanbenchPanopticMetric(ann_file=ann_file, seg_prefix=str(there))
            assert str(e.value) == f"{there}: PanbenchPanopticMetric's seg_prefix is {kind}, not a folder; {fix}"
    with pytest.raises(InputError) as e:
        PanbenchPanopticMetric(ann_file=str(loop), seg_prefix=case["seg_dir"])
    assert str(e.value) == (f"{loop}: PanbenchPanopticMetric's ann_file is a symbolic link loop, not a JSON file; "
                            "point ann_file at the COCO panoptic JSON (e.g. annotations/panoptic_val2017.json)")
    with pytest.raises(InputError, match="gt.json \\(its path without .json\\) not found; pass "
                                         "PanbenchPanopticMetric's seg_prefix, the folder of its panoptic PNGs"):
        PanbenchPanopticMetric(ann_file=case["ann_file"])


def test_a_metric_without_dataset_meta_says_how_to_set_it(case) -> None:
    metric = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"])
    with pytest.raises(InputError, match="dataset_meta has no 'classes'"):
        metric.process({}, deepcopy(case["samples"]))


def test_without_seg_prefix_the_samples_seg_map_path_is_read(case) -> None:
    assert_target(run(PanbenchPanopticMetric(ann_file=None, seg_prefix=None), case["samples"]))


def test_the_metric_is_built_from_mmdets_registry_by_its_name(case) -> None:
    from mmdet.registry import METRICS as REGISTRY

    metric = REGISTRY.build(dict(type="PanbenchPanopticMetric", ann_file=case["ann_file"],
                                 seg_prefix=case["seg_dir"]))
    assert isinstance(metric, PanbenchPanopticMetric) and metric.prefix == "coco_panoptic"


def test_without_json_a_thing_segment_not_is_thing_is_a_crowd_as_in_mmdet(case) -> None:
    samples = deepcopy(case["samples"])
    samples[0]["segments_info"][1]["is_thing"] = 0  # the second person: a crowd region
    kw = dict(ann_file=None, seg_prefix=case["seg_dir"])
    want = run(CocoPanopticMetric(**kw), samples)
    assert want != TARGET
    assert_target(run(PanbenchPanopticMetric(**kw), samples), want)


def test_a_segment_of_value_zero_takes_the_void_pixels_as_mmdet_scores_it(case) -> None:
    """Label 0 with instance 0 is the map value 0, which mmdet also writes for VOID: its PNG scores the VOID pixels
    as that segment's; panbench gives the same numbers."""
    pred = _box_map((60, 80), 3, [[10, 10, 10, 40], [50, 10, 10, 5], [0, 0, 80, 5]], [0, INSTANCE_OFFSET + 1, 2])
    samples = deepcopy(case["samples"])
    samples[0]["pred_panoptic_seg"]["sem_seg"] = torch.from_numpy(pred).unsqueeze(0)
    kw = dict(ann_file=case["ann_file"], seg_prefix=case["seg_dir"], nproc=1, outfile_prefix=None)
    ours, mmdet = run(PanbenchPanopticMetric(**kw), samples), run(CocoPanopticMetric(**kw), samples)
    assert_target(ours, mmdet)


def test_every_evaluation_with_a_diagnosis_logs_it_and_warns(case, monkeypatch) -> None:
    """A training loop's evaluations: each one puts the diagnosis in MMEngine's log and warns, not the first alone
    (the finding stands in for one the sums show: this case's one image is too few for the mapping rule)."""
    import logging
    import warnings

    from mmengine.logging import MMLogger

    from panbench import DiagnosisWarning, Finding
    from panbench.metrics import panoptic

    monkeypatch.setattr(panoptic, "diagnose", lambda stats, cats: [Finding("category_mapping", "another order")])
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    metric = PanbenchPanopticMetric(ann_file=case["ann_file"], seg_prefix=case["seg_dir"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            for _ in range(3):
                assert_target(run(metric, case["samples"]))
    finally:
        logger.removeHandler(handler)
    logged = [r.getMessage() for r in records if "category_mapping: another order" in r.getMessage()]
    assert len(logged) == 3
    assert len([w for w in caught if issubclass(w.category, DiagnosisWarning)]) == 3
