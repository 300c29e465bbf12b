"""``--batch-size`` and ``--cpu-procs`` change no prediction: batches hold images of one padded input shape
(:func:`panbench.evaluation.inference.same_shape_batches`, keyed by the family's ``batch_key``), so each image
gets in its batch exactly the input it gets alone.  Each comparison checks that batches of two or more images
really ran (the record's ``timings.batches``) and that the predictions are non-empty and pixel-identical."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import EvalRun, eval_run, zoo_pair_eval

from panbench.evaluation.inference import same_shape_batches
from panbench.pq.matching import METRIC_KEYS


def _item(i: int, key: int, error: str | None = None) -> dict:
    return {"index": i, "data": key, "error": error}


def _run(keys: list[int], size: int, hold: int | None = None, errors: tuple[int, ...] = ()) -> list[list[int]]:
    loaded = [[_item(i, k, "bad" if i in errors else None)] for i, k in enumerate(keys)]
    return [[it["index"] for it in b] for b in same_shape_batches(iter(loaded), size, lambda d: d, hold)]


def test_batches_hold_images_of_one_key_only() -> None:
    keys = [0, 1, 0, 1, 1, 0, 2]
    batches = _run(keys, 2)
    assert sorted(i for b in batches for i in b) == list(range(len(keys)))  # every image once
    assert all(len({keys[i] for i in b}) == 1 for b in batches) and max(map(len, batches)) == 2
    assert batches == [[0, 2], [1, 3], [4], [5], [6]]  # full batches as they fill, the rest in first-image order


def test_batch_size_one_runs_every_image_alone_in_order() -> None:
    assert _run([3, 3, 1, 3], 1) == [[0], [1], [2], [3]]


def test_the_images_waiting_for_a_partner_are_bounded() -> None:
    """Every image of its own shape: no batch ever fills, and at most ``hold`` images wait."""
    batches = _run(list(range(10)), 4, hold=3)
    assert batches == [[i] for i in range(10)]
    assert _run([0, 1, 2, 0, 0, 0], 4, hold=3) == [[0, 3], [1], [2], [4, 5]]  # the oldest partial batch leaves


def test_an_image_that_failed_to_load_runs_at_once() -> None:
    assert _run([0, 0, 0], 2, errors=(1,)) == [[1], [0, 2]]


def _unscored(segment: dict) -> dict:
    return {k: v for k, v in segment.items() if k != "score"}


def _same_predictions(base: EvalRun, other: EvalRun, max_pixels: float = 0.0) -> None:
    """Batches of two or more images ran in ``other``; its predictions are those of ``base`` (batch 1), pixel for
    pixel, or with at most ``max_pixels`` of the pixels other (the kernels' float rounding with another batch
    shape flipping near-ties); its numbers equal."""
    (rec1, pred1), (rec2, pred2) = (base.record, base.predictions), (other.record, other.predictions)
    assert set(rec1["timings"]["batches"]) == {"1"}
    assert any(int(size) >= 2 for size in rec2["timings"]["batches"]), rec2["timings"]["batches"]
    assert pred1.keys() == pred2.keys() and len(pred1) == rec1["n_images"]
    assert sum(len(segs) for _, segs in pred1.values()) > 0  # segments were predicted
    differ = total = 0
    for image_id, (ids, segs) in pred1.items():
        differ += int((ids != pred2[image_id][0]).sum())
        total += ids.size
        if not max_pixels:
            # the segments alike; their scores (the network's class probabilities) within float32's rounding of
            # another batch shape
            assert [_unscored(s) for s in segs] == [_unscored(s) for s in pred2[image_id][1]], image_id
            nan = float("nan")  # a segment without a score (PanopticFPN's stuff)
            assert [s.get("score", nan) for s in segs] == pytest.approx(
                [s.get("score", nan) for s in pred2[image_id][1]], rel=1e-5, nan_ok=True), image_id
    assert differ <= max_pixels * total, f"{differ} of {total} pixels differ"
    assert {k: rec1["metrics"][k] for k in METRIC_KEYS} == {k: rec2["metrics"][k] for k in METRIC_KEYS}
    if not max_pixels:
        assert rec1["per_class"] == rec2["per_class"] and rec1.get("miou") == rec2.get("miou")


# demo images 2000-2004 and 2013: demo-mask2former and demo-panoptic-fpn pad all but 2001 to one shape (at batch 4,
# 2000 and 2002-2004 run before 2001); demo-maskformer pads to no divisor, and 2003 and 2013 are the demo set's
# first pair of one shape (with --cpu-procs 2 in one process's share: every other image)
DEMO_SUBSET = (2000, 2001, 2002, 2003, 2004, 2013)


@pytest.mark.parametrize("model", ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"])
def test_batch_size_and_cpu_procs_change_no_prediction_of_the_demo_models(demo_root, tmp_path, model) -> None:
    subset = tmp_path / "subset.txt"
    subset.write_text("".join(f"{i}\n" for i in DEMO_SUBSET))
    run = lambda name, *extra: eval_run(model, demo_root, "demo", tmp_path / name, "--subset", str(subset),  # noqa: E731
                                        "--flops-images", "0", *extra)
    base = run("b1", "--cpu-procs", "1")
    _same_predictions(base, run("b4", "--batch-size", "4", "--cpu-procs", "1"))
    _same_predictions(base, run("b2p2", "--batch-size", "2", "--cpu-procs", "2"))


# the tiny random models' flat logits tie at some pixels: batched kernels' float rounding (1e-5 of a logit, measured
# by scripts/bench_batch_size.py, docs/eval.md) flips a few of them in MaskFormer; DETR's and OneFormer's processors
# make every demo image another shape (no size divisor), so they never batch there; MaskFormer's original pads to no
# divisor either (its COCO configs), so its batches are its processor's (--pipeline transformers)
@pytest.mark.parametrize(("kind", "max_pixels", "pipeline"), [("mask2former", 0.0, "original"),
                                                              ("maskformer", 0.01, "transformers"),
                                                              ("eomt", 0.0, "original")])
def test_batch_size_changes_no_number_of_the_tiny_hf_models(demo_root, tmp_path, kind, max_pixels, pipeline) -> None:
    pytest.importorskip("transformers")
    import hf_tiny

    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())[
        "categories"]]
    d = hf_tiny.build(kind, names, tmp_path / "m")
    run = lambda name, *extra: eval_run(f"hf:{d}", demo_root, "demo", tmp_path / name, "--limit", "12",  # noqa: E731
                                        "--cpu-procs", "1", "--pipeline", pipeline, *extra)
    _same_predictions(run("b1"), run("b4", "--batch-size", "4"), max_pixels)


# Mask2Former's random queries, every one kept, tie at some pixels: its head's kernels round a batch of two otherwise
# (its logits by 2e-5) and flip one pixel of the two images' 375,760; three full-size models twice each (~55 s): a
# system test (docs/testing.md), the demo models' batches above are make test's
@pytest.mark.system
@pytest.mark.slow
@pytest.mark.parametrize(("model", "max_pixels"), [("panoptic-fpn", 0.0), ("maskformer", 0.0), ("mask2former", 1e-4)])
def test_batch_size_changes_no_prediction_of_the_zoo_architectures_at_coco_size(coco_sample, request, tmp_path, model,
                                                                                 max_pixels):
    """The zoo's R50 configs (random weights saved as the zoo's files) at COCO's size: a crop of a COCO image and its
    mirror (helpers.coco_mirror_pair: 800x824 after the resize), one batch of two against each image alone (the
    batch-1 run is the one test_eval_coco_sample.py checks)."""
    base = zoo_pair_eval(request, coco_sample, model)
    (a, _), (b, _) = base.predictions.values()
    assert not np.array_equal(a, b)  # two outputs swapped within the batch would show
    batched = zoo_pair_eval(request, coco_sample, model, tmp_path, "--batch-size", "2", "--flops-images", "0")
    assert batched.record["timings"]["batches"] == {"2": 1}
    _same_predictions(base, batched, max_pixels)
