"""The analyses of the predicted segments' own scores (docs/analysis.md, "Segment scores"): PQ against a score
threshold (``score_threshold``) and the calibration of the segment scores (``calibration``).  Both read the scores
of the matched and counted-unmatched predictions, the columns ``tp_score`` and ``fp_score`` (NaN: no score), folded
by :class:`ScoreSums`; a run without any score gets neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from panbench.analysis.bootstrap import percentile, too_few
from panbench.analysis.collect import AnalysisInputs, Fold, computes, counts
from panbench.analysis.resample import count_chunks, fits, resampled_sparse, row_starts
from panbench.errors import InputError
from panbench.pq.sums import IOU_BITS, IOU_SCALE, PQ_GROUPS, category_pq, group_mask

THRESHOLDS = tuple(k / 100 for k in range(101))  # 0.0, 0.01, ..., 1.0: the grid of every score_threshold
N_BINS = 10  # the calibration's bins
CURVES = ("PQ", "PQ_th", "PQ_st", "SQ", "RQ")  # score_threshold's curves, 0-100
ECE_GROUPS = (("", None), ("_th", True), ("_st", False))  # all, things, stuff: key suffix, isthing
NO_SCORE = "no predicted segment has a usable score"
# why, by what ran the panoptic fusion (a record's ``fusion``): mmdet's own, or anything else (panbench's, none)
MMDET_FUSION = "mmdet's own fusion (--fusion mmdet) gives none; leave --fusion mmdet out: panbench's fusion keeps " \
    "each segment's score"
PREDICTIONS_NEED = "predictions get them as a \"score\" per segment in segments_info, the model's, a float in [0, 1] " \
    "(one outside it leaves every score out, with a note)"


def no_score(fusions: Iterable[str | None]) -> str:
    """Why runs have no segment score analyses: mmdet's own fusion where one of them ran it (``fusions``: the runs'
    ``fusion``), what predictions need where one did not."""
    ran = set(fusions)
    why = ([MMDET_FUSION] if "mmdet" in ran else []) + ([PREDICTIONS_NEED] if ran - {"mmdet"} else [])
    return f"{NO_SCORE}: {'; '.join(why)}"


class ScoreSums(Fold):
    """Per category the PQ sums of the segments without a score (TP, IoU in :data:`IOU_SCALE` units, FP) and every
    FN, and the scored TPs (category, score, IoU, image) and counted FPs (category, score, image) as rows."""

    def __init__(self, n_categories: int) -> None:
        super().__init__(n_categories)
        self.tp, self.iou, self.fp, self.fn = (np.zeros(n_categories, np.int64) for _ in range(4))
        self.parts: list[tuple[np.ndarray, ...]] = []

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        c = self.n_categories
        tp_cats, fp_cats = cols["tp_cats"], cols["fp_cats"]
        tp_s = cols["tp_score"] if "tp_score" in cols else np.full(len(tp_cats), np.nan)  # a run before scores
        fp_s = cols["fp_score"] if "fp_score" in cols else np.full(len(fp_cats), np.nan)
        ts, fs = ~np.isnan(tp_s), ~np.isnan(fp_s)
        fixed = np.rint(cols["tp_ious"] * IOU_SCALE).astype(np.int64)  # PQStats' fixed point
        np.add.at(self.iou, tp_cats[~ts], fixed[~ts])
        self.tp += counts(tp_cats[~ts], c)
        self.fp += counts(fp_cats[~fs], c)
        self.fn += counts(cols["fn_cats"], c)
        at = self.n_images
        self.parts.append((tp_cats[ts], tp_s[ts], fixed[ts], cols["tp_img"][ts] + at,
                           fp_cats[fs], fp_s[fs], cols["fp_img"][fs] + at))

    def rows(self) -> tuple[np.ndarray, ...]:
        """The scored rows: TP category, score, fixed-point IoU, image; FP category, score, image."""
        kinds = (np.int64, np.float64, np.int64, np.int64, np.int64, np.float64, np.int64)
        return tuple(np.concatenate([np.zeros(0, k)] + [p[i] for p in self.parts]) for i, k in enumerate(kinds))

    @property
    def scored(self) -> int:
        return sum(len(p[1]) + len(p[5]) for p in self.parts)

    @property
    def unscored(self) -> int:
        return int(self.tp.sum() + self.fp.sum())


def thresholds_with(own: float | None) -> np.ndarray:
    """:data:`THRESHOLDS` with the model's own threshold ``own`` inserted in order (when given and not there)."""
    t = set(THRESHOLDS)
    if own is not None:
        if not (np.isfinite(own) and 0.0 <= own <= 1.0):
            raise InputError(f"the model's own score threshold {own!r} is not a number in [0, 1]")
        t.add(float(own))
    return np.array(sorted(t), np.float64)  # not np.unique: its first call imports numpy.ma (7 ms)


def kept(grid: np.ndarray, c: int) -> np.ndarray:
    """``K x C`` from a flat ``C x (K + 1)`` grid of rows counted at their first threshold above their score: per
    threshold the sum over the rows it keeps (score >= threshold), the grid's suffix sums."""
    g = grid.reshape(c, -1)
    return np.cumsum(g[:, ::-1], axis=1)[:, ::-1][:, 1:].T


def threshold_sums(s: ScoreSums, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``K x C`` TP, IoU sum (float64, as :attr:`~panbench.pq.sums.PQStats.iou_sum` rounds it), FP and FN at each
    threshold of ``t``: a segment scoring below it removed (a TP's ground truth then an FN, an FP gone)."""
    tp_c, tp_s, tp_iou, _, fp_c, fp_s, _ = s.rows()
    c, k = s.n_categories, len(t) + 1
    tp_at = tp_c * k + np.searchsorted(t, tp_s, side="right")  # kept at the thresholds before that index
    fp_at = fp_c * k + np.searchsorted(t, fp_s, side="right")
    kept_tp = kept(np.bincount(tp_at, minlength=c * k), c)
    kept_fp = kept(np.bincount(fp_at, minlength=c * k), c)
    iou_fixed = s.iou + kept(exact_bincount(tp_at, tp_iou, c * k), c)
    iou = (iou_fixed >> IOU_BITS) + (iou_fixed & ((1 << IOU_BITS) - 1)) / IOU_SCALE
    return s.tp + kept_tp, iou, s.fp + kept_fp, s.fn + counts(tp_c, c) - kept_tp


def curves(tp: np.ndarray, iou: np.ndarray, fp: np.ndarray, fn: np.ndarray, isthing: list[bool]) -> dict[str, list]:
    """:data:`CURVES` of ``K x C`` sums, each threshold's as :func:`~panbench.pq.sums.pq_summary` averages one run's
    (the sum of the categories with a TP, FP or FN, each row's own contiguous array, over their number): bit for
    bit the run's PQ at a threshold that removes nothing."""
    things = np.asarray(isthing, bool)
    pq, sq, rq = category_pq(iou, tp, fp, fn)
    present = (tp + fp + fn) > 0
    out: dict[str, list] = {}
    for _, sfx, th in PQ_GROUPS:
        use = present & group_mask(things, th)
        n = use.sum(axis=1)
        cuts, div = np.cumsum(n)[:-1], np.where(n > 0, n, 1)
        for key, v in (("PQ", pq), ("SQ", sq), ("RQ", rq)) if not sfx else (("PQ", pq),):
            out[key + sfx] = [100 * float(part.sum() / d) for part, d in zip(np.split(v[use], cuts), div)]
    return {k: out[k] for k in CURVES}


def score_threshold(s: ScoreSums, isthing: list[bool], own: float | None = None) -> dict[str, Any]:
    """The ``score_threshold`` record field (docs/analysis.md): the curves over :func:`thresholds_with` ``own``, the
    best threshold (the lowest reaching the highest PQ), the own one's PQ and the gain."""
    t = thresholds_with(own)
    tp, iou, fp, fn = threshold_sums(s, t)
    out: dict[str, Any] = {"thresholds": [float(v) for v in t], **curves(tp, iou, fp, fn, isthing)}
    pq = out["PQ"]
    best = int(np.argmax(pq))
    out["best"] = {"threshold": float(t[best]), "PQ": pq[best]}
    at = None if own is None else int(np.searchsorted(t, own))
    out["own"] = None if at is None else {"threshold": float(t[at]), "PQ": pq[at]}
    out["gain"] = None if at is None else pq[best] - pq[at]
    out["segments"], out["unscored"] = s.scored, s.unscored
    return out


def scored_segments(s: ScoreSums, isthing: list[bool]) -> tuple[np.ndarray, ...]:
    """Every scored segment, TPs then FPs: score, correct (1.0 for a TP), is a thing, image."""
    tp_c, tp_s, _, tp_img, fp_c, fp_s, fp_img = s.rows()
    things = np.asarray(isthing, bool)
    return (np.concatenate([tp_s, fp_s]), np.concatenate([np.ones(len(tp_s)), np.zeros(len(fp_s))]),
            things[np.concatenate([tp_c, fp_c])], np.concatenate([tp_img, fp_img]))


def score_bin(scores: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """The equal-width bin of each score: ``min(floor(n_bins * s), n_bins - 1)``."""
    return np.minimum(np.floor(n_bins * scores), n_bins - 1).astype(np.int64)


def reliability(scores: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Equal-width bins: edges, count, mean score and fraction correct (None where a bin is empty)."""
    b = score_bin(scores, n_bins)
    n = np.bincount(b, minlength=n_bins)
    conf = np.bincount(b, scores, minlength=n_bins)
    acc = np.bincount(b, correct, minlength=n_bins)
    return {"edges": [k / n_bins for k in range(n_bins + 1)], "count": [int(v) for v in n],
            "score": [float(conf[k] / n[k]) if n[k] else None for k in range(n_bins)],
            "accuracy": [float(acc[k] / n[k]) if n[k] else None for k in range(n_bins)]}


def ece(bins: Mapping[str, Any]) -> float | None:
    """ECE of :func:`reliability`'s bins: sum over bins of (n_b / N) |accuracy_b - mean score_b|."""
    n = sum(bins["count"])
    if not n:
        return None
    return float(sum(m / n * abs(a - c) for m, a, c in zip(bins["count"], bins["accuracy"], bins["score"]) if m))


def ece_mass(scores: np.ndarray, correct: np.ndarray, order: np.ndarray, n_bins: int = N_BINS) -> float | None:
    """ECE over equal-mass bins: the segments in ``order`` (theirs sorted by score, stable) cut into ``n_bins`` nearly
    equal runs as ``np.array_split`` cuts them (the first ``N % n_bins`` one longer)."""
    n = len(order)
    if not n:
        return None
    sizes = np.full(n_bins, n // n_bins) + (np.arange(n_bins) < n % n_bins)
    sizes = sizes[sizes > 0]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    conf, acc = (np.add.reduceat(v[order], starts) / sizes for v in (scores, correct))
    return float(np.sum(sizes / n * np.abs(acc - conf)))


def calibration(s: ScoreSums, isthing: list[bool], n_resamples: int, seed: int = 0,
                threads: int = 1) -> dict[str, Any]:
    """The ``calibration`` record field (docs/analysis.md): ECE (equal-width and equal-mass) of all, thing and stuff
    segments, their bins and, where :func:`~panbench.analysis.bootstrap.too_few` allows, 95% image-bootstrap
    bounds of the equal-width ECEs."""
    scores, correct, thing, img = scored_segments(s, isthing)
    out: dict[str, Any] = {}
    bins: dict[str, Any] = {}
    for sfx, th in ECE_GROUPS:
        sel = slice(None) if th is None else thing == th
        bins["bins" + sfx] = reliability(scores[sel], correct[sel])
        out["ece" + sfx] = ece(bins["bins" + sfx])
    # each group's sorted order is its part of the whole's (stable); scores in [0, 1] sort as their bits, an int64 sort
    # 1.5x as fast as a float64 one (+ 0.0: -0.0 is 0.0)
    order = np.argsort((scores + 0.0).view(np.int64), kind="stable")
    for sfx, th in ECE_GROUPS:
        out["ece_mass" + sfx] = ece_mass(scores, correct, order if th is None else order[thing[order] == th])
    if n_resamples and too_few(s.n_images, n_resamples) is None:
        low, high = ece_interval(scores, correct, thing, img, s.n_images, n_resamples, seed, threads)
        out["low"], out["high"] = ({"ece" + sfx: v[k] if out["ece" + sfx] is not None else None
                                    for k, (sfx, _) in enumerate(ECE_GROUPS)} for v in (low, high))
    return {**out, **bins, "n_bins": N_BINS, "segments": len(scores)}


def image_bin_sums(scores: np.ndarray, correct: np.ndarray, thing: np.ndarray, img: np.ndarray,
                   n_images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image, sparse (CSR rows as :func:`~panbench.analysis.resample.sparse_rows`): for things then stuff, each
    bin's correct minus score summed (in :data:`IOU_SCALE` units, exact), then the two groups' segment counts."""
    k = 2 * N_BINS + 2
    base = img * k  # each image's row; a segment's bin column, then its group's count column, added in place
    keys = score_bin(scores)
    keys += base
    keys[~thing] += N_BINS
    vals = np.rint(correct * IOU_SCALE).astype(np.int64)
    vals -= np.rint(scores * IOU_SCALE).astype(np.int64)
    sums = exact_bincount(keys, vals, n_images * k)
    del keys, vals
    base += np.where(thing, 2 * N_BINS, 2 * N_BINS + 1)
    sums += np.bincount(base, minlength=n_images * k)  # count columns: no bin column is one
    at = np.flatnonzero(sums)
    return row_starts(at // k, n_images), at % k, sums[at]


def exact_bincount(keys: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(keys, vals, n)`` of int64 ``vals`` below 2^41 in magnitude, exact (int64): their high and low
    21 bits counted apart, each float64 sum below 2^53 for fewer than 2^32 rows."""
    hi = np.bincount(keys, (vals >> 21).astype(np.float64), n)
    lo = np.bincount(keys, (vals & ((1 << 21) - 1)).astype(np.float64), n)
    return (hi.astype(np.int64) << 21) + lo.astype(np.int64)


def resampled_bins(rows: tuple[np.ndarray, np.ndarray, np.ndarray], n_images: int, n_resamples: int, seed: int,
                   threads: int) -> np.ndarray:
    """``R x (2 n_bins + 2)`` float64: each resample's sums of :func:`image_bin_sums`' rows, the PQ interval's
    draws; exact (int64) where they fit, else the float64 products of the draw counts."""
    indptr, cols, vals = rows
    k = 2 * N_BINS + 2
    largest = np.zeros(k, np.float64)
    np.maximum.at(largest, cols, np.abs(vals).astype(np.float64))
    if fits(largest, [], n_images):
        return resampled_sparse(indptr, cols, vals, k, n_resamples, seed, threads).astype(np.float64)
    dense = np.zeros((n_images, k), np.float64)
    dense[np.repeat(np.arange(n_images), np.diff(indptr)), cols] = vals
    return np.concatenate([w @ dense for w in count_chunks(n_images, n_resamples, seed, 250)])


def ece_interval(scores: np.ndarray, correct: np.ndarray, thing: np.ndarray, img: np.ndarray, n_images: int,
                 n_resamples: int, seed: int, threads: int) -> tuple[list[float | None], list[float | None]]:
    """95% image-bootstrap bounds of the equal-width ECE of all, thing and stuff segments (ECE = sum over bins of
    |correct - score| / N); a resample without a segment of a group leaves that resample out of its interval."""
    s = resampled_bins(image_bin_sums(scores, correct, thing, img, n_images), n_images, n_resamples, seed, threads)
    th, st = s[:, :N_BINS], s[:, N_BINS:2 * N_BINS]
    n_th, n_st = s[:, 2 * N_BINS], s[:, 2 * N_BINS + 1]
    low: list[float | None] = []
    high: list[float | None] = []
    a = (1 - 0.95) / 2  # as bootstrap_ci's
    for diff, n in ((th + st, n_th + n_st), (th, n_th), (st, n_st)):
        ok = n > 0
        if not ok.any():
            low.append(None)
            high.append(None)
            continue
        e = np.abs(diff[ok]).sum(axis=1) / IOU_SCALE / n[ok]
        lo, hi = percentile(e, [100 * a, 100 * (1 - a)])
        low.append(float(lo))
        high.append(float(hi))
    return low, high


@computes("score_threshold")
def score_threshold_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """``score_threshold``: none when no predicted segment has a score."""
    s = inp.sums(ScoreSums)
    return {"score_threshold": score_threshold(s, inp.isthing, inp.own_threshold)} if s.scored else {}


@computes("calibration")
def calibration_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """``calibration``: none when no predicted segment has a score."""
    s = inp.sums(ScoreSums)
    if not s.scored:
        return {}
    return {"calibration": calibration(s, inp.isthing, inp.n_resamples, inp.seed)}  # one thread: 2 N_BINS + 2 sums
