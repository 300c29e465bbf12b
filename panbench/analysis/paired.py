"""A run's per-image sums kept sparse for the paired bootstrap (:class:`SparseRun`): the nonzero entries of its
stacked ``N x 3C`` sums (:meth:`~panbench.analysis.bootstrap.RunSums.stacked`) in the fixed point the exact
resampled sums read, a few MB per run where the dense :class:`~panbench.analysis.bootstrap.RunSums` take ``4 N C``
float64 (85 MB at 20,000 images of COCO's 133 categories).  :func:`paired_sparse` resamples two runs' entries side
by side: the same entries that :func:`~panbench.analysis.bootstrap.paired_bootstrap` makes of the dense sums, so the
same intervals, bit for bit (tests/analysis/test_paired_sparse.py); the dense sums are made only for a run whose sums
the fixed point refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.analysis.bootstrap import N_RESAMPLES, RunSums, check_paired, paired_bootstrap, paired_intervals
from panbench.analysis.collect import AnalysisSet
from panbench.analysis.resample import ImageSums, as_float, fits, fixed_rows, resampled_sparse, row_starts
from panbench.analysis.scores import ScoreSums, threshold_sums

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # CSR: each row's start (N + 1), column, int64 value
# the columns of an analysis file that the per-image sums read (SparseRun.of, AnalysisSet.per_image), for
# AnalysisSet.load(path, keys); threshold_rows reads the scores too
PAIRED_COLUMNS = ("tp_img", "tp_cats", "tp_ious", "fp_img", "fp_cats", "fn_img", "fn_cats")
THRESHOLD_COLUMNS = (*PAIRED_COLUMNS, "tp_score", "fp_score")


@dataclass
class SparseRun:
    """One run's per-image sums as the paired bootstrap resamples them: ``rows``, the nonzero fixed-point entries of
    its stacked sums row by row (:func:`~panbench.analysis.resample.sparse_rows` of
    :func:`~panbench.analysis.resample.fixed_sums`), or None where the fixed point refuses them; ``dense()`` then
    makes its :class:`RunSums`."""

    n_categories: int
    image_ids: list[Any]
    rows: Rows | None
    dense: Callable[[], RunSums]
    fingerprint: str | None = None
    name: str = "run"

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    @staticmethod
    def of(a: AnalysisSet, fingerprint: str | None = None, name: str = "run",
           dense: Callable[[], RunSums] | None = None) -> SparseRun:
        """The sums of every image of ``a`` (:class:`~panbench.analysis.resample.ImageSums`); ``dense`` makes its
        :class:`RunSums` where the fixed point refuses them (default: from ``a``, which it then keeps)."""
        return SparseRun(a.n_categories, list(a.image_ids), ImageSums.of(a).rows(),
                         dense or (lambda: RunSums.from_analysis(a, fingerprint, name)), fingerprint, name)

    def shape_only(self) -> RunSums:
        """A :class:`RunSums` of this run's images and shape holding no sums (read-only zero views): what
        :func:`~panbench.analysis.bootstrap.check_paired` reads."""
        zero = np.broadcast_to(np.float64(0.0), (self.n_images, self.n_categories))
        return RunSums(zero, zero, zero, zero, image_ids=self.image_ids, fingerprint=self.fingerprint, name=self.name)


def threshold_rows(a: AnalysisSet, threshold: float) -> Rows | None:
    """The rows of :class:`SparseRun` of run ``a`` with its segments scoring below ``threshold`` removed
    (``score_threshold``'s rule, :func:`~panbench.analysis.scores.threshold_sums`, each image's categories counted
    apart): each (image, category) that has a TP, FP or FN is a cell of :class:`ScoreSums`, and only those cells are
    made; None where the fixed point refuses the sums."""
    n, c = a.n_images, a.n_categories
    cells = [a.cols[g + "_img"] * c + a.cols[g + "_cats"] for g in ("tp", "fp", "fn")]
    used, inv = np.unique(np.concatenate(cells), return_inverse=True)
    inv = inv.ravel()
    ends = np.cumsum([len(x) for x in cells])
    s = ScoreSums(len(used))
    s.add({**a.cols, "tp_cats": inv[:ends[0]], "fp_cats": inv[ends[0]:ends[1]], "fn_cats": inv[ends[1]:]}, n)
    tp, iou, fp, fn = (np.asarray(v, np.float64)[0] for v in threshold_sums(s, np.array([threshold], np.float64)))
    img, cat = used // c, used % c
    return entry_rows(np.concatenate([img, img, img]), np.concatenate([cat, c + cat, 2 * c + cat]),
                      np.concatenate([iou, tp, fp + fn]), n, c)


def entry_rows(img: np.ndarray, col: np.ndarray, val: np.ndarray, n: int, c: int) -> Rows | None:
    """The rows of :class:`SparseRun` from entries (image, column of the stacked ``3C``, float64 value, each cell
    once): the IoU columns rounded to the fixed point, the zeros left out, by image then column; None where the fixed
    point refuses them (:func:`~panbench.analysis.resample.fits`)."""
    largest = np.zeros(3 * c, np.float64)
    np.maximum.at(largest, col, np.abs(val))
    if not fits(largest, [slice(0, c)], n):
        return None
    fixed = fixed_rows(val[:, None], [slice(0, 1)], col < c)[:, 0]
    keep = np.flatnonzero(fixed)
    keep = keep[np.argsort(img[keep] * (3 * c) + col[keep], kind="stable")]
    return row_starts(img[keep], n), col[keep], fixed[keep]


def side_by_side(a: Rows, b: Rows, offset: int) -> Rows:
    """Rows of ``a`` and ``b`` (the same images) as one row each: ``a``'s entries, then ``b``'s with their columns
    moved by ``offset``."""
    (pa, ca, va), (pb, cb, vb) = a, b
    na, nb = np.diff(pa), np.diff(pb)
    indptr = np.zeros(len(pa), np.int64)
    np.cumsum(na + nb, out=indptr[1:])
    cols, vals = np.empty(len(ca) + len(cb), np.int64), np.empty(len(va) + len(vb), np.int64)
    for p, n, col, val, before, shift in ((pa, na, ca, va, np.zeros_like(na), 0), (pb, nb, cb, vb, na, offset)):
        row = np.repeat(np.arange(len(n)), n)  # each entry's image
        at = indptr[:-1][row] + before[row] + (np.arange(len(col)) - p[:-1][row])
        cols[at], vals[at] = col + shift, val
    return indptr, cols, vals


def paired_sparse(a: SparseRun, b: SparseRun, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0,
                  level: float = 0.95, per_class: bool = True, category_ids: list[int] | None = None,
                  threads: int = 1) -> dict[str, Any]:
    """:func:`~panbench.analysis.bootstrap.paired_bootstrap` of A - B from the runs' sparse rows (the dense sums of
    both where either has none): the same resampled sums, the same intervals."""
    check_paired(a.shape_only(), b.shape_only())
    if a.rows is None or b.rows is None:
        return paired_bootstrap(a.dense(), b.dense(), isthing, n_resamples, seed, level, per_class=per_class,
                                category_ids=category_ids, threads=threads)
    c, ra, rb = a.n_categories, a.rows, b.rows

    def blocks() -> Iterator[np.ndarray]:  # made once the arguments are checked
        s = resampled_sparse(*side_by_side(ra, rb, 3 * c), 6 * c, n_resamples, seed, threads)
        yield as_float(s, [slice(0, c), slice(3 * c, 4 * c)])

    return paired_intervals(blocks(), a.n_images, n_resamples, c, isthing, level, per_class, category_ids)
