"""A prediction PNG resized with bilinear or bicubic interpolation (the COCO sample's own ground truth, down to half
its size and back), or blurred, holds thousands of ids that no segment lists, blends of the ids either side of each
border: its refusal names an interpolation or a blur and says to resize with nearest-neighbour interpolation, not to
list every segment; one whose unlisted ids are
whole segments left out of segments_info keeps that advice. ``score`` on the files, the Python API on arrays and on
tensors (the table counted in torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from test_diagnosis_png_mistakes import score

from panbench.errors import InputError
from panbench.pq.png import read_ids

NEAREST = 'resize segment ids with nearest-neighbour interpolation (PIL Image.NEAREST, cv2.INTER_NEAREST, torch ' \
          'interpolate mode="nearest")'
OLD_ADVICE = "list every segment of the PNG in segments_info"
BLENDED = "it was interpolated or blurred (resized with bilinear or bicubic interpolation, or filtered); never " \
          "filter an id map, and "


def _rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)


def resized(ids: np.ndarray, how: str) -> np.ndarray:
    """``ids`` down to half its size and back with PIL's ``how`` (its RGB channels, or the ids as numbers)."""
    h, w = ids.shape
    if how == "numbers":  # the map resized as one channel of numbers (float32 holds every id below 2^24)
        im = Image.fromarray(ids.astype(np.float32), mode="F")
        out = np.asarray(im.resize((w // 2, h // 2), Image.BILINEAR).resize((w, h), Image.BILINEAR))
        return np.clip(np.rint(out), 0, (1 << 24) - 1).astype(np.int64)
    mode = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[how]
    rgb = np.asarray(Image.fromarray(_rgb(ids)).resize((w // 2, h // 2), mode).resize((w, h), mode)).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


@pytest.mark.parametrize("how", ["bilinear", "bicubic", "numbers"])
def test_a_prediction_resized_with_interpolation_is_told_to_resize_with_nearest_neighbour(
        how: str, coco_sample: Path, tmp_path: Path, capsys) -> None:
    code, err = score(coco_sample, tmp_path, capsys, lambda k, ids, segs, name: (resized(ids, how), segs, name))
    assert code == 2 and "is absent from segments_info; the map's " in err and err.endswith(BLENDED + NEAREST), err
    assert OLD_ADVICE not in err


def blurred(ids: np.ndarray) -> np.ndarray:
    """``ids``' RGB channels through a Gaussian blur of radius 1.5 (PIL's ``ImageFilter.GaussianBlur``)."""
    rgb = np.asarray(Image.fromarray(_rgb(ids)).filter(ImageFilter.GaussianBlur(1.5))).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def test_a_blurred_prediction_is_named_interpolated_or_blurred(coco_sample: Path, tmp_path: Path, capsys) -> None:
    """``score`` on the blurred PNGs, and the Python API on the blurred array."""
    from panbench.metrics import PanopticQuality

    code, err = score(coco_sample, tmp_path, capsys, lambda k, ids, segs, name: (blurred(ids), segs, name))
    assert code == 2 and "is absent from segments_info; the map's " in err and err.endswith(BLENDED + NEAREST), err
    categories, ids, segs = _sample(coco_sample)
    with pytest.raises(InputError) as e:
        PanopticQuality(categories).update(blurred(ids), segs, ids, segs, image_id=1)
    assert str(e.value).endswith(BLENDED + NEAREST), e.value


@pytest.mark.parametrize("dropped", [1, 3, 6])
def test_whole_segments_left_out_of_segments_info_keep_the_advice_to_list_them(
        dropped: int, coco_sample: Path, tmp_path: Path, capsys) -> None:
    """The smallest segments (the likeliest to lie thin between others) and the largest, left out of both images'."""
    def left_out(k: int, ids: np.ndarray, segs: list[dict], name: str):
        by_area = sorted(segs, key=lambda s: int((ids == s["id"]).sum()))
        gone = {s["id"] for s in by_area[:dropped] + by_area[-dropped:]}
        return ids, [s for s in segs if s["id"] not in gone], name

    code, err = score(coco_sample, tmp_path, capsys, left_out)
    assert code == 2 and err.endswith(f"is absent from segments_info; {OLD_ADVICE}"), err


def _sample(coco_sample: Path) -> tuple[list[dict], np.ndarray, list[dict]]:
    ann = coco_sample / "annotations"
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    a = gt["annotations"][0]
    return gt["categories"], read_ids(ann / "panoptic_val2017" / a["file_name"], "").astype(np.int64), \
        [{k: s[k] for k in ("id", "category_id", "iscrowd")} for s in a["segments_info"]]


@pytest.mark.parametrize("on_device_path", [False, True])
def test_the_python_api_names_the_resize_on_arrays_and_on_tensors(on_device_path: bool, coco_sample: Path) -> None:
    """The metric's numpy path, and the table counted in torch (the path of tensors on a GPU, here on the CPU)."""
    from panbench.metrics import PanopticQuality

    categories, ids, segs = _sample(coco_sample)
    pred = resized(ids, "bilinear")
    metric = PanopticQuality(categories)
    if on_device_path:
        torch = pytest.importorskip("torch")
        metric.torch_table_on_cpu = True
        pred, ids = torch.from_numpy(pred), torch.from_numpy(ids)
    with pytest.raises(InputError) as e:
        metric.update(pred, segs, ids, segs, image_id=1)
    assert "ids absent from segments_info" in str(e.value) and "nearest-neighbour" in str(e.value), e.value


def test_a_sprinkle_of_unlisted_ids_or_one_left_out_segment_is_no_resize(coco_sample: Path) -> None:
    """Random ids on 1% of the pixels (none between its neighbours' values), a segment left out: no finding."""
    from panbench.pq.diagnosis import resized_ids

    _, ids, segs = _sample(coco_sample)
    listed = [s["id"] for s in segs]
    assert resized_ids(resized(ids, "bilinear"), listed) is not None
    rng = np.random.default_rng(0)
    noisy = ids.copy()
    where = rng.random(ids.shape) < 0.01
    noisy[where] = rng.integers(1, 1 << 24, int(where.sum()))
    assert resized_ids(noisy, listed) is None
    assert resized_ids(ids, listed[1:]) is None
