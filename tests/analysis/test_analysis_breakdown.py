"""The error breakdown, rule by rule, on hand-built images; oracle gains computed by hand."""

from __future__ import annotations

import pytest
from analysis_cases import TABLE, infos, one_set, paint, run

from panbench.analysis import error_breakdown
from panbench.analysis.breakdown import ERROR_TYPES, fn_types, fp_types

SHAPE = (40, 40)
THING = (0, 10, 0, 10)  # a 100-pixel thing at the top left


def image(gt_rects, gt_cats, pred_rects, pred_cats, crowd=(), gt_order=None):
    gt = paint(SHAPE, gt_rects)
    pred = paint(SHAPE, pred_rects)
    return gt, infos(gt, gt_cats, set(crowd), order=gt_order), pred, infos(pred, pred_cats, gt=False)


def types(img):
    _, match = run(*img)
    fp = [ERROR_TYPES[t] for t in fp_types(match.fp_same, match.fp_other, match.fp_matched)]
    fn = [ERROR_TYPES[t] for t in fn_types(match.fn_same, match.fn_other)]
    return fp, fn, match


CLASSIFICATION = image([(10, *THING)], {10: 1}, [(20, *THING)], {20: 3})  # A predicted as B
SEGMENTATION = image([(10, *THING)], {10: 1}, [(20, 0, 10, 0, 4)], {20: 1})  # IoU 0.4
DUPLICATE = image([(10, *THING)], {10: 1}, [(20, 0, 10, 0, 8), (21, 0, 10, 8, 10)], {20: 1, 21: 1})  # TP 0.8 + 0.2
OTHER = image([(10, *THING)], {10: 1}, [(20, 0, 10, 0, 3)], {20: 3})  # B overlaps A with IoU 0.3
# on stuff S (gt 5, pred 50) covering the image
BACKGROUND = image([(5, 0, 40, 0, 40)], {5: 7}, [(50, 0, 40, 0, 40), (20, 20, 30, 20, 30)], {50: 7, 20: 1})
MISSED = image([(5, 0, 40, 0, 40), (10, 20, 30, 20, 30)], {5: 7, 10: 1}, [(50, 0, 40, 0, 40)], {50: 7})


def test_classification() -> None:
    fp, fn, _ = types(CLASSIFICATION)
    assert (fp, fn) == (["classification"], ["classification"])


def test_segmentation() -> None:
    fp, fn, match = types(SEGMENTATION)
    assert (fp, fn) == (["segmentation"], ["segmentation"])
    assert match.fn_pair.tolist() == [pytest.approx(0.4)]


def test_duplicate() -> None:
    fp, fn, match = types(DUPLICATE)
    assert (fp, fn) == (["duplicate"], []) and match.tp_ious.tolist() == [pytest.approx(0.8)]


def test_background_and_missed() -> None:
    assert types(BACKGROUND)[:2] == (["background"], [])  # IoU 100/1600 with S
    assert types(MISSED)[:2] == ([], ["missed"])  # IoU 100/1600 with predicted S


def test_other() -> None:
    assert types(OTHER)[:2] == (["other"], ["other"])


def test_crowd_is_no_overlap_and_ignores_its_category() -> None:
    img = image([(12, *THING)], {12: 1}, [(20, 0, 10, 0, 5), (21, 0, 10, 5, 10)], {20: 3, 21: 1}, crowd=(12,))
    fp, fn, match = types(img)
    assert match.fp_cats.tolist() == [1]  # B counted, A on A's crowd ignored
    assert (fp, fn) == (["background"], [])  # the crowd is never a ground truth to overlap


def test_thresholds_are_strict_above_0_1_and_inclusive_at_0_5() -> None:
    import numpy as np

    same = np.array([0.1, 0.1000001, 0.5, 0.0, 0.0])
    other = np.array([0.0, 0.0, 0.0, 0.5, 0.5000001])
    matched = np.zeros(5, bool)
    assert [ERROR_TYPES[t] for t in fp_types(same, other, matched)] == [
        "background", "segmentation", "segmentation", "other", "classification"]
    assert [ERROR_TYPES[t] for t in fn_types(same, other)] == [
        "missed", "segmentation", "segmentation", "other", "classification"]
    # classification wins over duplicate and segmentation
    assert ERROR_TYPES[fp_types(np.array([0.3]), np.array([0.6]), np.array([True]))[0]] == "classification"


@pytest.mark.parametrize("first", [10, 11])
def test_tie_of_best_ground_truth_goes_to_the_first_in_segments_info(first: int) -> None:
    # g10 and g11 (A, 200 px each); p20 matches g10 (IoU 0.8); p21 straddles both with IoU 1/6 each
    order = [10, 11] if first == 10 else [11, 10]
    img = image([(10, 0, 10, 0, 20), (11, 10, 20, 0, 20)], {10: 1, 11: 1},
                [(20, 0, 8, 0, 20), (21, 8, 12, 0, 20)], {20: 1, 21: 1}, gt_order=order)
    fp, fn, match = types(img)
    assert match.fp_same.tolist() == [pytest.approx(1 / 6)]
    seg = error_breakdown(one_set(img), TABLE.isthing)["errors"]["segmentation"]["delta_PQ"]
    base = pq((0.8, 1, 1, 1))
    if first == 10:  # best = the matched g10: a duplicate; g11 keeps a segmentation error with no pair
        assert (fp, fn, match.fn_pair.tolist()) == (["duplicate"], ["segmentation"], [0.0])
        assert seg == pytest.approx(pq((0.8, 1, 1, 0)) - base)  # the unpaired FN just disappears
    else:  # best = the unmatched g11: a segmentation error, mutual pair
        assert (fp, fn) == (["segmentation"], ["segmentation"])
        assert match.fn_pair.tolist() == [pytest.approx(1 / 6)]
        assert seg == pytest.approx(pq((0.8 + 1 / 6, 2, 0, 0)) - base)  # the pair becomes a TP


def pq(*cats):
    """Mean of per-category (IoU sum, TP, FP, FN) PQs, 0-100."""
    return 100 * sum(i / (t + 0.5 * f + 0.5 * n) for i, t, f, n in cats) / len(cats)


def test_oracle_gains_one_image_each() -> None:
    th = TABLE.isthing
    e = error_breakdown(one_set(CLASSIFICATION), th)
    assert e["PQ"] == 0.0 and e["errors"]["classification"]["delta_PQ"] == pytest.approx(100.0)
    assert e["errors"]["missed"]["delta_PQ"] == 0.0 and e["mask_quality"]["delta_PQ"] == 0.0
    e = error_breakdown(one_set(SEGMENTATION), th)
    assert e["errors"]["segmentation"]["delta_PQ"] == pytest.approx(40.0)  # the pair becomes a TP of IoU 0.4
    e = error_breakdown(one_set(DUPLICATE), th)
    assert e["PQ"] == pytest.approx(pq((0.8, 1, 1, 0)))
    assert e["errors"]["duplicate"]["delta_PQ"] == pytest.approx(80.0 - pq((0.8, 1, 1, 0)))
    assert e["mask_quality"] == pytest.approx({"loss": 0.2, "mean_loss": 0.2,
                                               "delta_PQ": pq((1, 1, 1, 0)) - pq((0.8, 1, 1, 0))})


def test_segmentation_oracle_takes_a_classification_fp_partner_out_of_the_fps() -> None:
    """A (g, 20 px) is an FN whose mutual-best partner p (A, 95 px) lies mostly on B (g', 100 px): p is a
    classification FP (IoU 80/115 with B) and g a segmentation FN (IoU 15/100).  Fixing segmentation pairs
    g with p, so p is a TP, not also an FP: A goes from PQ 0 to 0.15 (not 0.15 / 1.5)."""
    gt = paint(SHAPE, [(5, 0, 40, 0, 40), (30, 0, 10, 0, 10), (10, 10, 12, 0, 10)])
    pred = paint(SHAPE, [(50, 0, 40, 0, 40), (20, 2, 10, 0, 10), (20, 10, 11, 0, 10), (20, 11, 12, 0, 5)])
    img = (gt, infos(gt, {5: 7, 30: 3, 10: 1}), pred, infos(pred, {50: 7, 20: 1}, gt=False))
    fp, fn, match = types(img)
    assert fp == ["classification"] and fn == ["segmentation", "classification"]
    assert match.fn_pair.tolist() == [0.15, 0.0] and match.fn_pair_other.tolist() == [80 / 115, 0.0]
    e = error_breakdown(one_set(img), TABLE.isthing)["errors"]
    assert e["segmentation"]["delta_PQ"] == pytest.approx(100 * 0.15 / 3)  # A, B and S present (T is not)
    assert e["classification"]["delta_PQ"] == pytest.approx(100 * (80 / 115) / 3)  # g' pairs with p as B


def test_a_partner_that_is_not_a_counted_fp_has_no_other_iou() -> None:
    """fn_pair_other is the partner's other-category IoU only when the partner is a counted FP: a partner
    ignored on VOID (more than half of it) is no FP to take out."""
    gt = paint(SHAPE, [(10, 0, 10, 0, 10), (30, 0, 10, 10, 20)])  # A (100 px) and B beside it, VOID below
    pred = paint(SHAPE, [(20, 5, 25, 0, 16)])  # A: 5x10 on A, 5x6 on B, 15x16 on VOID (more than half)
    img = (gt, infos(gt, {10: 1, 30: 3}), pred, infos(pred, {20: 1}, gt=False))
    _, match = run(*img)
    assert len(match.fp_cats) == 0 and match.fn_pair[0] > 0.1 and match.fn_pair_other.tolist() == [0.0, 0.0]


def test_oracle_gains_over_several_images() -> None:
    e = error_breakdown(one_set(CLASSIFICATION, SEGMENTATION, DUPLICATE, OTHER), TABLE.isthing)
    # A: TP 0.8; FP seg + dup; FN class + seg + other.  B: FP class + other
    base = pq((0.8, 1, 2, 3), (0, 0, 2, 0))
    assert e["PQ"] == pytest.approx(base)
    counts = {k: (v["fp"], v["fn"]) for k, v in e["errors"].items()}
    assert counts == {"classification": (1, 1), "segmentation": (1, 1), "duplicate": (1, 0),
                      "background": (0, 0), "missed": (0, 0), "other": (1, 1)}
    d = {k: v["delta_PQ"] for k, v in e["errors"].items()}
    assert d["classification"] == pytest.approx(pq((1.8, 2, 2, 2), (0, 0, 1, 0)) - base)
    assert d["segmentation"] == pytest.approx(pq((1.2, 2, 1, 2), (0, 0, 2, 0)) - base)
    assert d["duplicate"] == pytest.approx(pq((0.8, 1, 1, 3), (0, 0, 2, 0)) - base)
    assert d["other"] == pytest.approx(pq((0.8, 1, 2, 2), (0, 0, 1, 0)) - base)
    assert d["background"] == d["missed"] == 0.0
