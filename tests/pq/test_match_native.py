"""match_image from the C extension (panbench.pq._match) equals the numpy matcher's and the numpy twins'
(tests/kernel_references.py) bit for bit: same values, same dtypes, same order, on label maps and on arbitrary
intersection tables."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import image_pair
from hypothesis import HealthCheck, given, settings
from kernel_references import Twin, areas, fold, numpy_kernels

from panbench.data.synth import coco_like_categories, perturb, random_image
from panbench.pq import matching
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import MATCH_FIELDS, CategoryTable, ImageMatch, Segments, match_image, match_image_numpy

# A, B things; S, T stuff (COCO-like non-contiguous ids)
TABLE = CategoryTable.from_coco([{"id": 1, "name": "A", "isthing": 1}, {"id": 3, "name": "B", "isthing": 1},
                                 {"id": 7, "name": "S", "isthing": 0}, {"id": 9, "name": "T", "isthing": 0}])
A, S = 0, 2  # indices into the table


def paint(shape: tuple[int, int], rects: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Id map: rects (id, y0, y1, x0, x1) painted in order over VOID (0)."""
    m = np.zeros(shape, np.uint32)
    for sid, y0, y1, x0, x1 in rects:
        m[y0:y1, x0:x1] = sid
    return m


def infos(ids: np.ndarray, cats: dict[int, int], crowd: frozenset[int] = frozenset(), gt: bool = True) -> list:
    """segments_info of the ids in ``ids`` (COCO category id per segment id); ``area`` on the ground truth."""
    return [{"id": sid, "category_id": c, "iscrowd": int(sid in crowd), **({"area": int((ids == sid).sum())}
             if gt else {})} for sid, c in sorted(cats.items()) if (ids == sid).any()]


def assert_identical(a: ImageMatch, b: ImageMatch) -> None:
    for name in MATCH_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, (name, x.dtype, y.dtype, x.shape, y.shape)
        assert x.tobytes() == y.tobytes(), name  # bit for bit (array_equal would accept -0.0 for 0.0)


def both(inter: np.ndarray, gt: Segments, pred: Segments) -> tuple[ImageMatch, ImageMatch]:
    return match_image(inter, gt, pred), match_image_numpy(inter, gt, pred)


def score_both(cats: CategoryTable, gt_ids, gt_info, pred_ids, pred_info) -> tuple[ImageMatch, ImageMatch]:
    """One image's match through the C kernels and through their numpy twins (the evaluator's checks on both)."""
    match = score_pair(cats, gt_ids, gt_info, pred_ids, pred_info, "image").match
    with pytest.MonkeyPatch.context() as m:
        numpy_kernels(m)
        ref = score_pair(cats, gt_ids, gt_info, pred_ids, pred_info, "image").match
    return match, ref


@pytest.mark.parametrize("seed", range(8))
def test_synthetic_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    syn = coco_like_categories(8, 6)
    cats = CategoryTable.from_coco(syn)
    for _ in range(4):
        gt = random_image(rng, 60, 80, syn, crowd_prob=0.4 if seed % 2 else 0.0)
        pred = perturb(rng, gt, syn)
        assert_identical(*score_both(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_pair())
def test_random_label_maps(pair) -> None:
    from helpers import GENERATED_CATS

    g, p = pair
    assert_identical(*score_both(CategoryTable.from_coco(GENERATED_CATS), g.ids, g.segments_info, p.ids,
                                 p.segments_info))


def random_table(rng: np.random.Generator, n_gt: int, n_pred: int, n_cats: int = 4):
    """An intersection table with the invariants of one counted from pixels (every prediction's area is
    its column sum, ground-truth areas at least their row sums) but otherwise arbitrary."""
    inter = rng.integers(0, 40, (n_gt + 2, n_pred + 1)) * (rng.random((n_gt + 2, n_pred + 1)) < 0.35)
    inter[:, 1:] += (inter[:, 1:].sum(axis=0) == 0)  # no empty prediction
    gt = Segments(np.arange(1, n_gt + 1), rng.integers(0, n_cats, n_gt), rng.random(n_gt) < 0.25,
                  inter[1 : n_gt + 1].sum(axis=1) + rng.integers(0, 3, n_gt))
    pred = Segments(np.arange(1, n_pred + 1), rng.integers(0, n_cats, n_pred), np.zeros(n_pred, bool),
                    inter[:, 1:].sum(axis=0))
    return inter.astype(np.int64), gt, pred


@pytest.mark.parametrize("shape", [(0, 1), (1, 0), (0, 5), (5, 0), (1, 1), (3, 7), (7, 3), (9, 9), (20, 40)])
def test_random_tables(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for _ in range(200):
        assert_identical(*both(*random_table(rng, *shape)))


@pytest.mark.parametrize("n_pred", [7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 300, 1000])
def test_many_predictions_on_one_ground_truth_sum_in_numpys_order(n_pred: int) -> None:
    """gt_iou_sum (PQ-dagger) adds a row of IoUs: below 8, up to 128 and above 128 entries numpy adds in
    three different orders; the C match must reproduce each (fractions chosen so the order shows)."""
    rng = np.random.default_rng(n_pred)
    for _ in range(20):
        inter, gt, pred = random_table(rng, 2, n_pred, n_cats=1)
        inter[1:3, 1:] = rng.integers(1, 997, (2, n_pred))  # every prediction overlaps both ground truths
        pred.areas = inter[:, 1:].sum(axis=0)
        gt.areas = inter[1:3].sum(axis=1) + 5
        gt.iscrowd[:] = False
        match, ref = both(inter, gt, pred)
        assert_identical(match, ref)
        assert match.gt_iou_sum.tobytes() == np.array([ref.gt_iou_sum[0], ref.gt_iou_sum[1]]).tobytes()


def test_ties_go_to_the_lowest_index() -> None:
    """Ground truth 1 (100 px) has IoU 0.25 with both predictions; prediction 0 lies on it alone, prediction 1's
    best is ground truth 2 (IoU 0.4).  The tie goes to prediction 0, so ground truth 1 has a mutual-best pair."""
    inter = np.array([[0, 0, 0], [45, 25, 30], [0, 0, 20], [0, 0, 0]], np.int64)
    gt = Segments(np.array([1, 2]), np.array([A, A]), np.zeros(2, bool), np.array([100, 20]))
    pred = Segments(np.array([1, 2]), np.array([A, A]), np.zeros(2, bool), np.array([25, 50]))
    match, ref = both(inter, gt, pred)
    assert_identical(match, ref)
    assert match.fn_same.tolist() == [0.25, 0.4] and match.fn_pair.tolist() == [0.25, 0.4]


def test_a_table_with_two_matches_of_one_segment_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No table counted from pixels has a ground truth with two IoU > 0.5 matches; the C path hands such a
    table to numpy rather than writing past the one-match-per-segment arrays."""
    inter = np.array([[0, 0, 0], [0, 10, 10], [0, 0, 0]], np.int64)
    gt = Segments(np.array([1]), np.array([A]), np.array([False]), np.array([1]))  # area 1 < 20: inconsistent
    pred = Segments(np.array([1, 2]), np.array([A, A]), np.zeros(2, bool), np.array([10, 10]))
    assert matching._native.match(inter, 1, 2, gt.cats, gt.areas, gt.iscrowd, pred.cats, pred.areas) is None
    assert_identical(*both(inter, gt, pred))
    assert len(match_image(inter, gt, pred).tp_cats) == 2  # numpy lists both pairs


def test_hand_built_image_with_crowd_void_and_duplicates() -> None:
    """A prediction on a crowd of its category, one on VOID, a mutual-best unmatched pair and a stuff FN."""
    gt_ids = paint((40, 60), [(1, 0, 20, 0, 20), (2, 0, 20, 20, 40), (3, 20, 40, 0, 30), (4, 20, 40, 30, 60)])
    pred_ids = paint((40, 60), [(11, 0, 20, 0, 19), (12, 0, 20, 19, 26), (13, 20, 40, 0, 31), (14, 20, 40, 46, 60),
                                (15, 0, 5, 45, 60)])
    gt_info = infos(gt_ids, {1: 1, 2: 1, 3: 3, 4: 7}, crowd={3})
    pred_info = infos(pred_ids, {11: 1, 12: 1, 13: 3, 14: 7, 15: 9}, gt=False)
    match, ref = score_both(TABLE, gt_ids, gt_info, pred_ids, pred_info)
    assert_identical(match, ref)
    assert match.tp_cats.tolist() == [A] and match.fn_cats.tolist() == [A, S]  # gt 2, the half-covered stuff
    assert match.fp_cats.tolist() == [A, S]  # not B (on the crowd) nor T (on VOID): both ignored
    assert match.fn_pair[0] == match.fn_same[0] == 120 / (140 + 400 - 120)  # gt 2 and prediction 12: mutual best
    assert match.fn_pair[1] == match.fn_same[1] == 280 / 600 and not match.fp_matched.any()


def test_bad_buffers_are_a_value_error() -> None:
    inter, gt, pred = random_table(np.random.default_rng(0), 3, 4)
    with pytest.raises(ValueError, match="int64 table"):
        matching._native.match(inter[:-1], 3, 4, gt.cats, gt.areas, gt.iscrowd, pred.cats, pred.areas)
    with pytest.raises(ValueError, match="int64 table"):
        matching._native.match(inter, 3, 4, gt.cats, gt.areas, gt.iscrowd.astype(np.int64), pred.cats, pred.areas)


@pytest.mark.parametrize("seed", range(200))
def test_table_checks_and_semantic_fold_in_c_equal_the_numpy_twins(seed: int) -> None:
    """evaluator._check_areas (their one-line errors included) and evaluator._image_result's semantic pairs and
    unlisted pixels, from the C extension and from its numpy twins (tests/kernel_references.py: areas, fold, the
    numpy matcher), on arbitrary tables: equal values, dtypes, order."""
    from panbench.errors import InputError
    from panbench.pq.evaluator import _check_areas, _image_result

    rng = np.random.default_rng(seed)
    n_gt, n_pred = (int(x) for x in rng.integers(0, 6, 2))
    inter = rng.integers(0, 4, (n_gt + 2, n_pred + 1)) * rng.integers(0, 2, (n_gt + 2, n_pred + 1))
    slack = rng.integers(-1, 3, n_gt) if rng.random() < 0.3 else np.zeros(n_gt, np.int64)  # -1: too small
    gt = Segments(np.arange(1, n_gt + 1), rng.integers(0, 4, n_gt), rng.random(n_gt) < 0.2,
                  inter[1 : n_gt + 1].sum(axis=1) + slack)
    out = []
    for native in (matching._native, Twin(matching._native, match=lambda *a: None, areas=areas, fold=fold)):
        pred = Segments(np.arange(10, 10 + n_pred), np.arange(n_pred) % 4, np.zeros(n_pred, bool),
                        np.zeros(n_pred, np.int64))
        saved, matching._native = matching._native, native
        try:
            _check_areas(inter, gt, pred, "image 1")
            s = _image_result(inter, gt, pred, match_image(inter, gt, pred))
            out.append((pred.areas, s.sem_gt, s.sem_pred, s.sem_px, s.unlisted_px))
        except InputError as e:
            out.append(str(e))
        finally:
            matching._native = saved
    if isinstance(out[0], str) or isinstance(out[1], str):
        assert out[0] == out[1]
        return
    for x, y in zip(out[0], out[1]):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_the_per_image_match_is_written_in_the_batch_paths_result_layout() -> None:
    """_match.match writes an image's res as the batch path's match_one does (one layout): the batch path's
    decoder (_native.res_columns, then res_fields) reads it into the columns of the match it decodes to."""
    from panbench.pq.batch import res_columns
    from panbench.pq.result import ImageResult, results_to_columns

    rng = np.random.default_rng(3)
    for shape in [(0, 3), (3, 0), (5, 9), (12, 4)]:
        inter, gt, pred = random_table(rng, *shape)
        i64 = [np.ascontiguousarray(a, np.int64) for a in (inter, gt.cats, gt.areas, pred.cats, pred.areas)]
        raw = matching._native.match(i64[0], len(gt), len(pred), i64[1], i64[2],
                                     np.ascontiguousarray(gt.iscrowd, np.bool_), i64[3], i64[4])
        cols = res_columns([(np.frombuffer(raw, np.int64).copy(), 0)])
        want = results_to_columns([ImageResult(match_image(inter, gt, pred))])
        assert cols.keys() == want.keys()
        for k in want:
            assert cols[k].dtype == want[k].dtype and np.array_equal(cols[k], want[k], equal_nan=True), k


def test_the_semantic_fold_is_written_in_the_result_layout_by_c_and_numpy_alike() -> None:
    """_match.fold and its numpy twin write the same res (the fold alone, its header's m and unlisted pixels)."""
    from panbench.pq.matching import res_of

    rng = np.random.default_rng(11)
    for shape in [(0, 0), (0, 4), (6, 0), (7, 5)]:
        inter, gt, pred = random_table(rng, *shape)
        inter[-1, 0] += 5  # pixels whose id is in no segment
        args = (inter, len(gt), len(pred), np.ascontiguousarray(gt.cats, np.int64),
                np.ascontiguousarray(pred.cats, np.int64))
        c, ref = matching._native.fold(*args), fold(*args)
        assert bytes(c) == bytes(ref)
        head = np.frombuffer(c, np.int64)[:10]
        assert head[5] == inter[-1].sum() and len(res_of(c)["sem_px"]) == head[4] == np.count_nonzero(inter[:-1])
