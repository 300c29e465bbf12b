"""The bootstrap's draws stream in chunks of resamples: the same numbers and the same exact sums at any chunk size,
and one chunk, not the R x N draws, is what the sums hold at a time (docs/analysis.md, "Confidence intervals")."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from panbench.analysis import resample
from panbench.analysis.resample import count_chunks, draw_chunks, resampled_sparse, sparse_rows


@pytest.mark.parametrize("n, chunk", [(7, 1), (7, 3), (13, 5), (64, 32), (1, 4), (999, 250), (37, 1000)])
def test_the_draws_in_chunks_are_numpys_integers_of_one_call(n: int,
                                                            chunk: int) -> None:
    """Odd row lengths leave half of a 64-bit output for the next chunk's first draw: it is not lost."""
    want = np.random.default_rng(11).integers(0, n, size=(41, n))
    got = [d.copy() for d in draw_chunks(n, 41, 11, chunk)]
    assert [len(d) for d in got] == [min(chunk, 41 - lo) for lo in range(0, 41, chunk)]
    np.testing.assert_array_equal(np.concatenate(got), want)


def test_the_counts_in_chunks_are_those_of_the_whole_draws() -> None:
    draws = np.random.default_rng(4).integers(0, 29, size=(70, 29))
    want = np.stack([np.bincount(d, minlength=29) for d in draws]).astype(np.float64)
    for chunk in (1, 9, 32, 70, 500):
        np.testing.assert_array_equal(np.concatenate([w.copy() for w in count_chunks(29, 70, 4, chunk)]), want)


def _rows(n: int, k: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return sparse_rows(np.where(rng.random((n, k)) < 0.3, rng.integers(-2**40, 2**40, (n, k)), 0))


@pytest.mark.parametrize("chunk_bytes", [1, 8 * 41 * 33, 8 * 41 * 64, 8 * 41 * 100, 1 << 30])
def test_the_exact_sums_are_the_same_at_any_chunk_size(monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    """Chunks of one block of 32 resamples per thread up to all 150 at once, on one thread and three: the integers
    of the draws added one by one."""
    indptr, cols, vals = _rows(41, 6)
    fixed = np.zeros((41, 6), np.int64)
    fixed[np.repeat(np.arange(41), np.diff(indptr)), cols] = vals
    draws = np.random.default_rng(9).integers(0, 41, size=(150, 41))
    want = np.array([[sum(int(fixed[i, k]) for i in d) for k in range(6)] for d in draws], dtype=object)
    monkeypatch.setattr(resample, "CHUNK_BYTES", chunk_bytes)
    for threads in (1, 3):
        got = resampled_sparse(indptr, cols, vals, 6, 150, 9, threads)
        assert got.dtype == np.int64 and (got.astype(object) == want).all()


def test_a_chunk_of_draws_bounds_the_memory_of_the_exact_sums() -> None:
    """3000 images x 1000 resamples are 24 MB of int64 draws; the sums hold one chunk (CHUNK_BYTES) of them."""
    n, r, k = 3000, 1000, 9
    rows = _rows(n, k)
    want = resampled_sparse(*rows, k, r, 3, 2)
    tracemalloc.start()
    try:
        got = resampled_sparse(*rows, k, r, 3, 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, want)
    assert peak <= resample.CHUNK_BYTES + r * k * 8 + (1 << 20) < r * n * 8 // 2, peak


def test_a_chunk_of_draws_bounds_the_memory_of_the_counts() -> None:
    """The draws a chunk at a time: 100 resamples of 3000 images, not all 1000."""
    n, r, chunk = 3000, 1000, 100
    tracemalloc.start()
    try:
        total = sum(float(w.sum()) for w in count_chunks(n, r, 3, chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == n * r
    assert peak <= 4 * chunk * n * 8 + (1 << 20) < r * n * 8 // 2, peak
