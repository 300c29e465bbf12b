"""The analyses wired to whole runs: per-image matches kept while ``score`` and ``eval`` score,
then every analysis of the run as the keys its JSON output and its record carry.

* :func:`analysis_scorer` is the per-image function :func:`panbench.pq.score.score_stream` calls:
  PQ contributions from the same intersection table as the record (and, with ``boundary``, the
  boundary-PQ contributions), so the PQ sums are those of :func:`panbench.pq.evaluator.score_image`.
* :class:`RunAnalysis` keeps the records of one run keyed by the image's position in the dataset,
  so any split of the images gives the same set; an eval run's
  :class:`~panbench.evaluation.sink.ImageSink` holds it, fills it from the resume cache and carries
  its :meth:`RunAnalysis.payload` across forked CPU processes and torchrun ranks.
* :func:`run_fields` computes the record fields ``ci``, ``by_size``, ``pq_dagger``, ``errors``,
  ``mask_quality`` and, with boundary PQ, ``boundary`` (the nine metrics, 0-100).

Label maps are never kept: a record is a few small arrays per image.  Numpy only.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from panbench.analysis import analyze
from panbench.analysis.bootstrap import N_RESAMPLES
from panbench.analysis.collect import AnalysisSet
from panbench.analysis.pairs import score_image_all
from panbench.errors import PanbenchError
from panbench.pq.matching import METRIC_KEYS, CategoryTable, ImageMatch, ImageStats
from panbench.pq.sums import PQStats, summarize

ImageEntry = tuple[ImageMatch, "ImageStats | None"]  # the match, boundary-PQ contributions


def _score(cats: CategoryTable, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
           where: str, boundary: bool = False, strict: bool = False) -> tuple[ImageStats, ImageEntry]:
    stats, rec, bstats = score_image_all(cats, gt_ids, gt_segs, pred_ids, pred_segs, where, boundary=boundary,
                                         strict=strict)
    return stats, (rec, bstats)


def analysis_scorer(boundary: bool = False, strict: bool = False):
    """The per-image scorer for :func:`panbench.pq.score.score_stream`: ``(stats, (record, boundary stats))``;
    ``strict`` refuses ground-truth ids that segments_info does not list.  Its ``pack``/``unpack`` hand a
    worker's matches over as the columns of one :class:`AnalysisSet` (a few arrays, not 16 per image)."""
    scorer = functools.partial(_score, boundary=boundary, strict=strict)
    if not boundary:  # the boundary-PQ contributions travel as they are
        scorer.pack, scorer.unpack = _pack, _unpack  # type: ignore[attr-defined]
    return scorer


def _pack(records: list[ImageEntry]) -> AnalysisSet:
    return AnalysisSet.from_images([m for m, _ in records], 0)


def _unpack(packed: AnalysisSet) -> list[ImageEntry]:
    return [(m, None) for m in packed.records()]


class RunAnalysis:
    """The per-image matches of one run, keyed by the image's index in the dataset."""

    def __init__(self, boundary: bool = False, strict: bool = False) -> None:
        self.boundary = boundary
        self.strict = strict  # refuse ground-truth ids that segments_info does not list
        self.records: dict[int, ImageEntry] = {}

    def score(self, cats: CategoryTable, index: int, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray,
              pred_segs: list, where: str) -> tuple[ImageStats, ImageEntry]:
        """Score image ``index``; keep its record and return its PQ contributions and the record."""
        stats, rec = _score(cats, gt_ids, gt_segs, pred_ids, pred_segs, where, self.boundary, self.strict)
        self.records[index] = rec
        return stats, rec

    def add(self, index: int, rec: ImageEntry) -> None:
        """Keep the record of an image scored elsewhere (the resume cache)."""
        self.records[index] = rec

    def payload(self) -> dict[int, ImageEntry]:
        """What crosses process boundaries (picklable); :meth:`update` takes it."""
        return dict(self.records)

    def update(self, payload: dict[int, ImageEntry]) -> None:
        self.records.update(payload)

    def analysis_set(self, cats: CategoryTable, image_ids: list[Any]) -> AnalysisSet:
        """The records of images 0..N-1 as one :class:`AnalysisSet`, in dataset order."""
        missing = [i for i in range(len(image_ids)) if i not in self.records]
        if missing:
            raise PanbenchError(f"internal: no per-image analysis for {len(missing)} of {len(image_ids)} images "
                                f"(first: index {missing[0]}); please report")
        return AnalysisSet.from_images([self.records[i][0] for i in range(len(image_ids))], len(cats), image_ids,
                                       cats.ids, cats.isthing)

    def boundary_stats(self, n_categories: int, n_images: int) -> PQStats | None:
        """The boundary-PQ sums of images 0..N-1 (None without boundary PQ)."""
        if not self.boundary:
            return None
        return boundary_sums([self.records[i][1] for i in range(n_images)], n_categories)


def boundary_sums(per_image: list[ImageStats | None], n_categories: int) -> PQStats:
    stats = PQStats.zeros(n_categories)
    if any(s is None for s in per_image):
        raise PanbenchError("internal: an image has no boundary-PQ contributions; please report")
    stats.add_images(per_image)  # type: ignore[arg-type]  # no None: checked above
    return stats


def run_fields(aset: AnalysisSet, cats: CategoryTable, boundary: PQStats | None = None,
               n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The record fields of the default analyses (``ci``, ``by_size``, ``pq_dagger``, ``errors``,
    ``mask_quality``) and, when ``boundary`` is given, ``boundary``: the nine metrics, 0-100."""
    out = analyze(aset, cats.isthing, n_resamples=n_resamples if aset.n_images else 0, seed=seed)
    if boundary is not None:
        res = summarize(boundary, cats.ids, cats.isthing)
        out["boundary"] = {k: res[k] for k in METRIC_KEYS}
    return out


def score_files_analysis(gt_json: str | os.PathLike[str], gt_dir: str | os.PathLike[str],
                         pred_json: str | os.PathLike[str], pred_dir: str | os.PathLike[str],
                         workers: int | None = None,
                         boundary: bool = False,
                         strict: bool = False) -> tuple[dict[str, Any], AnalysisSet, dict[str, Any]]:
    """``score`` with the analyses: the metrics (as :func:`panbench.pq.score.score_files`, bit for bit),
    the per-image matches as an :class:`AnalysisSet` (images in the ground truth's `images` order, as eval) and
    :func:`run_fields`."""
    from panbench.pq.score import score_stream

    ev, pairs, recs = score_stream(gt_json, gt_dir, pred_json, pred_dir, workers, analysis_scorer(boundary, strict))
    cats = ev.categories
    aset = AnalysisSet.from_images([r[0] for r in recs], len(cats), [gt["image_id"] for gt, _ in pairs],
                                   cats.ids, cats.isthing)
    bstats = boundary_sums([r[1] for r in recs], len(cats)) if boundary else None
    return ev.evaluate(), aset, run_fields(aset, cats, bstats)
