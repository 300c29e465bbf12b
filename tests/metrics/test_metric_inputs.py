"""Bad input through the Python API: one :class:`panbench.errors.InputError` naming the image and the fix, the
metric's state untouched by the refused update (never a wrong number)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS

from panbench import PanopticQuality
from panbench.data.synth import random_image
from panbench.errors import InputError
from panbench.package import REPO_ROOT

THING = next(c["id"] for c in CATS if c["isthing"])


def image() -> tuple[np.ndarray, list]:
    gt = random_image(np.random.default_rng(7), 40, 50, CATS)
    return gt.ids, gt.segments_info


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def refused(m: PanopticQuality, *args, **kw) -> str:
    before = m.sums().copy()
    n = m.n_images
    with pytest.raises(InputError) as e:
        m.update(*args, **kw)
    assert np.array_equal(m.sums(), before) and m.n_images == n  # state untouched
    return one_line(e)


@pytest.fixture
def metric() -> PanopticQuality:
    m = PanopticQuality(CATS)
    ids, segs = image()
    m.update(ids, segs, ids, segs, image_id=1)
    return m


def test_maps_of_two_sizes_are_refused(metric: PanopticQuality) -> None:
    ids, segs = image()
    assert "image 5: pred_ids is 49x40 (width x height) but gt_ids is 50x40; predict at the original image size" == \
        refused(metric, ids[:, :49], segs, ids, segs, image_id=5)


def test_a_map_of_another_shape_is_refused(metric: PanopticQuality) -> None:
    ids, segs = image()
    msg = refused(metric, ids[None, None], segs, ids, segs, image_id=5)
    assert msg.startswith("image 5: pred_ids has shape (1, 1, 40, 50); pass one image's HxW map"), msg


@pytest.mark.parametrize("bad", ["float", "nan", "torch-float"])
def test_float_or_nan_ids_are_refused(metric: PanopticQuality, bad: str) -> None:
    ids, segs = image()
    pred: object = ids.astype(np.float32)
    if bad == "nan":
        pred = np.where(ids == ids[0, 0], np.nan, ids).astype(np.float64)
    if bad == "torch-float":
        import torch

        pred = torch.from_numpy(ids.astype(np.float32))
    msg = refused(metric, pred, segs, ids, segs, image_id=5)
    assert msg.startswith("image 5: pred_ids has floating-point values") and "segment ids are integers" in msg


def test_a_category_the_table_does_not_know_is_refused(metric: PanopticQuality) -> None:
    ids, segs = image()
    bad = [dict(segs[0], category_id=999), *segs[1:]]
    msg = refused(metric, ids, bad, ids, segs, image_id=5)
    assert msg == (f"image 5 (prediction): segment {segs[0]['id']} has unknown category_id 999; use the category "
                   "ids of the categories the metric was built with")


def test_a_segment_absent_from_the_map_is_refused(metric: PanopticQuality) -> None:
    ids, segs = image()
    msg = refused(metric, ids, [*segs, {"id": 4242, "category_id": THING}], ids, segs, image_id=5)
    assert msg == "image 5: pred_segments lists id 4242, which pred_ids does not hold; drop empty segments from " \
                  "pred_segments"
    msg = refused(metric, np.where(ids == ids[0, 0], 77, ids), segs, ids, segs, image_id=5)
    assert msg == "image 5: pred_ids holds id 77, which no entry of pred_segments lists; list every segment of " \
                  "pred_ids in pred_segments (0 is VOID)"


def test_tensors_on_two_devices_are_refused(metric: PanopticQuality) -> None:
    import torch

    ids, segs = image()
    t = torch.from_numpy(ids.astype(np.int64))
    meta = t.to("meta")  # a second device every machine has
    msg = refused(metric, meta, segs, t, segs, image_id=5)
    assert msg == "image 5: pred_ids on meta, gt_ids on cpu; put them on one device (or pass numpy arrays)"


def test_an_image_given_twice_in_a_round_is_refused(metric: PanopticQuality) -> None:
    ids, segs = image()
    msg = refused(metric, ids, segs, ids, segs, image_id=1)
    assert msg.startswith("image 1: scored already since the last reset(); call reset()")
    metric.reset()
    metric.update(ids, segs, ids, segs, image_id=1)  # a new round takes it


def test_a_synced_metric_refuses_more_images(metric: PanopticQuality) -> None:
    metric._synced = True  # what sync() leaves on every rank
    ids, segs = image()
    assert "call reset() before scoring more images" in refused(metric, ids, segs, ids, segs, image_id=9)


def test_merging_or_adding_the_sums_of_another_dataset_is_refused(metric: PanopticQuality) -> None:
    other = PanopticQuality(CATS[:3])
    with pytest.raises(InputError, match="different categories"):
        metric.merge(other)
    with pytest.raises(InputError, match="a vector of 3 categories added to a metric of 14"):
        metric.add_sums(other.sums())
    twin = PanopticQuality(CATS)
    ids, segs = image()
    twin.update(ids, segs, ids, segs, image_id=1)
    with pytest.raises(InputError, match="image 1 is in both metrics"):
        metric.merge(twin)
    assert metric.n_images == 1


def test_a_bad_result_added_or_a_metric_merged_with_itself_changes_nothing() -> None:
    m = PanopticQuality(CATS, analyses=True)
    ids, segs = image()
    good = m.update(ids, segs, ids, segs, image_id=1)
    before = m.sums().copy()
    with pytest.raises(InputError, match="pass the ImageResult objects update"):
        m.add([good, "not a result"])
    with pytest.raises(InputError, match="merged with itself would count its images twice"):
        m.merge(m)
    assert np.array_equal(m.sums(), before) and m.n_images == 1 and "pq_dagger" in m.compute().analyses
    m.add([good])
    assert m.n_images == 2 and m.compute().n_images == 2


def test_a_metric_without_analyses_merges_one_with_them_and_their_evaluators_pair_by_name() -> None:
    """The other metric's analyses add nothing to one that keeps no per-image results; the user's evaluator of each
    meets its own kind (a pairing by position would hand it the other's analyses)."""
    example = REPO_ROOT / "examples" / "evaluators" / "image_count.py"
    plain = PanopticQuality(CATS, evaluators=[f"{example}:ImageCount"])
    rich = PanopticQuality(CATS, analyses=True, evaluators=[f"{example}:ImageCount"])
    ids, segs = image()
    plain.update(ids, segs, ids, segs, image_id=1)
    rich.update(ids, segs, ids, segs, image_id=2)
    plain.merge(rich)
    res = plain.compute()
    assert res.n_images == 2 and res.evaluators == {"ImageCount": {"images": 2, "gt_segments": 2 * len(segs)}}


def test_a_metric_with_rules_takes_one_name_as_a_string_and_refuses_sums_alone() -> None:
    """The rules count each image: sums alone cannot carry them (add_sums, and sync takes the gathered path)."""
    m = PanopticQuality(CATS, rules="torchmetrics")
    assert m.rules == ("torchmetrics",)
    with pytest.raises(InputError, match="the analyses, the evaluators and the rules need each image"):
        m.add_sums(PanopticQuality(CATS).sums())
