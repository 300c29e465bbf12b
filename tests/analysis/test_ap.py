"""COCO mask AP of thing classes: the ground truth converted as panopticapi's converter does, and AP equal to
pycocotools' COCOeval to 1e-9 (on the real COCO sample and on synthetic sets with crowds, every size, ties and
more than 100 predictions), whatever the split of the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ap_cases import (
    _decode,
    _pycocotools,
    assert_same_ap,
    coco_sample_accumulator,
    perturbed_predictions,
    pycocotools_ap,
    synthetic_set,
)

from panbench.analysis.ap import APAccumulator, Instances, encode_masks, gt_annotations, write_results

pytest.importorskip("hotcoco", reason="AP is computed with hotcoco (pip install hotcoco)")


def test_ground_truth_is_panopticapis_detection_conversion_of_the_thing_segments(coco_sample: Path) -> None:
    from pycocotools import mask as cocomask

    _pycocotools()
    acc, ids_by_image, gt = coco_sample_accumulator(coco_sample)
    things = {c["id"] for c in gt["categories"] if c["isthing"]}
    for ann in gt["annotations"]:
        pan = ids_by_image[ann["image_id"]]
        want = []
        for s in ann["segments_info"]:  # panopticapi's converter, --things_only
            if s["category_id"] not in things:
                continue
            rle = cocomask.encode(np.asfortranarray(np.expand_dims((pan == s["id"]).astype(np.uint8), 2)))[0]
            want.append({"image_id": ann["image_id"], "category_id": s["category_id"], "iscrowd": s["iscrowd"],
                         "area": s["area"], "bbox": s["bbox"],
                         "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode()}})
        assert acc.gt[ann["image_id"]] == want
        assert any(a["iscrowd"] for a in want) and len(want) > 10
    anns = acc.gt_dataset()["annotations"]
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))  # from 1: pycocotools reads id 0 as no match


def test_ap_equals_pycocotools_on_the_coco_sample(coco_sample: Path, tmp_path: Path) -> None:
    acc, ids_by_image, _ = coco_sample_accumulator(coco_sample)
    perturbed_predictions(acc, ids_by_image, seed=0)
    ours = acc.evaluate()
    assert_same_ap(ours, pycocotools_ap(acc.gt_dataset(), acc.results()))
    assert 5 < ours["AP"] < 95  # neither trivial nor empty
    path = write_results(tmp_path / "instances.json", acc.results())  # the file --save-predictions writes
    assert_same_ap(ours, pycocotools_ap(acc.gt_dataset(), str(path)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ap_equals_pycocotools_with_crowds_sizes_ties_and_many_predictions(seed: int) -> None:
    acc, ids_by_image = synthetic_set(seed)
    perturbed_predictions(acc, ids_by_image, seed, extra=[3, 40, 130][seed - 1])  # 130: past maxDets 100
    assert_same_ap(acc.evaluate(), pycocotools_ap(acc.gt_dataset(), acc.results()))


def test_any_split_of_the_images_gives_the_same_ap() -> None:
    acc, ids_by_image = synthetic_set(4)
    perturbed_predictions(acc, ids_by_image, 4)
    ids = sorted(acc.images)
    parts = []
    for chunk in (ids[7:], ids[:3], ids[3:7]):
        part = APAccumulator(acc.categories)
        for i in chunk:
            part.add(i, acc.images[i], acc.gt[i], acc.dt[i])
        parts.append(part)
    merged = parts[0] + parts[1] + parts[2]
    assert merged.evaluate() == acc.evaluate()
    with pytest.raises(ValueError, match="in both parts"):
        _ = parts[0] + parts[0]


def test_an_image_without_predictions_counts_its_ground_truth_as_missed() -> None:
    acc, ids_by_image = synthetic_set(5, n_images=4)
    perturbed_predictions(acc, ids_by_image, 5)
    first = min(acc.images)
    acc.dt[first] = Instances.empty()
    assert_same_ap(acc.evaluate(), pycocotools_ap(acc.gt_dataset(), acc.results()))


def _masks_of_every_edge(rng: np.random.Generator) -> list[np.ndarray]:
    """Masks of shapes whose width is and is not a multiple of 8, touching each edge, empty, full, one pixel."""
    out = [rng.random((4, 17, 23)) > 0.6, rng.random((3, 8, 16)) > 0.3, np.zeros((2, 5, 9), bool),
           np.ones((2, 7, 13), bool), rng.random((3, 1, 1)) > 0.5]
    edges = np.zeros((4, 11, 19), bool)
    edges[0, 0, :], edges[1, -1, :], edges[2, :, 0], edges[3, :, -1] = True, True, True, True
    corner = np.zeros((2, 6, 10), bool)
    corner[0, -1, -1] = corner[1, 0, 0] = True
    return [*out, edges, corner]


def test_encode_masks_is_pycocotools_encode() -> None:
    from pycocotools import mask as cocomask

    _pycocotools()
    for m in _masks_of_every_edge(np.random.default_rng(0)):
        want = cocomask.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8)))
        assert [r["counts"] for r in encode_masks(m)] == [r["counts"].decode() for r in want], m.shape
        assert [r["size"] for r in encode_masks(m)] == [[int(s) for s in r["size"]] for r in want]
        # any dtype, any layout: nonzero is inside
        assert encode_masks(m.astype(np.float32) * 3) == encode_masks(m) == encode_masks(np.asfortranarray(m))
    assert encode_masks(np.zeros((0, 5, 5), bool)) == []


def test_gt_annotations_leave_stuff_out() -> None:
    ids = np.array([[1, 2], [2, 2]], np.uint32)
    segs = [{"id": 1, "category_id": 5, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]},
            {"id": 2, "category_id": 6, "iscrowd": 0, "area": 3, "bbox": [0, 0, 2, 2]}]
    (ann,) = gt_annotations(1, ids, segs, [6])
    assert ann["category_id"] == 6 and _decode(ann["segmentation"]).tolist() == [[False, True], [True, True]]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype", [np.uint32, np.int64])  # int64: the id maps C does not take (numpy's runs)
def test_segment_rles_from_one_pass_equal_the_encoded_masks(seed: int, dtype: type) -> None:
    from panbench.analysis.ap import segment_rles

    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 5, (13, 9)).astype(dtype)
    ids[0, 0], ids[-1, -1] = 7, 8  # segments on the first and the last pixel (column-major)
    seg_ids = [1, 2, 3, 4, 7, 8, 99]  # 99: listed, no pixel
    assert segment_rles(ids, seg_ids) == encode_masks(ids[None] == np.array(seg_ids)[:, None, None])
    whole = np.full((4, 6), 5, dtype)
    assert segment_rles(whole, [5, 6]) == encode_masks(np.array([whole == 5, whole == 6]))
    wide = rng.integers(0, 3, (37, 300)).astype(dtype) * 1000 + 1  # long runs across columns, a repeated id
    assert segment_rles(wide, [1, 1001, 2001, 1]) == encode_masks(wide[None] == np.array([1, 1001, 2001, 1])[:, None,
                                                                                                            None])


def test_ap_fields_name_the_source_of_the_instances() -> None:
    from panbench.analysis.ap import ap_fields

    acc, ids_by_image = synthetic_set(6, n_images=3)
    perturbed_predictions(acc, ids_by_image, 6)
    fields = ap_fields(acc, "mmdet instance_on")
    assert fields == {"ap": acc.evaluate(), "ap_source": "mmdet instance_on"}
    with pytest.raises(ValueError, match="not one of"):
        ap_fields(acc, "somewhere")


def _devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


@pytest.mark.parametrize("device", _devices())
def test_masks_encoded_where_they_lie_equal_the_host_encoding(device: str) -> None:
    """The change points counted on the tensor's device (a GPU's masks never copied whole) give encode_masks'
    strings, chunked or not; on the CPU the same code runs on CPU tensors."""
    import torch

    from panbench.analysis.ap import encode_on_device, from_arrays

    rng = np.random.default_rng(3)
    for m in _masks_of_every_edge(rng):
        t = torch.from_numpy(m).to(device)
        assert encode_on_device(t) == encode_masks(m), m.shape
        assert encode_on_device(t, chunk=1) == encode_masks(m), m.shape  # one mask at a time
        assert encode_on_device(t.to(torch.uint8) * 3) == encode_masks(m)
    big = np.zeros((3, 700, 1500), bool)  # counts of up to 2^20 and deltas of both signs: 1 to 5 groups of 5 bits
    big[0, 350, 700] = True
    big[1, :, 1400:] = True
    big[2, rng.integers(0, 700, 300), rng.integers(0, 1500, 300)] = True
    t = torch.from_numpy(big).to(device)
    assert encode_on_device(t) == encode_masks(big) == encode_on_device(t, chunk=1)
    masks = rng.random((7, 31, 17)) < 0.4
    scores = rng.random(7)
    got = from_arrays(torch.from_numpy(masks).to(device), scores, np.arange(7) % 3, [5, 6, 9], max_dets=4)
    want = from_arrays(masks, scores, np.arange(7) % 3, [5, 6, 9], max_dets=4)
    assert got.rles == want.rles and got.scores.tolist() == want.scores.tolist()
    assert got.category_ids.tolist() == want.category_ids.tolist()
