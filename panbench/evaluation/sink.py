"""The one place an eval run keeps its per-image results (as detectron2's ``DatasetEvaluator``:
the one writer of its state).

An :class:`ImageSink` owns the PQ sums (:class:`~panbench.pq.evaluator.PanopticEvaluator`), the
per-image matches and boundary-PQ contributions
(:class:`~panbench.analysis.scoring.RunAnalysis`) and the write-through to the resume cache
(:class:`~panbench.evaluation.cache.StatsCache`).  Each image's result is held once: its record in
the analysis, its contributions in the sums.  What one process or rank holds crosses as a
:class:`SinkPart`, and :meth:`ImageSink.reduce` adds the parts of the others, for forked CPU
processes and torchrun ranks alike (the sums are integers, so any order gives the same numbers).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.analysis.scoring import ImageEntry, RunAnalysis
from panbench.evaluation.cache import StatsCache
from panbench.pq.evaluator import PanopticEvaluator
from panbench.pq.matching import CategoryTable, ImageStats
from panbench.pq.sums import PQStats


@dataclass(frozen=True)
class SinkPart:
    """What one process or rank adds to a run (picklable): its PQ sums as one int64 vector
    (:meth:`PQStats.to_array`) and its per-image matches keyed by dataset index."""

    sums: np.ndarray
    records: dict[int, ImageEntry]


class ImageSink:
    """The PQ sums, per-image matches and resume-cache write-through of one run
    (or of one process's share of it)."""

    def __init__(self, categories: CategoryTable, boundary: bool = False, strict: bool = False,
                 cache: StatsCache | None = None) -> None:
        self.evaluator = PanopticEvaluator(categories)
        self.analysis = RunAnalysis(boundary, strict)
        self.cache = cache

    @property
    def categories(self) -> CategoryTable:
        return self.evaluator.categories

    def empty(self) -> ImageSink:
        """A sink with nothing in it, scoring as this one and writing to the same cache (a forked process's)."""
        return ImageSink(self.categories, self.analysis.boundary, self.analysis.strict, self.cache)

    def score(self, index: int, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
              where: str) -> None:
        """Score image ``index``, keep its result and write it through to the cache."""
        stats, rec = self.analysis.score(self.categories, index, gt_ids, gt_segs, pred_ids, pred_segs, where)
        self.evaluator.add(stats)
        if self.cache is not None:
            self.cache.add(index, stats, *rec)

    def _keep(self, index: int, stats: ImageStats, rec: ImageEntry) -> None:
        self.evaluator.add(stats)
        self.analysis.add(index, rec)

    def resume(self, indices: Iterable[int], rerun: Container[int]) -> frozenset[int]:
        """Take the images of ``indices`` that the cache holds and that are not in ``rerun``;
        returns their indices (the images that need not run)."""
        if self.cache is None:
            return frozenset()
        cached = self.cache.load()
        taken = [i for i in indices if i in cached and i not in rerun]
        for i in taken:
            st, rec, bst = cached[i]
            self._keep(i, st, (rec, bst))
        return frozenset(taken)

    def flush(self) -> None:
        """Write the cache's pending images."""
        if self.cache is not None:
            self.cache.flush()

    def part(self) -> SinkPart:
        """What this sink holds, to cross to another process or rank (:meth:`reduce` takes it)."""
        return SinkPart(self.evaluator.sums_array(), self.analysis.payload())

    def reduce(self, parts: Iterable[SinkPart]) -> None:
        """Add the parts of the other processes or ranks (disjoint images) to this sink."""
        for p in parts:
            self.evaluator.merge(PQStats.from_array(p.sums))
            self.analysis.update(p.records)

    def evaluate(self) -> dict[str, Any]:
        """The metrics of the images held (:meth:`PanopticEvaluator.evaluate`)."""
        return self.evaluator.evaluate()
