"""bootstrap_ci (exact integer sums of the drawn images, in C or through BLAS, five metrics from one pass) against
straightforward references: bit for bit against the exact one (each resample's fixed-point sums added by hand,
nine_metrics, np.percentile), and within 1e-9 of the float64 product of the counts."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_cases import resample_counts
from resample_reference import resampled_sums_blas

from panbench.analysis import resample
from panbench.analysis.bootstrap import RunSums, _factors, bootstrap_ci
from panbench.analysis.metrics import nine_metrics
from panbench.analysis.resample import fixed_sums, resampled_sums


def exact_reference_ci(run: RunSums, isthing: list[bool], n_resamples: int, seed: int) -> dict[str, list[float]]:
    """Each resample's sums added image by image in integers (IoU in units of 2^-40, rounded once per image and
    category), then nine_metrics and np.percentile."""
    draws = np.random.default_rng(seed).integers(0, run.n_images, size=(n_resamples, run.n_images))
    iou_units = [[round(float(v) * 2**40) for v in row] for row in run.iou]
    sums = []
    for d in draws:
        iou = [sum(iou_units[i][k] for i in d) for k in range(run.iou.shape[1])]  # Python ints: exact
        sums.append(([float(v) / 2**40 for v in iou], run.tp[d].sum(0), run.fp[d].sum(0), run.fn[d].sum(0)))
    m = nine_metrics(*(np.array([s[j] for s in sums]) for j in range(4)), isthing)
    a = (1 - 0.95) / 2  # the level's tails as bootstrap_ci computes them (2.5000000000000022, not 2.5)
    return {k: [float(v) for v in np.percentile(m[k], [100 * a, 100 * (1 - a)])]
            for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")}


def reference_ci(run: RunSums, isthing: list[bool], n_resamples: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, run.n_images, size=(n_resamples, run.n_images))
    w = np.zeros((n_resamples, run.n_images))
    for r in range(n_resamples):
        for j in draws[r]:
            w[r, j] += 1
    m = nine_metrics(w @ run.iou, w @ run.tp, w @ run.fp, w @ run.fn, isthing)
    return {k: [float(v) for v in np.percentile(m[k], [2.5, 97.5])] for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")}


def random_run(seed: int, n: int, c: int, density: float) -> RunSums:
    rng = np.random.default_rng(seed)
    on = rng.random((n, c)) < density  # sparse: many categories absent from many resamples
    tp = np.where(on, rng.integers(0, 4, (n, c)), 0).astype(np.float64)
    fp = np.where(on, rng.integers(0, 3, (n, c)), 0).astype(np.float64)
    fn = np.where(on, rng.integers(0, 3, (n, c)), 0).astype(np.float64)
    iou = tp * rng.uniform(0.5, 1.0, (n, c))
    return RunSums(iou, tp, fp, fn, image_ids=list(range(n)))


@pytest.mark.parametrize("seed, n, c, density, things", [
    (0, 40, 9, 0.3, "mixed"), (1, 25, 6, 0.05, "mixed"), (2, 30, 5, 0.4, "all_thing"),
    (3, 30, 5, 0.4, "all_stuff"), (4, 1, 4, 0.8, "mixed"), (5, 60, 12, 0.15, "mixed")])
def test_bootstrap_ci_equals_the_exact_reference_bit_for_bit(seed: int, n: int, c: int, density: float,
                                                             things: str) -> None:
    run = random_run(seed, n, c, density)
    isthing = [k % 2 == 0 for k in range(c)] if things == "mixed" else [things == "all_thing"] * c
    for bseed in (0, 7):
        got = bootstrap_ci(run, isthing, n_resamples=300, seed=bseed, threads=2)
        assert got == exact_reference_ci(run, isthing, 300, bseed)
        want = reference_ci(run, isthing, 300, bseed)  # the float64 product: the same but for its roundings
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-9, rel=0), k


@pytest.mark.parametrize("way", ["c", "c_without_avx2", "blas"])
def test_resampled_sums_are_exact_on_any_threads(way: str) -> None:
    rng = np.random.default_rng(5)
    n = 37
    fixed = np.where(rng.random((n, 11)) < 0.3, rng.integers(0, 2**50, (n, 11)), 0)  # BLAS needs several pieces
    draws = np.random.default_rng(9).integers(0, n, size=(70, n))  # 70: blocks of 32 resamples and a rest
    want = np.array([[sum(int(fixed[i, k]) for i in d) for k in range(11)] for d in draws], dtype=object)
    try:
        if way == "c_without_avx2":
            resample._c.use_avx2(False)
        for threads in (1, 3):
            got = resampled_sums_blas(fixed, 70, 9) if way == "blas" else resampled_sums(fixed, 70, 9, threads)
            assert got.dtype == np.int64 and (got.astype(object) == want).all()
    finally:
        if way != "blas":
            resample._c.use_avx2(True)


def test_sums_that_could_overflow_take_the_float_product() -> None:
    run = random_run(2, 30, 4, 0.5)
    assert fixed_sums(run.stacked(), [slice(0, 4)]) is not None
    big = RunSums(run.iou * 2**18, run.tp, run.fp, run.fn, image_ids=run.image_ids)  # 30 x 2^58: past 2^62
    assert fixed_sums(big.stacked(), [slice(0, 4)]) is None
    broken = run.stacked()
    broken[3, 1] = np.nan  # no integer: the float64 product, which carries the NaN as before
    assert fixed_sums(broken, [slice(0, 4)]) is None
    th = [True, False, True, False]
    got, want = bootstrap_ci(big, th, n_resamples=50, seed=1), reference_ci(big, th, 50, 1)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9, rel=0), k


def test_the_c_sums_refuse_draws_outside_the_images() -> None:
    out = np.empty((2, 3), np.int64)
    ok = (np.zeros((2, 4), np.int64), 4, np.zeros(5, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), out, 3)
    resample._c.sums(*ok, 0, 2)
    with pytest.raises(ValueError, match="draws in 0..n_images-1"):
        resample._c.sums(np.full((2, 4), 4, np.int64), *ok[1:], 0, 2)


def test_resample_counts_equal_reference() -> None:
    draws = np.random.default_rng(3).integers(0, 17, size=(23, 17))
    want = np.stack([np.bincount(row, minlength=17) for row in draws]).astype(np.float64)
    assert np.array_equal(resample_counts(17, 23, 3), want)


def test_float32_columns_only_when_exact() -> None:
    run = random_run(0, 10, 3, 0.5)
    assert _factors(run.stacked(), 3)[1] is not None
    big = RunSums(run.iou, run.tp * 2**22, run.fp, run.fn, image_ids=run.image_ids)  # sums could pass 2**24
    assert _factors(big.stacked(), 3)[1] is None
    th = [True, False, True]
    assert bootstrap_ci(big, th, n_resamples=50, seed=1) == exact_reference_ci(big, th, 50, 1)


SEEDS = [0, 1, 7, 12345, 2**32 - 1, 2**32, 2**40 + 7, 2**64 + 3, 2**100 + 12345, 2**128 + 5, 2**200 + 99]


@pytest.mark.parametrize("seed", SEEDS)
def test_the_pcg64_state_is_seedsequences_without_numpy_random(seed: int) -> None:
    want = np.random.SeedSequence(seed).generate_state(4, np.uint64).astype("<u8").tobytes()
    assert resample.pcg64_state(seed) == want


@pytest.mark.parametrize("seed", SEEDS)
def test_the_c_draws_are_numpys_integers_bit_for_bit(seed: int) -> None:
    """numpy's Generator(PCG64).integers(0, n, size=(R, n)) for a range of one (no draw), powers of two (no
    rejection), odd sizes, and (2000 draws alone) a range where Lemire's rejection is frequent: 3 * 2^30, a quarter
    of the 32-bit draws rejected."""
    for n, rows in ((1, 5), (2, 40), (3, 40), (64, 20), (1000, 30), (4999, 7)):
        np.testing.assert_array_equal(next(resample.draw_chunks(n, rows, seed, rows)),
                                      np.random.default_rng(seed).integers(0, n, size=(rows, n)))
    for n in (3 * 2**30, 2**32 - 1):  # the largest range C takes: 0..2^32 - 2
        got = np.empty(2000, np.int64)
        resample._c.draws(resample._c.generator(resample.pcg64_state(seed)), n, got)
        np.testing.assert_array_equal(got, np.random.default_rng(seed).integers(0, n, size=2000))
    with pytest.raises(ValueError, match="0 < n_images < 2\\^32"):
        resample._c.draws(resample._c.generator(resample.pcg64_state(seed)), 2**32, got)


def test_the_bootstrap_does_not_import_numpy_random() -> None:
    """numpy.random's import is some 20 ms of a score's start-up: the C draws do without it."""
    import subprocess
    import sys

    from panbench.package import REPO_ROOT

    code = ("import sys, numpy as np\n"
            "from panbench.analysis.bootstrap import RunSums, bootstrap_ci\n"
            "run = RunSums(np.ones((30, 2)), np.ones((30, 2)), np.zeros((30, 2)), np.zeros((30, 2)), list(range(30)))\n"
            "bootstrap_ci(run, [True, False], threads=2)\n"
            "assert 'numpy.random' not in sys.modules, 'numpy.random was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr[-1500:]
