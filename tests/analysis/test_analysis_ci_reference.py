"""bootstrap_ci (chunked counts, float32 integer columns, five metrics from one pass) against a
straightforward reference: all draws at once, one float64 product, nine_metrics, np.percentile."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.analysis.bootstrap import RunSums, _factors, bootstrap_ci, resample_counts
from panbench.analysis.metrics import nine_metrics


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
def test_bootstrap_ci_equals_reference(seed: int, n: int, c: int, density: float, things: str) -> None:
    run = random_run(seed, n, c, density)
    isthing = [k % 2 == 0 for k in range(c)] if things == "mixed" else [things == "all_thing"] * c
    for bseed in (0, 7):
        got, want = bootstrap_ci(run, isthing, n_resamples=300, seed=bseed, chunk=64), reference_ci(
            run, isthing, 300, bseed)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-12, rel=0), k


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
    got, want = bootstrap_ci(big, th, n_resamples=50, seed=1), reference_ci(big, th, 50, 1)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-12, rel=0), k
