"""The evaluators of one eval run, composed as detectron2's ``DatasetEvaluators`` compose theirs.

Each scored image reaches every evaluator as one :class:`EvalImage`.  Each takes one image (PQ's ``add``; AP's
and the confusion's ``image`` makes the image's share, checked, and ``add`` adds it, so that an image refused by
one changes none), ``merge``s the share of another process or rank (disjoint images), and is the one writer of
its state, which the run reads at the end (the PQ metrics, ``ap_fields``, ``miou_fields``):

* PQ: the library's :class:`~panbench.pq.accumulator.PanopticAccumulator` itself (the integer sums and the
  per-image results as columns, for the analyses);
* :class:`APEvaluator`: COCO mask AP of the model's instances (:class:`~panbench.analysis.ap.APAccumulator`);
* :class:`SemanticEvaluator`: the pixel confusion of the model's semantic output, for its mIoU
  (:class:`~panbench.analysis.semantic.SemanticConfusion`);

:class:`RunEvaluators` holds them for a run: it scores each image once (:func:`~panbench.pq.evaluator.score_pair`),
hands it to each, writes it through to the resume cache
(:class:`~panbench.evaluation.storage.StatsCache`: the one place its AP data and confusion become JSON), takes
images back from it, and crosses processes and ranks as one picklable part.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.analysis.ap import APAccumulator, Instances, gt_annotations
from panbench.analysis.semantic import SemanticConfusion
from panbench.errors import PanbenchError
from panbench.evaluation.storage import StatsCache
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.result import ImageResult, reorder_columns


@dataclass(frozen=True)
class EvalImage:
    """One image of a run, scored: its position in the dataset, COCO id, ground truth, result and the model's
    instances (for AP) and semantic map of dataset category ids (for mIoU), when it gives them."""

    index: int
    image_id: Any
    gt_ids: np.ndarray
    gt_segments: list[dict[str, Any]]
    result: ImageResult
    instances: Instances | None = None
    semantic: np.ndarray | None = None


@dataclass(frozen=True)
class APImage:
    """One image's share of AP: its COCO id, size (height, width), converted ground truth and predictions."""

    image_id: int
    size: tuple[int, int]
    gt: list[dict[str, Any]]
    instances: Instances

    def to_json(self) -> dict[str, Any]:
        inst = self.instances
        return {"image_id": self.image_id, "size": list(self.size), "gt": self.gt,
                "dt": {"rles": inst.rles, "scores": inst.scores.tolist(), "category_ids": inst.category_ids.tolist()}}

    @staticmethod
    def from_json(a: dict[str, Any]) -> APImage:
        dt = a["dt"]
        return APImage(int(a["image_id"]), (int(a["size"][0]), int(a["size"][1])), a["gt"],
                       Instances(dt["rles"], dt["scores"], dt["category_ids"]))


@dataclass(frozen=True)
class ConfusionImage:
    """One image's semantic confusion, sparse: the flat cells of the (C + 1) x (C + 1) matrix and their pixels."""

    cells: np.ndarray
    pixels: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"idx": self.cells.tolist(), "n": self.pixels.tolist()}

    @staticmethod
    def from_json(s: dict[str, Any]) -> ConfusionImage:
        return ConfusionImage(np.asarray(s["idx"], np.int64), np.asarray(s["n"], np.int64))


class APEvaluator:
    """COCO mask AP of the thing categories from the model's instances."""

    def __init__(self, categories: CategoryTable) -> None:
        self.accumulator = APAccumulator.for_table(categories)

    def image(self, image: EvalImage) -> APImage:
        """The image's share (what :meth:`add` adds and the resume cache keeps); changes nothing."""
        h, w = np.shape(image.gt_ids)[:2]
        # COCO's evaluation numbers images; a string id (Cityscapes, ADE20K) is its position, from 1
        coco_id = int(image.image_id) if isinstance(image.image_id, (int, np.integer)) else image.index + 1
        if coco_id in self.accumulator.images:
            raise PanbenchError(f"internal: image {coco_id} scored twice for AP; please report")
        return APImage(coco_id, (int(h), int(w)), gt_annotations(coco_id, image.gt_ids, image.gt_segments,
                                                                 self.accumulator.thing_ids),
                       image.instances if image.instances is not None else Instances.empty())

    def add(self, one: APImage) -> None:
        self.accumulator.add(one.image_id, one.size, one.gt, one.instances)

    def merge(self, other: APEvaluator) -> None:
        self.accumulator = self.accumulator + other.accumulator


class SemanticEvaluator:
    """The pixel confusion of the model's semantic output (images without one add nothing)."""

    def __init__(self, categories: CategoryTable) -> None:
        self.confusion = SemanticConfusion([int(c) for c in categories.ids])

    def image(self, image: EvalImage) -> ConfusionImage | None:
        """The image's confusion, sparse (what :meth:`add` adds and the resume cache keeps), or None without a
        semantic map; changes nothing."""
        if image.semantic is None:
            return None
        one = SemanticConfusion(self.confusion.category_ids)
        one.add_image(image.gt_ids, image.gt_segments, image.semantic)
        flat = one.conf.ravel()
        cells = np.flatnonzero(flat)
        return ConfusionImage(cells.astype(np.int64), flat[cells])

    def add(self, one: ConfusionImage) -> None:
        np.add.at(self.confusion.conf.reshape(-1), one.cells, one.pixels)
        self.confusion.n_images += 1

    def merge(self, other: SemanticEvaluator) -> None:
        self.confusion = self.confusion + other.confusion


@dataclass(frozen=True)
class RunPart:
    """What one process or rank adds to a run (picklable): its evaluators' states."""

    pq: PanopticAccumulator
    ap: APEvaluator | None
    semantic: SemanticEvaluator


class RunEvaluators:
    """The evaluators of one run (or of one process's share): PQ always, AP with ``ap``, the semantic confusion
    (filled when the model gives a semantic map), written through to the resume cache with ``cache``."""

    def __init__(self, categories: CategoryTable, boundary: bool = False, strict: bool = False,
                 cache: StatsCache | None = None, ap: bool = False) -> None:
        self.categories, self.boundary, self.strict = categories, boundary, strict
        self.pq = PanopticAccumulator(categories, keep_images=True, boundary=boundary)
        self.ap = APEvaluator(categories) if ap else None
        self.semantic = SemanticEvaluator(categories)
        self.cache = cache

    def empty(self) -> RunEvaluators:
        """Evaluators with nothing in them, scoring as these and writing to the same cache (a forked process's)."""
        return RunEvaluators(self.categories, self.boundary, self.strict, self.cache, self.ap is not None)

    def score(self, index: int, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
              where: str, image_id: Any = 0, instances: Instances | None = None,
              semantic: np.ndarray | None = None) -> ImageResult:
        """Score image ``index`` (COCO id ``image_id``) and hand it to every evaluator: ``instances`` to AP (when on),
        ``semantic`` (a map of category ids) to the confusion.  Returns its result; bad input raises first."""
        result = score_pair(self.categories, gt_ids, gt_segs, pred_ids, pred_segs, where, self.strict, self.boundary)
        image = EvalImage(index, image_id, gt_ids, gt_segs, result, instances, semantic)
        ap = self.ap.image(image) if self.ap is not None else None  # both made (and checked) first
        confusion = self.semantic.image(image)
        self.pq.add(result, index)
        if self.ap is not None and ap is not None:
            self.ap.add(ap)
        if confusion is not None:
            self.semantic.add(confusion)
        if self.cache is not None:  # its result, and its AP share and confusion as JSON
            extra = {**({"ap": ap.to_json()} if ap is not None else {}),
                     **({"sem": confusion.to_json()} if confusion is not None else {})}
            self.cache.add(index, result, extra or None)
        return result

    def resume(self, indices: Iterable[int], rerun: Container[int]) -> frozenset[int]:
        """Take the images of ``indices`` that the cache holds and ``rerun`` lacks; returns them (need not run)."""
        if self.cache is None:
            return frozenset()
        cached = self.cache.load()
        where = cached.positions()
        taken = [i for i in indices if i in where and i not in rerun  # AP on: only images with their AP data
                 and (self.ap is None or "ap" in (cached.extras[where[i]] or {}))]
        if not taken:
            return frozenset()
        pos = np.array([where[i] for i in taken], np.int64)
        self.pq.add_columns(np.array(taken, np.int64), reorder_columns(cached.columns, pos))
        for k in pos.tolist():
            extra = cached.extras[k] or {}
            if self.ap is not None:
                self.ap.add(APImage.from_json(extra["ap"]))
            if "sem" in extra:
                self.semantic.add(ConfusionImage.from_json(extra["sem"]))
        return frozenset(taken)

    def flush(self) -> None:
        """Write the cache's pending images."""
        if self.cache is not None:
            self.cache.flush()

    def part(self) -> RunPart:
        """What these evaluators hold, to cross to another process or rank (:meth:`reduce` takes it)."""
        return RunPart(self.pq, self.ap, self.semantic)

    def reduce(self, parts: Iterable[RunPart]) -> None:
        """Add the parts of the other processes or ranks (disjoint images)."""
        for p in parts:
            self.pq.merge(p.pq)
            if self.ap is not None and p.ap is not None:
                self.ap.merge(p.ap)
            self.semantic.merge(p.semantic)

    def evaluate(self) -> dict[str, Any]:
        """The PQ metrics of the images held: the nine metrics (0-100), per class, ``n_images`` and ``unlisted_gt``."""
        return self.pq.evaluate()
