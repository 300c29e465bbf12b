"""The exact resampled sums without C, the reference ``panbench.analysis._resample`` is checked against (and
scripts/bench_analysis.py times): each resample's counts times the fixed-point rows through float64 BLAS."""

from __future__ import annotations

import numpy as np

from panbench.analysis.resample import count_chunks


def resampled_sums_blas(fixed: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``resampled_sums(fixed, n_resamples, seed)`` from numpy's counts of the same draws and :func:`blas_sums`."""
    return np.concatenate([blas_sums(w, fixed) for w in count_chunks(fixed.shape[0], n_resamples, seed, 250)])


def blas_sums(w: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """``w @ fixed`` exactly through float64 BLAS: ``fixed`` in pieces of b bits, every partial sum (at most N times
    2^b) below 2^53, so exact in any order; the pieces' products joined in int64."""
    b = 52 - int(np.ceil(np.log2(max(1, w.shape[1]) + 1)))
    rest = np.abs(fixed)
    sign = np.sign(fixed)
    out = np.zeros((w.shape[0], fixed.shape[1]), np.int64)
    shift = 0
    while rest.any():
        piece = (rest & ((1 << b) - 1)) * sign
        out += np.rint(w @ piece.astype(np.float64)).astype(np.int64) << shift
        rest >>= b
        shift += b
    return out
