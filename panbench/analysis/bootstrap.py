"""Image-level bootstrap confidence intervals for PQ, and the paired bootstrap of a difference, from the exact
resampled sums of :mod:`panbench.analysis.resample` (docs/analysis.md, "Confidence intervals").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.analysis.collect import AnalysisInputs, AnalysisSet, computes
from panbench.analysis.resample import (
    ImageSums,
    as_float,
    count_chunks,
    fixed_sums,
    resampled_sparse,
    resampled_sums,
)
from panbench.errors import InputError
from panbench.pq.sums import category_pq

CI_METRICS = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")
N_RESAMPLES = 1000  # the default number of resamples of every interval (docs/analysis.md)
# Below these no interval (nor a '*') is given: resampling 1 image repeats it ([28.7, 28.7]), a few images give
# intervals far narrower than the truth, and a percentile of a handful of resamples may exclude its own point.
MIN_IMAGES = 10
MIN_RESAMPLES = 100


@dataclass
class RunSums:
    """Per-image per-category sums of one run (``N x C`` each), with what identifies its images."""

    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    image_ids: list[Any]
    fingerprint: str | None = None
    name: str = "run"

    @staticmethod
    def from_analysis(a: AnalysisSet, fingerprint: str | None = None, name: str = "run") -> RunSums:
        return RunSums(*a.per_image(), image_ids=list(a.image_ids), fingerprint=fingerprint, name=name)

    @property
    def n_images(self) -> int:
        return self.iou.shape[0]

    def stacked(self) -> np.ndarray:
        """``N x 3C``: IoU, TP and FP + FN (the metrics read FP and FN only as FP/2 + FN/2 and TP + FP + FN, exact
        with integer counts: the resampling product is a quarter smaller)."""
        return np.concatenate([self.iou, self.tp, self.fp + self.fn], axis=1)


def _factors(x: np.ndarray, n_cat: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` as :func:`_product`'s factors: the IoU columns (float64) and the integer columns in float32 when every
    resampled sum (at most N times the largest entry) is below 2**24, so exact; else ``(x, None)``."""
    ints = x[:, n_cat:]
    if ints.size and float(ints.max()) * x.shape[0] < 2**24:
        return np.ascontiguousarray(x[:, :n_cat]), ints.astype(np.float32)
    return x, None


def _product(w: np.ndarray, f64: np.ndarray, f32: np.ndarray | None) -> np.ndarray:
    """``w @ x`` for the factors of :func:`_factors`."""
    if f32 is None:
        return w @ f64
    return np.concatenate([w @ f64, (w.astype(np.float32) @ f32).astype(np.float64)], axis=1)


def _ci_values(s: np.ndarray, n_cat: int, things: np.ndarray) -> dict[str, np.ndarray]:
    """PQ, SQ, RQ, PQ_th, PQ_st of every resample's stacked sums ``s`` (``R x 3C``):
    :func:`panbench.analysis.metrics.nine_metrics`'s arithmetic, bit for bit (tested)."""
    iou, tp, err = (s[:, k * n_cat:(k + 1) * n_cat] for k in range(3))
    present = (tp + err) > 0
    pq, sq, rq = category_pq(iou, tp, err, 0.0)  # FP + FN as one: 0.5 * err + 0.5 * 0.0, the same value
    out = {}
    for key, c, use in (("PQ", pq, present), ("SQ", sq, present), ("RQ", rq, present),
                        ("PQ_th", np.where(things, pq, 0.0), present & things),
                        ("PQ_st", np.where(~things, pq, 0.0), present & ~things)):
        n = use.sum(axis=-1)
        out[key] = 100 * c.sum(-1) / np.where(n > 0, n, 1)
    return out


def _resampled_sums(x: np.ndarray, iou_cols: list[slice], n_resamples: int, seed: int, chunk: int, threads: int,
                    factors: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]] | None = None
                    ) -> Iterator[np.ndarray]:
    """Every resample's sums of the rows of ``x``, in blocks: exact, or where :func:`fixed_sums` refuses ``x`` the
    float64 :func:`_product` of ``chunk`` resamples' counts at a time with ``factors(x)``."""
    if (fixed := fixed_sums(x, iou_cols)) is not None:
        yield as_float(resampled_sums(fixed, n_resamples, seed, threads), iou_cols)
        return
    f64, f32 = factors(x) if factors is not None else (x, None)
    for w in count_chunks(x.shape[0], n_resamples, seed, chunk):
        yield _product(w, f64, f32)


def _interval(values: np.ndarray, level: float) -> np.ndarray:
    a = (1 - level) / 2
    return percentile(values, [100 * a, 100 * (1 - a)])


def percentile(values: np.ndarray, q: list[float]) -> np.ndarray:
    """``np.percentile(values, q, axis=0)`` (linear method) bit for bit (tested), without importing ``numpy.ma``
    (tens of milliseconds of every ``score`` run).  NaN-free input."""
    v = np.sort(values, axis=0)
    n = v.shape[0]
    virtual = (n - 1) * np.true_divide(np.asarray(q, np.float64), 100)  # numpy's virtual index of the linear method
    prev = np.floor(virtual)
    nxt = prev + 1
    for idx in (prev, nxt):
        idx[virtual >= n - 1], idx[virtual < 0] = -1, 0
    prev_i, next_i = prev.astype(np.intp), nxt.astype(np.intp)
    gamma = (virtual - prev_i).reshape((-1,) + (1,) * (v.ndim - 1))
    a, b = v[prev_i], v[next_i]
    diff = b - a
    out = a + diff * gamma  # numpy's _lerp
    np.subtract(b, diff * (1 - gamma), out=out, where=np.broadcast_to(gamma >= 0.5, out.shape))
    return out


def bootstrap_ci(run: RunSums, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0,
                 level: float = 0.95, chunk: int = 250, threads: int = 1) -> dict[str, list[float]]:
    """``metric -> [low, high]`` (0-100) for :data:`CI_METRICS`, on ``threads`` threads."""
    _check_args(run.n_images, n_resamples, level)
    x, c = run.stacked(), run.iou.shape[1]
    blocks = _resampled_sums(x, [slice(0, c)], n_resamples, seed, chunk, threads, lambda v: _factors(v, c))
    return _intervals(blocks, c, isthing, level)


def _intervals(blocks: Iterator[np.ndarray], c: int, isthing: list[bool], level: float) -> dict[str, list[float]]:
    """:func:`bootstrap_ci`'s intervals of the resampled stacked sums, given in blocks of resamples."""
    things = np.asarray(isthing, bool)
    vals = [_ci_values(s, c, things) for s in blocks]
    return {k: [float(v) for v in _interval(np.concatenate([m[k] for m in vals]), level)] for k in CI_METRICS}


def folded_ci(sums: ImageSums, isthing: list[bool], n_resamples: int, seed: int,
              threads: int) -> dict[str, list[float]] | None:
    """:func:`bootstrap_ci` (95%) of folded :class:`ImageSums`, the same bits; None where their ``rows`` refuse."""
    if (rows := sums.rows()) is None:
        return None
    _check_args(sums.n_images, n_resamples, 0.95)
    c = sums.n_categories
    s = resampled_sparse(*rows, 3 * c, n_resamples, seed, threads)
    return _intervals(iter([as_float(s, [slice(0, c)])]), c, isthing, 0.95)


def check_paired(a: RunSums, b: RunSums) -> None:
    """Refuse, in one line, two runs that were not scored on the same images."""
    if a.fingerprint != b.fingerprint:
        raise InputError(f"{a.name} and {b.name} were scored on different datasets (fingerprint {a.fingerprint}, "
                         f"{_images(a.n_images)} vs {b.fingerprint}, {_images(b.n_images)}); compare runs of the same "
                         "dataset and subset")
    if [str(i) for i in a.image_ids] != [str(i) for i in b.image_ids] or a.iou.shape != b.iou.shape:
        raise InputError(f"{a.name} and {b.name} were scored on different images ({a.n_images} vs {b.n_images} "
                         "images, or another order); compare runs of the same dataset and subset")


def _images(n: int) -> str:
    return f"{n} image{'s' * (n != 1)}"


def paired_bootstrap(a: RunSums, b: RunSums, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0,
                     level: float = 0.95, chunk: int = 250, per_class: bool = True,
                     category_ids: list[int] | None = None, threads: int = 1) -> dict[str, Any]:
    """Intervals of A - B (0-100 points): ``metrics`` (:data:`CI_METRICS`), ``per_class`` (category id as a string,
    or the index -> [low, high]) and ``excludes_zero`` (the metrics whose interval does not contain 0)."""
    check_paired(a, b)
    x, c = np.concatenate([a.stacked(), b.stacked()], axis=1), a.iou.shape[1]
    blocks = _resampled_sums(x, [slice(0, c), slice(3 * c, 4 * c)], n_resamples, seed, chunk, threads)
    return paired_intervals(blocks, a.n_images, n_resamples, c, isthing, level, per_class, category_ids)


def paired_intervals(blocks: Iterable[np.ndarray], n_images: int, n_resamples: int, c: int, isthing: list[bool],
                     level: float = 0.95, per_class: bool = True, category_ids: list[int] | None = None
                     ) -> dict[str, Any]:
    """:func:`paired_bootstrap`'s intervals from the ``n_resamples`` resampled sums of two runs of ``n_images``
    images and ``c`` categories side by side (``R x 6C`` float64, A's stacked sums then B's, in blocks of resamples
    that ``blocks`` makes as they are read: none before the arguments are checked)."""
    _check_args(n_images, n_resamples, level)
    diffs: list[dict[str, np.ndarray]] = []
    cls: list[np.ndarray] = []
    things = np.asarray(isthing, bool)
    for s in blocks:
        ma, mb = _ci_values(s[:, :3 * c], c, things), _ci_values(s[:, 3 * c:], c, things)
        diffs.append({k: ma[k] - mb[k] for k in CI_METRICS})
        if per_class:  # each run's class PQ, FP + FN as one (as _ci_values)
            pa, pb = (category_pq(s[:, o:o + c], s[:, o + c:o + 2 * c], s[:, o + 2 * c:o + 3 * c], 0.0)[0]
                      for o in (0, 3 * c))
            cls.append(100 * pa - 100 * pb)
    metrics = {k: [float(v) for v in _interval(np.concatenate([d[k] for d in diffs]), level)] for k in CI_METRICS}
    out: dict[str, Any] = {"metrics": metrics,
                           "excludes_zero": {k: bool(lo > 0 or hi < 0) for k, (lo, hi) in metrics.items()}}
    if per_class:
        iv = _interval(np.concatenate(cls), level)
        keys = [str(i) for i in category_ids] if category_ids is not None else list(range(c))
        out["per_class"] = {keys[k]: [float(iv[0, k]), float(iv[1, k])] for k in range(c)}
    return out


def too_few(n_images: int, n_resamples: int = N_RESAMPLES) -> str | None:
    """Why no interval is shown for ``n_images`` images and ``n_resamples`` resamples (None: one is)."""
    if n_images < MIN_IMAGES:
        return f"{_images(n_images)}: too few for a bootstrap interval, which needs at least {MIN_IMAGES}"
    if n_resamples < MIN_RESAMPLES:
        return f"{n_resamples} resamples: too few for a 95% interval (use at least {MIN_RESAMPLES}; {N_RESAMPLES} " \
               "is the default)"
    return None


def _check_args(n_images: int, n_resamples: int, level: float) -> None:
    if n_images < 1:
        raise InputError("no images to resample; score at least one image before asking for intervals")
    if n_resamples < 1:
        raise InputError(f"{n_resamples} resamples; use at least 1 ({N_RESAMPLES} is the default)")
    if not 0 < level < 1:
        raise InputError(f"confidence level {level} is not between 0 and 1; use e.g. 0.95")


@computes("ci")
def ci_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """``ci``: the 95% intervals of :data:`CI_METRICS`; none with ``n_resamples`` 0 or :func:`too_few`."""
    a = inp.aset
    if not inp.n_resamples or too_few(a.n_images, inp.n_resamples) is not None:
        return {}
    from panbench.pq.score import available_cores

    threads = available_cores()
    if (ci := folded_ci(inp.sums(ImageSums), inp.isthing, inp.n_resamples, inp.seed, threads)) is None:
        ci = bootstrap_ci(RunSums.from_analysis(a), inp.isthing, n_resamples=inp.n_resamples, seed=inp.seed,
                          threads=threads)
    return {"ci": ci}
