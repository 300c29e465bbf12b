"""The analyses' per-image match is the one score_pair derives its PQ contributions from, and it keeps
what the analyses need."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_cases import CATS, TABLE, A, B, infos, paint, run
from helpers import image_pair
from hypothesis import HealthCheck, given, settings

from panbench.analysis import AnalysisSet
from panbench.data.synth import coco_like_categories, perturb, random_image
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import MATCH_FIELDS, CategoryTable, ImageMatch
from panbench.pq.result import from_columns

SYN_CATS = coco_like_categories(8, 6)


def matches_of(a: AnalysisSet) -> list[ImageMatch]:
    """The per-image matches back from a set's columns (``AnalysisSet.from_images`` inverted)."""
    return [ImageMatch(**m) for m in from_columns(a.cols, MATCH_FIELDS, a.n_images)]


def assert_same_decisions(stats, match: ImageMatch) -> None:
    assert np.array_equal(stats.tp_cats, match.tp_cats)
    assert np.array_equal(stats.tp_ious, match.tp_ious)  # same formula, bit for bit
    assert np.array_equal(stats.fn_cats, match.fn_cats)
    assert np.array_equal(stats.fp_cats, match.fp_cats)


@pytest.mark.parametrize("seed", range(12))
def test_score_pair_gives_the_matchs_decisions_on_synthetic_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cats = CategoryTable.from_coco(SYN_CATS)
    for _ in range(3):
        gt = random_image(rng, 60, 80, SYN_CATS, crowd_prob=0.3 if seed % 2 else 0.0)
        pred = perturb(rng, gt, SYN_CATS)
        result = score_pair(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info)
        stats, match = result.stats, result.match
        ref = score_pair(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info, "image").stats
        assert_same_decisions(ref, match)
        for name in ("tp_cats", "tp_ious", "fn_cats", "fp_cats", "sem_gt", "sem_pred", "sem_px"):
            assert np.array_equal(getattr(stats, name), getattr(ref, name)), name
        assert len(match.tp_area) == len(match.tp_cats) and len(match.fp_area) == len(match.fp_cats)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_pair())
def test_same_decisions_on_random_label_maps(pair) -> None:
    from helpers import GENERATED_CATS as PCATS

    g, p = pair
    cats = CategoryTable.from_coco(PCATS)
    ref = score_pair(cats, g.ids, g.segments_info, p.ids, p.segments_info, "image").stats
    match = score_pair(cats, g.ids, g.segments_info, p.ids, p.segments_info).match
    assert_same_decisions(ref, match)
    assert np.all((match.fn_same <= 0.5) & (match.fn_pair <= match.fn_same))
    assert np.all(match.fp_same <= 0.5)


def test_areas_and_best_overlaps_of_a_hand_built_image() -> None:
    # gt: A1 (1024 px) matched, A2 unmatched, B crowd; pred: A over A1, A covering part of A2, B on A2's rest
    gt_ids = paint((64, 64), [(10, 0, 32, 0, 32), (11, 40, 50, 0, 20), (12, 40, 64, 40, 64)])
    pred_ids = paint((64, 64), [(20, 0, 32, 0, 31), (21, 40, 50, 0, 6), (22, 40, 50, 6, 20), (23, 40, 64, 40, 64)])
    gt_info = infos(gt_ids, {10: 1, 11: 1, 12: 3}, crowd={12})
    pred_info = infos(pred_ids, {20: 1, 21: 1, 22: 3, 23: 3}, gt=False)
    stats, match = run(gt_ids, gt_info, pred_ids, pred_info)
    assert match.tp_cats.tolist() == [A] and match.tp_area.tolist() == [1024]
    assert match.tp_ious[0] == pytest.approx(992 / 1024)
    assert match.fn_cats.tolist() == [A] and match.fn_area.tolist() == [200]  # the crowd is never an FN
    assert match.fn_same[0] == pytest.approx(60 / 200) and match.fn_other[0] == pytest.approx(140 / 200)
    assert match.fn_pair[0] == pytest.approx(60 / 200)  # pred 21 is unmatched and A2 is its best A ground truth
    # pred 23 (B on B's crowd) is ignored; pred 21 (A) and 22 (B) are counted FPs
    assert match.fp_cats.tolist() == [A, B] and match.fp_area.tolist() == [60, 140]
    assert match.fp_same.tolist() == pytest.approx([60 / 200, 0.0])
    assert match.fp_other.tolist() == pytest.approx([0.0, 140 / 200])
    assert match.fp_matched.tolist() == [False, False]
    assert match.gt_cats.tolist() == [A, A]  # non-crowd only
    assert match.gt_iou_sum.tolist() == pytest.approx([992 / 1024, 60 / 200])


def test_the_last_crowd_of_a_category_ignores_predictions() -> None:
    # two A crowds: panopticapi keeps the last one in JSON order; a prediction on the first is counted
    gt_ids = paint((10, 20), [(12, 0, 10, 0, 10), (13, 0, 10, 10, 20)])
    pred_ids = paint((10, 20), [(20, 0, 10, 0, 6), (21, 0, 10, 10, 20)])
    gt_info = infos(gt_ids, {12: 1, 13: 1}, crowd={12, 13})
    stats, match = run(gt_ids, gt_info, pred_ids, infos(pred_ids, {20: 1, 21: 1}, gt=False))
    assert_same_decisions(stats, match)
    assert match.fp_cats.tolist() == [A] and match.fp_area.tolist() == [60]
    assert match.fp_same.tolist() == [0.0] and match.fn_cats.tolist() == []


def test_segment_absent_from_the_png_is_the_evaluators_error() -> None:
    from panbench.errors import InputError

    ids = paint((4, 4), [(5, 0, 4, 0, 4)])
    with pytest.raises(InputError, match="segments_info id 6 is absent from the PNG"):
        run(ids, infos(ids, {5: 1}), ids, [{"id": 5, "category_id": 1}, {"id": 6, "category_id": 1}])


def test_empty_images() -> None:
    z = np.zeros((4, 4), np.uint32)
    _, match = run(z, [], z, [])
    assert all(len(getattr(match, f)) == 0 for f in ("tp_cats", "fn_cats", "fp_cats", "gt_cats"))
    only_gt = paint((4, 4), [(5, 0, 4, 0, 4)])
    _, match = run(only_gt, infos(only_gt, {5: 1}), z, [])
    assert match.fn_cats.tolist() == [A] and match.fn_same.tolist() == [0.0] and match.gt_iou_sum.tolist() == [0.0]
    _, match = run(z, [], only_gt, infos(only_gt, {5: 1}, gt=False))
    assert match.fp_cats.tolist() == []  # all on VOID: ignored


def test_set_roundtrip_and_per_image_sums(tmp_path) -> None:
    rng = np.random.default_rng(3)
    cats = CategoryTable.from_coco(SYN_CATS)
    matches, refs = [], []
    for _ in range(5):
        gt = random_image(rng, 40, 50, SYN_CATS)
        pred = perturb(rng, gt, SYN_CATS)
        result = score_pair(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info)
        s, r = result.stats, result.match
        matches.append(r)
        refs.append(s)
    a = AnalysisSet.from_images(matches, len(cats), image_ids=[10, 11, 12, 13, 14])
    iou, tp, fp, fn = a.per_image()
    for k, s in enumerate(refs):
        assert tp[k].tolist() == np.bincount(s.tp_cats, minlength=len(cats)).tolist()
        assert fp[k].tolist() == np.bincount(s.fp_cats, minlength=len(cats)).tolist()
        assert fn[k].tolist() == np.bincount(s.fn_cats, minlength=len(cats)).tolist()
        assert iou[k] == pytest.approx(np.bincount(s.tp_cats, s.tp_ious, minlength=len(cats)))
    assert matches_of(AnalysisSet.from_images([], len(cats))) == []
    assert len(matches_of(a)) == 5
    for r0, r1 in zip(matches, matches_of(a)):
        for name in r0.__dataclass_fields__:
            assert np.array_equal(getattr(r0, name), getattr(r1, name), equal_nan=True), name
    a.save(tmp_path / "a.npz")
    b = AnalysisSet.load(tmp_path / "a.npz")
    assert b.n_categories == a.n_categories and b.image_ids == ["10", "11", "12", "13", "14"]
    for k, v in a.cols.items():
        assert np.array_equal(v, b.cols[k], equal_nan=True) and v.dtype == b.cols[k].dtype, k


def test_a_set_from_the_results_columns_is_the_set_of_their_matches() -> None:
    from panbench.pq.result import results_to_columns

    rng = np.random.default_rng(5)
    cats = CategoryTable.from_coco(SYN_CATS)
    results = []
    for _ in range(4):
        gt = random_image(rng, 40, 50, SYN_CATS)
        pred = perturb(rng, gt, SYN_CATS)
        results.append(score_pair(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info))
    want = AnalysisSet.from_images([r.match for r in results], len(cats), [7, 8, 9, 10], cats.ids, cats.isthing)
    got = AnalysisSet.from_columns(results_to_columns(results), len(cats), [7, 8, 9, 10], cats.ids, cats.isthing)
    assert list(got.cols) == list(want.cols) and got.image_ids == want.image_ids
    for k, v in want.cols.items():
        assert np.array_equal(v, got.cols[k], equal_nan=True) and v.dtype == got.cols[k].dtype, k
    with pytest.raises(ValueError, match="one image id per image"):
        AnalysisSet.from_columns(results_to_columns(results), len(cats), [7, 8, 9])


def test_load_refuses_a_foreign_file(tmp_path) -> None:
    from panbench.errors import InputError

    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="x.npz: not a panbench per-image analysis file"):
        AnalysisSet.load(tmp_path / "x.npz")
    np.savez(tmp_path / "p.npz", format=np.array([{"a": 1}], dtype=object))  # pickled objects, not arrays
    with pytest.raises(InputError) as e:
        AnalysisSet.load(tmp_path / "p.npz")
    said = str(e.value)
    assert "(it holds pickled objects); rerun the `panbench eval`" in said and "allow_pickle" not in said


def test_cats_fixture_is_consistent() -> None:
    assert [c["id"] for c in CATS] == TABLE.ids
