"""The one place an eval run keeps its per-image results (as detectron2's ``DatasetEvaluator``:
the one writer of its state).

An :class:`ImageSink` scores each image with :func:`~panbench.pq.evaluator.score_pair` and owns what
follows: the PQ sums (:class:`~panbench.pq.evaluator.PanopticEvaluator`), the per-image results
(:class:`~panbench.pq.result.ImageResult`, in :class:`~panbench.analysis.scoring.RunAnalysis`) and the
write-through to the resume cache (:class:`~panbench.evaluation.storage.cache.StatsCache`).  Each image's result is
held once: in the analysis, its contributions in the sums.  What one process or rank holds crosses as a
:class:`SinkPart`, and :meth:`ImageSink.reduce` adds the parts of the others, for forked CPU
processes and torchrun ranks alike (the sums are integers, so any order gives the same numbers).
Beside PQ it holds the ground truth and instance predictions of COCO mask AP
(:class:`~panbench.analysis.ap.APAccumulator`, with AP on) and the pixel confusion of the model's
semantic output (:class:`~panbench.analysis.semantic.SemanticConfusion`, when the model gives one);
both add across parts and are kept per image in the resume cache.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.analysis.ap import APAccumulator, Instances, gt_annotations
from panbench.analysis.scoring import RunAnalysis
from panbench.analysis.semantic import SemanticConfusion
from panbench.evaluation.storage.cache import StatsCache
from panbench.pq.evaluator import PanopticEvaluator, score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.result import ImageResult, results_from_columns, results_to_columns
from panbench.pq.sums import PQStats


@dataclass(frozen=True)
class SinkPart:
    """What one process or rank adds to a run (picklable): its PQ sums as one int64 vector
    (:meth:`PQStats.to_array`) and its per-image results as the columns of :mod:`panbench.pq.result` (one
    pickle of a few arrays), ``indices`` their dataset indices in order."""

    sums: np.ndarray
    indices: np.ndarray
    results: dict[str, np.ndarray]
    ap: APAccumulator | None = None
    semantic: SemanticConfusion | None = None


class ImageSink:
    """The PQ sums, per-image results and resume-cache write-through of one run
    (or of one process's share of it)."""

    def __init__(self, categories: CategoryTable, boundary: bool = False, strict: bool = False,
                 cache: StatsCache | None = None, ap: bool = False, keep_images: bool = True) -> None:
        self.evaluator = PanopticEvaluator(categories)
        self.analysis = RunAnalysis(boundary)
        self.keep_images = keep_images  # keep each image's result for the analyses (else the sums alone)
        self.strict = strict  # refuse ground-truth ids that segments_info does not list
        self.cache = cache
        self.ap = APAccumulator.for_table(categories) if ap else None
        self.semantic = SemanticConfusion([int(c) for c in categories.ids])

    @property
    def categories(self) -> CategoryTable:
        return self.evaluator.categories

    def empty(self) -> ImageSink:
        """A sink with nothing in it, scoring as this one and writing to the same cache (a forked process's)."""
        return ImageSink(self.categories, self.analysis.boundary, self.strict, self.cache,
                         self.ap is not None, self.keep_images)

    def score(self, index: int, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
              where: str, image_id: int = 0, instances: Instances | None = None,
              semantic: np.ndarray | None = None) -> ImageResult:
        """Score image ``index`` (COCO id ``image_id``), keep its result and write it through to the cache;
        ``instances`` go to AP (when on), ``semantic`` (a map of category ids) to the semantic confusion.
        Returns the image's result; bad input raises before anything is kept."""
        result = score_pair(self.categories, gt_ids, gt_segs, pred_ids, pred_segs, where, self.strict,
                            self.analysis.boundary)
        self.add(index, result)
        extra: dict[str, Any] = {}
        if self.ap is not None:
            h, w = np.shape(gt_ids)[:2]
            # COCO's evaluation numbers images; a string id (Cityscapes, ADE20K) is its position, from 1
            coco_id = int(image_id) if isinstance(image_id, (int, np.integer)) else index + 1
            extra["ap"] = ap_entry(coco_id, (int(h), int(w)),
                                   gt_annotations(coco_id, gt_ids, gt_segs, self.ap.thing_ids), instances)
        if semantic is not None:
            one = SemanticConfusion(self.semantic.category_ids)
            one.add_image(gt_ids, gt_segs, semantic)
            flat = one.conf.ravel()
            nz = np.flatnonzero(flat)
            extra["sem"] = {"idx": nz.tolist(), "n": flat[nz].tolist()}
        self._keep_extra(extra)
        if self.cache is not None:
            self.cache.add(index, result, extra or None)
        return result

    def add(self, index: int, result: ImageResult) -> None:
        """Add the result of image ``index`` scored elsewhere (a resumed cache's, another process's)."""
        self.evaluator.add(result)
        if self.keep_images:
            self.analysis.add(index, result)

    def _keep_extra(self, extra: dict[str, Any]) -> None:
        """One image's AP data and semantic confusion (as :func:`ap_entry` and the cache keep them)."""
        if self.ap is not None:
            a = extra["ap"]
            dt = a["dt"]
            self.ap.add(int(a["image_id"]), (int(a["size"][0]), int(a["size"][1])), a["gt"],
                        Instances(dt["rles"], dt["scores"], dt["category_ids"]))
        if "sem" in extra:
            flat = self.semantic.conf.reshape(-1)
            np.add.at(flat, np.asarray(extra["sem"]["idx"], np.int64), np.asarray(extra["sem"]["n"], np.int64))
            self.semantic.n_images += 1

    def resume(self, indices: Iterable[int], rerun: Container[int]) -> frozenset[int]:
        """Take the images of ``indices`` that the cache holds and that are not in ``rerun``;
        returns their indices (the images that need not run)."""
        if self.cache is None:
            return frozenset()
        cached = self.cache.load()
        taken = [i for i in indices if i in cached and i not in rerun
                 and (self.ap is None or "ap" in (cached[i][1] or {}))]  # AP on: only images with their AP data
        for i in taken:
            result, extra = cached[i]
            self.add(i, result)
            self._keep_extra(extra or {})
        return frozenset(taken)

    def flush(self) -> None:
        """Write the cache's pending images."""
        if self.cache is not None:
            self.cache.flush()

    def part(self) -> SinkPart:
        """What this sink holds, to cross to another process or rank (:meth:`reduce` takes it)."""
        held = self.analysis.payload()
        indices = sorted(held)
        return SinkPart(self.evaluator.sums_array(), np.array(indices, np.int64),
                        results_to_columns([held[i] for i in indices]), self.ap, self.semantic)

    def reduce(self, parts: Iterable[SinkPart]) -> None:
        """Add the parts of the other processes or ranks (disjoint images) to this sink."""
        for p in parts:
            self.evaluator.merge(PQStats.from_array(p.sums))
            results = results_from_columns(p.results, len(p.indices))
            self.analysis.update(dict(zip(p.indices.tolist(), results, strict=True)))
            if self.ap is not None and p.ap is not None:
                self.ap = self.ap + p.ap
            if p.semantic is not None:
                self.semantic = self.semantic + p.semantic

    def evaluate(self) -> dict[str, Any]:
        """The metrics of the images held (:meth:`PanopticEvaluator.evaluate`)."""
        return self.evaluator.evaluate()


def ap_entry(image_id: int, size: tuple[int, int], gt: list[dict[str, Any]],
             instances: Instances | None) -> dict[str, Any]:
    """One image's AP data as JSON-ready values (what the resume cache stores): its id, size (height, width),
    converted ground truth and predictions."""
    inst = instances if instances is not None else Instances.empty()
    return {"image_id": int(image_id), "size": [int(size[0]), int(size[1])], "gt": gt,
            "dt": {"rles": inst.rles, "scores": inst.scores.tolist(), "category_ids": inst.category_ids.tolist()}}
