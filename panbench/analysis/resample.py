"""The bootstrap's resamples: the draws, their counts and each resample's per-category sums, exact, in C
(``_resample.c``) on the integers of :func:`fixed_sums` (docs/analysis.md, "Confidence intervals": exact sums, the
draws).
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Iterator, Mapping

import numpy as np

from panbench.analysis.collect import Fold
from panbench.pq.extensions import load_extension
from panbench.pq.sums import IOU_SCALE
from panbench.pq.threads import Workers

_c = load_extension("panbench.analysis._resample")
_BLOCK = 32  # PB_BLOCK of _resample.c: the resamples C adds together
CHUNK_BYTES = 8 << 20  # the draws one chunk of the exact sums holds (R x N in all: 160 MB at 1000 x 20,000)


def count_chunks(n_images: int, n_resamples: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """``R x N`` float64 draw counts, ``chunk`` resamples at a time in one reused buffer (use it before the next)."""
    w = np.empty((min(chunk, n_resamples), n_images), np.float64)
    for d in draw_chunks(n_images, n_resamples, seed, chunk):
        for r, row in enumerate(d):  # a row at a time: each count fits the cache (one bincount over the whole
            w[r] = np.bincount(row, minlength=n_images)  # block writes a fresh block-sized array; bench_analysis.py)
        yield w[:len(d)]


_M32 = 0xFFFFFFFF


def _hashmix(value: int, hash_const: list[int], mult: int) -> int:
    """SeedSequence's hashmix (numpy/random/bit_generator.pyx), in uint32 arithmetic; advances ``hash_const``."""
    value = (value ^ hash_const[0]) & _M32
    hash_const[0] = (hash_const[0] * mult) & _M32
    value = (value * hash_const[0]) & _M32
    return value ^ (value >> 16)


def _mix(x: int, y: int) -> int:
    r = (0xCA01F9DD * x - 0x4973F715 * y) & _M32
    return r ^ (r >> 16)


def pcg64_state(seed: int) -> bytes:
    """``SeedSequence(seed).generate_state(4, np.uint64)`` as bytes, without importing numpy.random."""
    seed = operator.index(seed)  # a numpy integer too, as a Python int
    if seed < 0:
        raise ValueError("pcg64_state: a seed is a non-negative integer")
    entropy = [(seed >> (32 * k)) & _M32 for k in range(max(1, -(-seed.bit_length() // 32)))]  # uint32 words
    hc = [0x43B0D7E5]
    pool = [_hashmix(entropy[i] if i < len(entropy) else 0, hc, 0x931E8875) for i in range(4)]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = _mix(pool[i_dst], _hashmix(pool[i_src], hc, 0x931E8875))
    for i_src in range(4, len(entropy)):
        for i_dst in range(4):
            pool[i_dst] = _mix(pool[i_dst], _hashmix(entropy[i_src], hc, 0x931E8875))
    hb = [0x8B51F9DD]
    words = [_hashmix(pool[i % 4], hb, 0x58F38DED) for i in range(8)]
    return struct.pack("<8I", *words)  # 8 uint32 read as 4 little-endian uint64


def draw_chunks(n_images: int, n_resamples: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """The rows of ``np.random.default_rng(seed).integers(0, n_images, size=(n_resamples, n_images))``, ``chunk``
    resamples at a time (``chunk x N`` int64, read-only, in one reused buffer: use it before the next): one
    generator's consecutive draws, drawn in C (without importing numpy.random) below 2^32 images, else by numpy; the
    same numbers either way and at any ``chunk``."""
    gen = _c.generator(pcg64_state(seed)) if 0 < n_images < 2**32 else None
    if gen is None:
        rng = np.random.default_rng(seed)  # consecutive integers() calls continue one stream, as C's draws()
    buf = np.empty((min(chunk, n_resamples), n_images), np.int64)
    for lo in range(0, n_resamples, chunk):
        out = buf[:min(chunk, n_resamples - lo)]
        if gen is None:
            out[...] = rng.integers(0, n_images, size=out.shape)
        else:
            _c.draws(gen, n_images, out)
        out.flags.writeable = False
        yield out


def fixed_sums(x: np.ndarray, iou_cols: list[slice]) -> np.ndarray | None:
    """Per-image sums ``x`` as int64, the ``iou_cols`` in units of 2^-40 (rounded to nearest); None when a resampled
    sum could reach 2^62 or an entry is not finite."""
    if not x.size:
        return np.zeros(x.shape, np.int64)
    return fixed_rows(x, iou_cols) if fits(np.abs(x).max(axis=0), iou_cols, x.shape[0]) else None


def fits(largest: np.ndarray, iou_cols: list[slice], n_images: int) -> bool:
    """Whether columns of largest magnitudes ``largest`` are finite and resample below 2^62 (:func:`fixed_sums`)."""
    if not largest.size:
        return True
    largest = largest.copy()
    for cols in iou_cols:
        largest[cols] *= IOU_SCALE
    return bool(np.isfinite(largest).all()) and float(largest.max()) * n_images < 2.0**62


def fixed_rows(x: np.ndarray, iou_cols: list[slice], rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """:func:`fixed_sums` of ``x``, unchecked; the ``iou_cols`` of the ``rows`` only."""
    out = x.astype(np.int64)  # the counts: integers already
    for cols in iou_cols:
        out[rows, cols] = np.rint(x[rows, cols] * IOU_SCALE)
    return out


def sparse_rows(fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzeros of ``fixed`` row by row (CSR): each row's start (N + 1 entries), column and value."""
    n, k = fixed.shape
    at = np.flatnonzero(fixed)
    return row_starts(at // k, n), at % k, fixed.ravel()[at]


def row_starts(rows: np.ndarray, n: int) -> np.ndarray:
    """Where each of ``n`` rows starts (and the last ends) in entries sorted by their ``rows``."""
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr


def resampled_sums(fixed: np.ndarray, n_resamples: int, seed: int, threads: int = 1) -> np.ndarray:
    """``R x K`` int64: the exact sums of :func:`fixed_sums`' rows over each resample's draws (C on ``threads``)."""
    k = fixed.shape[1]
    return resampled_sparse(*sparse_rows(fixed), k, n_resamples, seed, threads)


def resampled_sparse(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int, n_resamples: int, seed: int,
                     threads: int = 1) -> np.ndarray:
    """:func:`resampled_sums` of the rows :func:`sparse_rows` gives (``k`` columns)."""
    n = len(indptr) - 1
    out = np.empty((n_resamples, k), np.int64)
    chunk = chunk_rows(n, threads)
    with Workers(max(1, min(threads, chunk // _BLOCK)), "panbench-bootstrap") as pool:  # C adds without the GIL
        for lo, drawn in zip(range(0, n_resamples, chunk), draw_chunks(n, n_resamples, seed, chunk)):
            rows = len(drawn)
            step = -(-rows // max(1, threads) // _BLOCK) * _BLOCK or _BLOCK  # whole blocks of C's per thread
            spans = [(a, min(a + step, rows)) for a in range(0, rows, step)]
            for task in [pool.submit(_c.sums, drawn, n, indptr, cols, vals, out[lo:lo + rows], k, a, b)
                         for a, b in spans]:
                task.result()
    return out


def chunk_rows(n_images: int, threads: int) -> int:
    """The resamples of one chunk of draws: as many whole blocks of C's as :data:`CHUNK_BYTES` of draws hold, and
    at least one block per thread."""
    fit = CHUNK_BYTES // (8 * max(1, n_images)) // _BLOCK * _BLOCK
    return max(fit, _BLOCK * max(1, threads))


def as_float(s: np.ndarray, iou_cols: list[slice]) -> np.ndarray:
    """Resampled :func:`resampled_sums` as the float64 sums the metrics read (IoU back in IoU units)."""
    f = s.astype(np.float64)
    for cols in iou_cols:
        f[:, cols] /= IOU_SCALE
    return f


class ImageSums(Fold):
    """Every image's stacked row (:meth:`~panbench.analysis.bootstrap.RunSums.stacked`) in :func:`fixed_sums`'
    fixed point, kept sparse, and each column's largest magnitude: what the intervals resample."""

    def __init__(self, n_categories: int) -> None:
        super().__init__(n_categories)
        self.largest = np.zeros(3 * n_categories, np.float64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.refused = False  # an entry no fixed point holds (not finite, or 2^62 or more)

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        c = self.n_categories
        if self.refused:
            return
        img, col, val = _image_entries(cols, c)
        largest = np.zeros(3 * c, np.float64)
        np.maximum.at(largest, col, np.abs(val))
        np.maximum(self.largest, largest, out=self.largest)
        self.refused = not fits(largest, [slice(0, c)], 1)
        if self.refused:
            return
        fixed = fixed_rows(val[:, None], [slice(0, 1)], col < c)[:, 0]
        nonzero = fixed != 0
        self.parts.append((row_starts(img[nonzero], n_images), col[nonzero], fixed[nonzero]))

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Every image's row as :func:`sparse_rows` gives it, or None where :func:`fixed_sums` refuses the sums."""
        if self.refused or not fits(self.largest, [slice(0, self.n_categories)], self.n_images):
            return None
        starts, ends = [np.zeros(1, np.int64)], 0
        for indptr, _, _ in self.parts:
            starts.append(indptr[1:] + ends)
            ends += int(indptr[-1])
        empty = np.zeros(0, np.int64)
        return (np.concatenate(starts), np.concatenate([empty] + [p[1] for p in self.parts]),
                np.concatenate([empty] + [p[2] for p in self.parts]))


def _image_entries(cols: Mapping[str, np.ndarray], c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stacked rows' entries with a TP, FP or FN (image, column, value) by image then column, each IoU sum
    added in TP order as :meth:`~panbench.analysis.collect.AnalysisSet.per_image` adds it."""
    tk, inv = np.unique(cols["tp_img"] * c + cols["tp_cats"], return_inverse=True)
    iou = np.bincount(inv.ravel(), cols["tp_ious"], minlength=len(tk))
    tp = np.bincount(inv.ravel(), minlength=len(tk))
    ek, err = np.unique(np.concatenate([cols["fp_img"] * c + cols["fp_cats"], cols["fn_img"] * c + cols["fn_cats"]]),
                        return_counts=True)
    img = np.concatenate([tk // c, tk // c, ek // c])
    col = np.concatenate([tk % c, c + tk % c, 2 * c + ek % c])
    val = np.concatenate([iou, tp.astype(np.float64), err.astype(np.float64)])
    order = np.argsort(img * (3 * c) + col)
    return img[order], col[order], val[order]
