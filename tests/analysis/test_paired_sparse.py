"""The paired bootstrap from runs' sparse per-image rows (panbench/analysis/paired.py), which `table`, `report` and
`compare` use instead of the dense N x C sums: the same entries as the dense path resamples, so the same intervals
bit for bit, at the defaults and at a score threshold; the dense sums only where the fixed point refuses a run."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.analysis import AnalysisSet, RunSums, paired_bootstrap
from panbench.analysis.paired import PAIRED_COLUMNS, SparseRun, paired_sparse, side_by_side, threshold_rows
from panbench.analysis.resample import fixed_sums, sparse_rows
from panbench.errors import InputError
from panbench.reporting.pairing import sums_at_threshold

C = 7
ISTHING = [True, True, True, False, False, False, False]
CATEGORY_IDS = [1, 2, 3, 10, 11, 12, 13]


def random_run(seed: int, n: int = 40, empty: tuple[int, ...] = (3, 17)) -> AnalysisSet:
    """A run's per-image columns: 0-5 TPs (IoU 0.5-1, a score or none), FPs and FNs per image, by image, several in
    a category at times; the ``empty`` images have none."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("tp_img", "tp_cats", "tp_ious", "tp_score", "fp_img", "fp_cats",
                                             "fp_score", "fn_img", "fn_cats")}
    for i in range(n):
        if i in empty:
            continue
        for g in ("tp", "fp", "fn"):
            k = int(rng.integers(0, 6))
            cols[g + "_img"] += [i] * k
            cols[g + "_cats"] += rng.integers(0, C, k).tolist()
            if g != "fn":
                score = rng.random(k)
                cols[g + "_score"] += np.where(rng.random(k) < 0.2, np.nan, np.round(score, 4)).tolist()
            if g == "tp":
                cols["tp_ious"] += (0.5 + 0.5 * rng.random(k)).tolist()
    arrays = {k: np.asarray(v, np.float64 if k.endswith(("ious", "score")) else np.int64) for k, v in cols.items()}
    return AnalysisSet(C, [f"img{i}" for i in range(n)], arrays, CATEGORY_IDS, ISTHING)


def dense_rows(a: RunSums, b: RunSums) -> tuple[np.ndarray, ...]:
    """The entries the dense paired bootstrap resamples: both runs' stacked sums side by side, in fixed point."""
    x = np.concatenate([a.stacked(), b.stacked()], axis=1)
    return sparse_rows(fixed_sums(x, [slice(0, C), slice(3 * C, 4 * C)]))


def test_two_runs_side_by_side_are_the_entries_that_the_dense_pairing_resamples() -> None:
    a, b = random_run(1), random_run(2, empty=(0, 39))
    got = side_by_side(SparseRun.of(a).rows, SparseRun.of(b).rows, 3 * C)
    want = dense_rows(RunSums.from_analysis(a), RunSums.from_analysis(b))
    assert len(want[1]) > 400  # entries of both runs in most images
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)


@pytest.mark.parametrize("ta, tb", [(0.0, 0.0), (0.35, 0.6), (0.5, 1.0)])
def test_a_run_at_a_score_threshold_has_the_entries_of_its_dense_sums_there(ta: float, tb: float) -> None:
    a, b = random_run(3), random_run(4)
    got = side_by_side(threshold_rows(a, ta), threshold_rows(b, tb), 3 * C)
    want = dense_rows(sums_at_threshold(a, ta), sums_at_threshold(b, tb))
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_the_sparse_pairing_gives_the_dense_pairings_intervals_bit_for_bit() -> None:
    a, b = random_run(5), random_run(6)
    want = paired_bootstrap(RunSums.from_analysis(b, "f", "B"), RunSums.from_analysis(a, "f", "A"), ISTHING,
                            n_resamples=300, seed=3, per_class=True, category_ids=CATEGORY_IDS)
    got = paired_sparse(SparseRun.of(b, "f", "B"), SparseRun.of(a, "f", "A"), ISTHING, n_resamples=300, seed=3,
                        per_class=True, category_ids=CATEGORY_IDS)
    assert got == want and set(got["per_class"]) == {str(c) for c in CATEGORY_IDS}
    at = [SparseRun(C, b.image_ids, threshold_rows(b, 0.6), lambda: sums_at_threshold(b, 0.6)),
          SparseRun(C, a.image_ids, threshold_rows(a, 0.4), lambda: sums_at_threshold(a, 0.4))]
    assert paired_sparse(*at, ISTHING, n_resamples=300, per_class=False) == paired_bootstrap(
        sums_at_threshold(b, 0.6), sums_at_threshold(a, 0.4), ISTHING, n_resamples=300, per_class=False)


def test_a_run_that_the_fixed_point_refuses_is_paired_from_its_dense_sums() -> None:
    a, b = random_run(7), random_run(8)
    b.cols["tp_ious"][0] = 2e5  # an IoU whose 40 resampled images could reach 2^62 in fixed point
    made = []

    def dense() -> RunSums:
        made.append(1)
        return RunSums.from_analysis(b, "f", "B")

    sb = SparseRun.of(b, "f", "B", dense=dense)
    assert sb.rows is None and threshold_rows(b, 0.0) is None  # at a score threshold too
    got = paired_sparse(sb, SparseRun.of(a, "f", "A"), ISTHING, n_resamples=200)
    assert made == [1] and got == paired_bootstrap(RunSums.from_analysis(b, "f", "B"),
                                                   RunSums.from_analysis(a, "f", "A"), ISTHING, n_resamples=200)


def test_runs_on_other_images_are_refused_in_the_dense_pairings_words() -> None:
    a, b = random_run(9), random_run(10, n=39)
    with pytest.raises(InputError) as dense:
        paired_bootstrap(RunSums.from_analysis(a, "f", "A"), RunSums.from_analysis(b, "f", "B"), ISTHING)
    with pytest.raises(InputError) as sparse:
        paired_sparse(SparseRun.of(a, "f", "A"), SparseRun.of(b, "f", "B"), ISTHING)
    assert str(sparse.value) == str(dense.value) and "different images (40 vs 39 images" in str(sparse.value)
    none = SparseRun.of(random_run(11, n=0))
    assert none.rows is not None
    with pytest.raises(InputError, match="no images to resample"):
        paired_sparse(none, none, ISTHING)


def test_an_analysis_file_read_for_some_columns_holds_only_those(tmp_path) -> None:
    a = random_run(12)
    a.cols.update({k: np.zeros(len(a.cols[k[:2] + "_cats"]), np.float64) for k in ("fn_pair", "fp_same")})
    a.save(tmp_path / "run.npz")
    some = AnalysisSet.load(tmp_path / "run.npz", PAIRED_COLUMNS)
    assert sorted(some.cols) == sorted(PAIRED_COLUMNS) and some.isthing == ISTHING and some.image_ids == a.image_ids
    every = AnalysisSet.load(tmp_path / "run.npz")
    assert sorted(every.cols) == sorted([*a.cols, "fn_pair_other"])  # absent, as in format 1: made as zeros
    assert SparseRun.of(some).rows is not None
    for g, w in zip(SparseRun.of(some).rows, SparseRun.of(every).rows):
        assert np.array_equal(g, w)
