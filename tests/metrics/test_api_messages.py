"""The Python API's refusals speak of the arrays and arguments passed (``pred_ids``, ``gt_segments``,
``strict=False``), name the value and the fix, and name no flag of the command line; the command line's PNGs keep
their own words. Each refusal is one line and leaves the metric as it was; each path (the host's, and the table
counted in torch: ``torch_table_on_cpu``) says the same."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS

from panbench import CocoPanopticQuality, PanopticQuality
from panbench.data.synth import random_image
from panbench.errors import InputError, PanbenchError
from panbench.pq.evaluator import score_pair
from panbench.pq.kernels import rgb2id
from panbench.pq.png import decode_png

torch = pytest.importorskip("torch")

MINUS_ONE_FIX = ("map -1 to 0 (VOID), e.g. ids[ids == -1] = 0 (-1 is the VOID of detectron2's Panoptic-DeepLab and "
                 "of transformers' post-processing)")


def image() -> tuple[np.ndarray, list[dict[str, Any]]]:
    gt = random_image(np.random.default_rng(7), 40, 50, CATS)
    return gt.ids.astype(np.int64), gt.segments_info


def metric(device: bool, **kw: Any) -> PanopticQuality:
    m = PanopticQuality(CATS, **kw)
    m.torch_table_on_cpu = device  # tensors' tables counted in torch, as on a GPU
    return m


def as_given(x: np.ndarray, device: bool) -> Any:
    return torch.from_numpy(np.ascontiguousarray(x)) if device else x


def refused(m: PanopticQuality, *args: Any, **kw: Any) -> str:
    before, n = m.sums().copy(), m.n_images
    with pytest.raises(InputError) as e:
        m.update(*args, **kw)
    assert np.array_equal(m.sums(), before) and m.n_images == n
    text = str(e.value)
    assert "\n" not in text and "--" not in text and "PNG segment" not in text, text
    return text


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_an_id_map_holding_minus_one_names_the_map_and_maps_it_to_void(device: bool) -> None:
    ids, segs = image()
    void = as_given(np.where(ids == ids[0, 0], -1, ids), device)
    good = as_given(ids, device)
    assert refused(metric(device), void, segs, good, segs, image_id=3) == (
        "image 3: pred_ids holds -1, not a segment id (0 is VOID, 1..16777215 the ids of pred_segments); "
        + MINUS_ONE_FIX)
    for strict in (False, True):  # the ground truth's: refused with or without strict
        assert refused(metric(device, strict=strict), good, segs, void, segs, image_id=3) == (
            "image 3: gt_ids holds -1, not a segment id (0 is VOID, 1..16777215 the ids of gt_segments); "
            + MINUS_ONE_FIX)
    five = as_given(np.where(ids == ids[0, 0], -5, ids), device)
    assert refused(metric(device), five, segs, good, segs, image_id=3).endswith(
        "set the pixels of -5 (and of any other negative value) to 0 (VOID) or to their segment's id")
    if not device:  # -1 cast to uint32 (torch has few operations on uint32)
        assert refused(metric(device), np.where(ids == ids[0, 0], -1, ids).astype(np.uint32), segs, good, segs,
                       image_id=3) == ("image 3: pred_ids holds 4294967295 (-1 cast to an unsigned type), not a "
                                       "segment id (0 is VOID, 1..16777215 the ids of pred_segments); "
                                       + MINUS_ONE_FIX)


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_ids_of_2_to_the_24_and_above_are_named_out_of_range(device: bool) -> None:
    ids, segs = image()
    big = as_given(np.where(ids == ids[0, 0], 1 << 24, ids), device)
    good = as_given(ids, device)
    assert refused(metric(device), big, segs, good, segs, image_id=3) == (
        "image 3: pred_ids holds 16777216, out of range: segment ids are 1..16777215 (below 2^24, as R + 256G + "
        "256^2B of a COCO PNG; 0 is VOID); number the segments below 2^24, in pred_ids and pred_segments alike")
    assert refused(metric(device), good, segs, big, segs, image_id=3).startswith(
        "image 3: gt_ids holds 16777216, out of range")
    if not device:  # a uint32 prediction's ids are looked up as they are: in no segment, and out of range
        assert refused(metric(device), np.where(ids == ids[0, 0], 1 << 24, ids).astype(np.uint32), segs, good, segs,
                       image_id=3).startswith("image 3: pred_ids holds 16777216, out of range")


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_a_float_map_of_minus_one_gets_one_message_whose_fix_is_taken(device: bool) -> None:
    """transformers' map of an image without segments: float -1 everywhere, no segments."""
    ids, segs = image()
    empty = torch.full((40, 50), -1.0) if device else np.full((40, 50), -1.0, np.float32)
    dtype = "torch.float32" if device else "float32"
    m = metric(device)
    assert refused(m, empty, [], as_given(ids, device), segs, image_id=3) == (
        f"image 3: pred_ids has floating-point values ({dtype}), among them -1; segment ids are integers "
        "0..16777215 (0 = VOID): map -1 to 0 (VOID), then convert the map with .long() / .astype(np.int64)")
    fixed = empty.clone() if device else empty.copy()
    fixed[fixed == -1] = 0  # the fix, as the message words it
    fixed = fixed.long() if device else fixed.astype(np.int64)
    m.update(fixed, [], as_given(ids, device), segs, image_id=3)
    assert m.n_images == 1


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_float_maps_name_nan_fractions_and_what_float16_cannot_hold(device: bool) -> None:
    ids, segs = image()
    small = np.unique(ids, return_inverse=True)[1].reshape(ids.shape)  # ids 0..n
    listed = [dict(s, id=int(np.searchsorted(np.unique(ids), s["id"]))) for s in segs]
    m = metric(device)

    def said(x: np.ndarray) -> str:
        return refused(m, as_given(x, device), listed, as_given(small, device), listed, image_id=3)

    nan = np.where(small == small[0, 0], np.nan, small).astype(np.float32)
    assert "among them NaN; " in said(nan) and "set its NaN pixels to 0 (VOID) or to their segment's id, then" \
        in said(nan)
    half = small.astype(np.float64) + 0.5
    assert f"among them {float(half[0, 0])!r}, not a whole number; " in said(half)
    assert "resize the map with nearest-neighbour interpolation (or round it), then convert" in said(half)
    wide = np.where(small == small[0, 0], 3001, small).astype(np.float16)  # float16 reads 3001 as 3000
    assert "among them 3000, above 2048, past which" in said(wide) and "float16 skips whole numbers" in said(wide)
    assert said(small.astype(np.float16)).endswith("(0 = VOID): convert the map with .long() / .astype(np.int64)")


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_a_map_too_narrow_for_its_ids_or_a_mask_is_named_by_its_type(device: bool) -> None:
    ids, segs = image()
    good = as_given(ids, device)
    top = max(s["id"] for s in segs)
    first = next(s["id"] for s in segs if s["id"] > 255)
    assert refused(metric(device), as_given(ids.astype(np.uint8), device), segs, good, segs, image_id=3) == (
        f"image 3: pred_ids is uint8, which holds ids up to 255, but pred_segments lists id {first}; keep the map "
        "int32 or int64 (cast to uint8, its ids were cut)")
    assert top > 32767
    assert refused(metric(device), good, segs, as_given(ids.astype(np.int16), device), segs, image_id=3).startswith(
        "image 3: gt_ids is int16, which holds ids up to 32767, but gt_segments lists id ")
    assert refused(metric(device), as_given(ids > 0, device), [], good, segs, image_id=3) == (
        "image 3: pred_ids is a bool map (a mask); pass a map of integer segment ids, 0 = VOID (a mask as one segment "
        "of id 1: mask.long() / mask.astype(np.int64))")


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_maps_and_segments_that_disagree_are_named_by_argument(device: bool) -> None:
    ids, segs = image()
    good = as_given(ids, device)
    unlisted = as_given(np.where(ids == ids[0, 0], 77, ids), device)
    assert refused(metric(device, strict=True), good, segs, unlisted, segs, image_id=3) == (
        "image 3: gt_ids holds id 77, which no entry of gt_segments lists; list every segment of gt_ids in "
        "gt_segments (with strict=False such pixels are scored as panopticapi scores them)")
    wrong_area = [dict(segs[0], area=1), *segs[1:]]
    assert refused(metric(device), good, segs, good, wrong_area, image_id=3) == (
        f"image 3: gt_segments gives segment {segs[0]['id']} area 1 but gt_ids holds {(ids == segs[0]['id']).sum()} "
        "pixels of it; give the pixel count as 'area' (or leave 'area' out: it is counted from gt_ids)")
    assert refused(metric(device), as_given(ids[:, :49], device), segs, good, segs, image_id=3) == (
        "image 3: pred_ids is 49x40 (width x height) but gt_ids is 50x40; predict at the original image size")
    assert refused(metric(device), good, segs, as_given(ids.T, device), segs, image_id=3) == (
        "image 3: pred_ids is 50x40 (width x height) but gt_ids is 40x50; the prediction (50x40) has the image's "
        "height and width swapped (the map transposed): pass its transpose (ids.T), 40x50 as the image")


def test_segments_whose_values_are_tensors_score_as_their_numbers() -> None:
    ids, segs = image()
    as_tensors = [{k: torch.tensor(v) for k, v in s.items()} for s in segs]
    plain = PanopticQuality(CATS)
    plain.update(ids, segs, np.where(ids == segs[1]["id"], 0, ids), segs, image_id=1)
    tensors = PanopticQuality(CATS)
    tensors.update(ids, as_tensors, np.where(ids == segs[1]["id"], 0, ids), as_tensors, image_id=1)
    assert np.array_equal(tensors.sums(), plain.sums())
    two = [dict(as_tensors[0], id=torch.tensor([1, 2])), *as_tensors[1:]]
    assert refused(tensors, ids, two, ids, segs, image_id=2) == (
        "image 2: pred_segments[0]['id'] is a Tensor of shape (2,); give one number")
    assert refused(tensors, ids, None, ids, segs, image_id=2) == (
        "image 2: pred_segments is NoneType; pass a list of dicts ('id', 'category_id', ...; COCO's segments_info), "
        "[] for an image without segments")


def test_the_coco_metric_names_its_png_with_the_apis_strict_and_the_command_line_keeps_its_words(
        coco_sample: Path, tmp_path: Path) -> None:
    ann_dir = coco_sample / "annotations"
    data = json.loads((ann_dir / "panoptic_val2017.json").read_text())
    ann = data["annotations"][0]
    ids = rgb2id(decode_png(ann_dir / "panoptic_val2017" / ann["file_name"], "t"))
    dropped = ann["segments_info"][0]["id"]
    ann["segments_info"] = ann["segments_info"][1:]  # the PNG holds a segment its JSON does not list
    gt_json = tmp_path / "gt.json"
    gt_json.write_text(json.dumps(data))
    m = CocoPanopticQuality(gt_json, ann_dir / "panoptic_val2017", strict=True)
    png_words = (f"image {ann['image_id']} (ground truth): PNG segment id {dropped} is absent from segments_info; "
                 "the annotation PNG and JSON do not belong together ({} such pixels are scored as panopticapi "
                 "scores them)")
    with pytest.raises(InputError) as e:
        m.update(ann["image_id"], ids, ann["segments_info"])
    assert str(e.value) == png_words.format("with strict=False")
    with pytest.raises(InputError) as e:  # the command line's per-image path: score_pair's own words
        score_pair(m.categories, ids, ann["segments_info"], ids, ann["segments_info"], f"image {ann['image_id']}",
                   strict=True)
    assert str(e.value) == png_words.format("without --strict")
    with pytest.raises(InputError) as e:
        m.update(ann["image_id"], np.where(ids == 0, -1, ids.astype(np.int64)), ann["segments_info"])
    assert str(e.value).startswith(f"image {ann['image_id']}: pred_ids holds -1, not a segment id")


class Failing:
    """A user's evaluator whose process() raises, or calls sys.exit."""

    name = "Failing"

    def __init__(self, exits: bool = False) -> None:
        self.exits = exits

    def reset(self) -> None:
        pass

    def process(self, image: Any) -> dict[str, Any]:
        if self.exits:
            sys.exit(3)
        raise ValueError("boom")

    def add(self, share: Any) -> None:
        pass

    def merge(self, other: Any) -> None:
        pass

    def evaluate(self) -> dict[str, Any]:
        return {}


def test_an_evaluators_failure_points_at_its_exception_not_at_a_flag() -> None:
    ids, segs = image()
    with pytest.raises(PanbenchError) as e:
        PanopticQuality(CATS, evaluators=[Failing()]).update(ids, segs, ids, segs, image_id=1)
    assert str(e.value) == ("evaluator Failing: process() failed on image 1 (ValueError: boom); fix the evaluator "
                            "(the exception above shows where)")
    assert isinstance(e.value.__cause__, ValueError)
    with pytest.raises(PanbenchError) as e:
        PanopticQuality(CATS, evaluators=[Failing(exits=True)]).update(ids, segs, ids, segs, image_id=1)
    assert str(e.value) == ("evaluator Failing: process() called sys.exit(3) on image 1; an evaluator returns its "
                            "share or fields, or raises")


def test_a_mistake_that_explains_unlisted_ids_is_named_in_the_words_of_the_arrays() -> None:
    from panbench.pq.diagnosis import swap_channels

    ids, segs = image()
    swapped = np.vectorize(swap_channels)(ids)
    first = int(swapped[ids > 0][0])
    assert refused(PanopticQuality(CATS), swapped, segs, ids, segs, image_id=3) == (
        f"image 3: pred_ids holds id {first}, which no entry of pred_segments lists; pred_ids's red and blue channels "
        f"are swapped (its id {first} is {swap_channels(first)} of pred_segments, read in OpenCV's BGR order): pass "
        "the channels in RGB order (bgr[..., ::-1])")
    numbered = [dict(s, id=k) for k, s in enumerate(segs, 1)]
    encoded = np.zeros_like(ids)
    for k, s in enumerate(segs, 1):  # detectron2's category_id * 1000 + instance
        encoded[ids == s["id"]] = s["category_id"] * 1000 + k
    assert refused(PanopticQuality(CATS), encoded, numbered, ids, segs, image_id=3).endswith(
        "; pred_ids's ids are category_id * 1000 + instance (detectron2's label_divisor encoding), not segment ids: "
        "give each segment's pixels its id in pred_segments")


def _first(segs: list[dict[str, Any]], **changed: Any) -> list[Any]:
    """``segs`` with the first segment's fields changed (a value of ``...``: the field left out)."""
    seg = {k: v for k, v in {**segs[0], **changed}.items() if v is not ...}
    return [seg, *segs[1:]]


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_segment_fields_missing_or_of_the_wrong_type_are_named_by_argument_image_and_segment(device: bool) -> None:
    ids, segs = image()
    good = as_given(ids, device)
    first, cat = segs[0]["id"], segs[0]["category_id"]
    at = f"image 3: pred_segments[0] (segment {first})"

    def said(pred: Any, gt: Any = segs) -> str:
        return refused(metric(device), good, pred, good, gt, image_id=3)

    assert said(_first(segs, category_id=...)) == (
        f"{at}: missing field 'category_id'; give every segment of pred_segments its 'id' and its 'category_id'")
    assert said(_first(segs, category_id=str(cat))) == (
        f"{at}: field 'category_id' has the wrong type (str '{cat}', not int); pass category_id as the int {cat}, "
        f"not the str '{cat}'")
    assert said(_first(segs, category_id=True)) == (
        f"{at}: field 'category_id' has the wrong type (bool, not int); pass category_id as an int")
    assert said(_first(segs, id=...)) == (
        "image 3: pred_segments[0]: missing field 'id'; give every segment of pred_segments its 'id' (its pixels' "
        "value in pred_ids) and its 'category_id'")
    assert said(_first(segs, id=str(first))).startswith(
        f"image 3: pred_segments[0]: field 'id' has the wrong type (str '{first}', not int); pass id as the int ")
    assert said(_first(segs, id=first + 0.5)) == (
        f"image 3: pred_segments[0]: field 'id' has the wrong type (float {first + 0.5!r}, not int); pass id as an "
        "int")
    assert said(_first(segs, iscrowd="1")) == (
        f"{at}: field 'iscrowd' has the wrong type (str '1', not int); pass iscrowd as the int 1, not the str '1'")
    assert said(segs, _first(segs, area="12")) == (
        f"image 3: gt_segments[0] (segment {first}): field 'area' has the wrong type (str '12', not int); pass area "
        "as the int 12, not the str '12'")
    fix = "not a dict; pass each segment as a dict ('id', 'category_id', ...; COCO's segments_info)"
    assert said([tuple(segs[0].items()), *segs[1:]]) == f"image 3: pred_segments[0] is a tuple, {fix}"
    assert said(segs, [*segs[:2], None]) == f"image 3: gt_segments[2] is None, {fix}"
    assert said([1, 2]) == f"image 3: pred_segments[0] is an int (1), {fix}"
    assert said(_first(segs, id=segs[1]["id"])) == (
        f"image 3: pred_segments lists segment id {segs[1]['id']} twice; give each segment its own id (its pixels' "
        "value in pred_ids)")


def test_whole_numbers_of_other_types_score_as_the_ints_they_equal() -> None:
    ids, segs = image()
    plain = PanopticQuality(CATS)
    plain.update(ids, segs, ids, segs, image_id=1)
    other = [{**s, "id": float(s["id"]), "category_id": float(s["category_id"]), "iscrowd": bool(s["iscrowd"])}
             for s in segs]
    floats = PanopticQuality(CATS)
    floats.update(ids, other, ids, [dict(s, area=float(s["area"]), iscrowd=None) for s in segs], image_id=1)
    assert np.array_equal(floats.sums(), plain.sums())


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_segment_id_zero_or_out_of_range_is_named_in_the_words_of_the_arrays(device: bool) -> None:
    ids, segs = image()
    good = as_given(ids, device)
    assert refused(metric(device), good, _first(segs, id=0), good, segs, image_id=3) == (
        "image 3: pred_segments lists segment id 0, which is VOID in pred_ids: number the segments from 1 (in the map "
        "and the list alike) or leave the VOID entry out")
    assert refused(metric(device), good, segs, good, _first(segs, id=0), image_id=3).startswith(
        "image 3: gt_segments lists segment id 0, which is VOID in gt_ids: ")
    for bad in (-3, 1 << 24):
        assert refused(metric(device), good, _first(segs, id=bad), good, segs, image_id=3) == (
            f"image 3: pred_segments lists segment id {bad}, outside 1..16777215 (0 is VOID in pred_ids); number "
            "the segments within 1..16777215, in pred_ids and pred_segments alike")


@pytest.mark.parametrize("device", [False, True], ids=["host", "torch-table"])
def test_a_float_rgb_map_is_told_its_shape_and_type_at_once(device: bool) -> None:
    ids, segs = image()
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.float32)
    dtype = "torch.float32" if device else "float32"
    assert refused(metric(device), as_given(rgb, device), segs, as_given(ids, device), segs, image_id=3) == (
        f"image 3: pred_ids has shape (40, 50, 3) and dtype {dtype}; pass an HxW integer id map (or an HxWx3 uint8 "
        "RGB map, ids = R + 256G + 256^2B)")
    m = metric(device)
    m.update(as_given(rgb.astype(np.uint8), device), segs, as_given(ids, device), segs, image_id=3)  # the fix
    assert m.n_images == 1


@pytest.mark.parametrize("kind", ["empty file", "link loop", "missing"])
def test_a_gt_folder_that_is_not_a_folder_is_named_by_what_is_there(coco_sample: Path, tmp_path: Path,
                                                                     kind: str) -> None:
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    there = tmp_path / "pngs"
    if kind == "empty file":
        there.write_bytes(b"")
    elif kind == "link loop":
        there.symlink_to(there)
    what = {"empty file": "is an empty file (0 bytes), not a folder", "link loop": "is a symbolic link loop, not a "
            "folder", "missing": "not found"}[kind]
    with pytest.raises(InputError) as e:
        CocoPanopticQuality(gt_json, there)
    assert str(e.value) == f"{there}: gt_folder {what}; point gt_folder at the folder of {gt_json}'s panoptic PNGs"
    copy = tmp_path / "gt.json"  # its default folder, tmp_path / "gt", absent
    copy.write_bytes(gt_json.read_bytes())
    with pytest.raises(InputError) as e:
        CocoPanopticQuality(copy)
    assert str(e.value) == (f"{tmp_path / 'gt'}: the ground-truth PNG folder of {copy} (its path without .json) not "
                            "found; pass gt_folder, the folder of its panoptic PNGs")


@pytest.mark.parametrize("text", ["--5", "²", "5.0", " -"])
def test_an_id_of_text_that_is_no_integer_is_refused_in_one_line(text: str) -> None:
    import numpy as np

    from panbench.errors import InputError
    from panbench.metrics import PanopticQuality

    m = PanopticQuality([{"id": 1, "name": "a", "isthing": 1}])
    ids = np.ones((4, 4), np.int64)
    with pytest.raises(InputError, match=r"pred_segments\[0\]: field 'id' has the wrong type \(str"):
        m.update(ids, [{"id": text, "category_id": 1}], ids, [{"id": 1, "category_id": 1}])
