"""Bootstrap intervals: seeded, vectorized resampling equals resampling by hand, paired differences,
refusals, and coverage on synthetic data with a known population PQ."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_cases import resample_counts

from panbench.analysis import RunSums, bootstrap_ci, paired_bootstrap
from panbench.analysis.bootstrap import CI_METRICS, _ci_values, _factors, _product
from panbench.errors import InputError
from panbench.pq.sums import PQStats, pq_summary

ISTHING = [True, True, True, False, False]


def _resampled(x: np.ndarray, n_cat: int, isthing, w: np.ndarray) -> dict[str, np.ndarray]:
    """The five CI metrics of every resample (rows of ``w``) of the stacked per-image sums ``x``."""
    return _ci_values(_product(w, *_factors(x, n_cat)), n_cat, np.asarray(isthing, bool))


def synthetic_run(rng: np.random.Generator, n_images: int, p_tp=(0.8, 0.6, 0.7, 0.9, 0.5), lam_fp=0.4,
                  n_seg=3) -> RunSums:
    """Per image and category: Poisson(n_seg) ground truths, each a TP with probability p_tp[c] and
    IoU ~ U(0.5, 1), else an FN; Poisson(lam_fp) FPs."""
    c = len(p_tp)
    n = rng.poisson(n_seg, (n_images, c))
    tp = rng.binomial(n, np.array(p_tp))
    fn = n - tp
    fp = rng.poisson(lam_fp, (n_images, c))
    iou = tp * 0.75 + np.sqrt(np.maximum(tp, 0) / 48.0) * rng.standard_normal((n_images, c))  # sum of U(.5, 1)
    iou = np.where(tp > 0, np.clip(iou, 0.5 * tp, tp), 0.0)
    return RunSums(iou, tp.astype(float), fp.astype(float), fn.astype(float), list(range(n_images)), "fp0")


def population_pq(p_tp=(0.8, 0.6, 0.7, 0.9, 0.5), lam_fp=0.4, n_seg=3) -> float:
    """PQ of the population above: per category E[IoU sum] / E[TP + FP/2 + FN/2], averaged."""
    p = np.array(p_tp)
    pq = n_seg * p * 0.75 / (n_seg * p + 0.5 * n_seg * (1 - p) + 0.5 * lam_fp)
    return 100 * float(pq.mean())


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    run = synthetic_run(np.random.default_rng(0), 200)
    a = bootstrap_ci(run, ISTHING, n_resamples=300, seed=7)
    assert a == bootstrap_ci(run, ISTHING, n_resamples=300, seed=7)
    assert a != bootstrap_ci(run, ISTHING, n_resamples=300, seed=8)
    assert set(a) == set(CI_METRICS)
    for lo, hi in a.values():
        assert lo < hi


def test_chunking_does_not_change_the_interval() -> None:
    run = synthetic_run(np.random.default_rng(1), 50)
    assert bootstrap_ci(run, ISTHING, 100, seed=3, chunk=7) == bootstrap_ci(run, ISTHING, 100, seed=3, chunk=1000)


def test_vectorized_resamples_equal_resampling_by_hand() -> None:
    run = synthetic_run(np.random.default_rng(2), 30)
    w = resample_counts(30, 5, seed=11)
    assert w.shape == (5, 30) and np.all(w.sum(axis=1) == 30)
    m = _resampled(run.stacked(), 5, ISTHING, w)
    for r in range(5):
        st = PQStats.zeros(5)
        for k in range(30):
            for _ in range(int(w[r, k])):  # image k drawn w[r, k] times
                st = st + PQStats(np.rint(run.iou[k] * 2**40).astype(np.int64), run.tp[k].astype(np.int64),
                                  run.fp[k].astype(np.int64), run.fn[k].astype(np.int64), 1)
        ref = pq_summary(st, list(range(5)), ISTHING)
        for k in CI_METRICS:
            assert m[k][r] == pytest.approx(ref[k], abs=1e-9), (r, k)


def test_run_against_itself_gives_zero() -> None:
    run = synthetic_run(np.random.default_rng(4), 100)
    out = paired_bootstrap(run, run, ISTHING, n_resamples=200, seed=0)
    assert all(v == [0.0, 0.0] for v in out["metrics"].values())
    assert all(v == [0.0, 0.0] for v in out["per_class"].values())
    assert not any(out["excludes_zero"].values())


def test_paired_difference_of_a_better_run_excludes_zero() -> None:
    rng = np.random.default_rng(5)
    a = synthetic_run(rng, 300)
    b = RunSums(a.iou * 0.9, a.tp, a.fp, a.fn, a.image_ids, a.fingerprint)  # the same run, every IoU 10% lower
    out = paired_bootstrap(a, b, ISTHING, n_resamples=200, seed=1, category_ids=[1, 3, 5, 7, 9])
    assert list(out["per_class"]) == ["1", "3", "5", "7", "9"]
    lo, hi = out["metrics"]["PQ"]
    assert 0 < lo < hi and out["excludes_zero"]["PQ"]
    assert all(lo > 0 for lo, _ in out["per_class"].values())


def test_paired_refuses_other_images_or_datasets() -> None:
    a = synthetic_run(np.random.default_rng(6), 20)
    other_ids = RunSums(a.iou, a.tp, a.fp, a.fn, list(range(1, 21)), a.fingerprint, "B")
    with pytest.raises(InputError, match="different images"):
        paired_bootstrap(a, other_ids, ISTHING, 10)
    other_fp = RunSums(a.iou, a.tp, a.fp, a.fn, a.image_ids, "fp1", "B")
    with pytest.raises(InputError, match="different datasets") as e:
        paired_bootstrap(a, other_fp, ISTHING, 10)
    assert "\n" not in str(e.value)


def test_bad_arguments_are_refused() -> None:
    a = synthetic_run(np.random.default_rng(6), 5)
    with pytest.raises(InputError):
        bootstrap_ci(a, ISTHING, n_resamples=0)
    with pytest.raises(InputError):
        bootstrap_ci(a, ISTHING, level=1.5)


def test_coverage_of_the_population_pq() -> None:
    """200 independent samples of 150 images: the 95% interval holds the population PQ in 95% of
    them, within 4 points (binomial sd of the rate is 1.5 points)."""
    truth = population_pq()
    rng = np.random.default_rng(2026)
    trials, hits = 200, 0
    for t in range(trials):
        lo, hi = bootstrap_ci(synthetic_run(rng, 150), ISTHING, n_resamples=400, seed=t)["PQ"]
        hits += lo <= truth <= hi
    assert abs(hits / trials - 0.95) <= 0.04, hits / trials


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 41, 999, 1000])
def test_percentile_equals_numpys_bit_for_bit(n: int) -> None:
    """The intervals' own percentile (numpy's linear method, without importing numpy.ma) is np.percentile's."""
    from panbench.analysis.bootstrap import percentile

    rng = np.random.default_rng(n)
    for level in (0.95, 0.9, 0.5, 0.99, 0.999):
        q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
        for shape in ((n,), (n, 5), (n, 3, 4)):
            v = rng.normal(size=shape) * 37
            v[: n // 3] = np.round(v[: n // 3], 1)  # ties
            assert np.array_equal(percentile(v, q), np.percentile(v, q, axis=0)), (level, shape)
