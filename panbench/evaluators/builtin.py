"""The built-in evaluators, ordinary members of a run's :class:`~panbench.evaluators.composite.Evaluators`: PQ (its
share the image's result, kept by the resume cache as columns), the analyses and the per-image export, COCO mask
AP, the semantic confusion, PQ under other rules. Each declares what it reads of an image (``needs``) and its
abilities (:mod:`panbench.evaluators.contract`): a member that reads the run's PQ state at the end
(:class:`~panbench.evaluators.contract.UsesSums`, :class:`~panbench.evaluators.contract.UsesColumns`) is evaluated
with what the member that keeps it (:class:`~panbench.evaluators.contract.ProvidesColumns`) holds; members that
:class:`~panbench.evaluators.contract.TakesScored` take many images scored in bulk at once (``score``'s C path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from panbench.analysis.ap import APAccumulator, Instances, ap_fields, gt_annotations
from panbench.analysis.scoring import analyses_of
from panbench.analysis.semantic import SemanticConfusion, miou_fields
from panbench.errors import PanbenchError
from panbench.evaluators.contract import (
    BuiltIn,
    HasInstances,
    HoldsPositions,
    ImageData,
    ProvidesColumns,
    ResultShare,
    TakesScored,
    UsesColumns,
    UsesSums,
)
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import pair_table
from panbench.pq.matching import CategoryTable
from panbench.pq.quirks import RuleStates, states, table_of
from panbench.pq.result import ImageResult
from panbench.pq.rules import RuleSums, panopticapi_rule


class PQEvaluator(BuiltIn, TakesScored, HoldsPositions, ProvidesColumns, ResultShare):
    """PQ (with boundary PQ's part where ``boundary``) in a :class:`~panbench.pq.accumulator.PanopticAccumulator`,
    the per-image match columns kept where ``keep_images``; a share is ``(position, result)`` (the resume cache
    keeps the result as columns, :meth:`add_results`). Its fields: ``metrics`` and, with ``diagnose``, the
    ``diagnosis`` findings its sums show."""

    name, version = "PQ", "1"
    needs = frozenset({"result"})

    def __init__(self, categories: CategoryTable, boundary: bool = False, keep_images: bool = True,
                 diagnose: bool = False) -> None:
        self.categories, self.boundary, self.keep_images, self.diagnose = categories, boundary, keep_images, diagnose
        self.reset()

    def fresh(self) -> PQEvaluator:
        return PQEvaluator(self.categories, self.boundary, self.keep_images, self.diagnose)

    def reset(self) -> None:
        self.accumulator = PanopticAccumulator(self.categories, self.keep_images, self.boundary)

    def process(self, image: ImageData) -> tuple[int, ImageResult | None]:
        return image.index, image.result

    def add(self, share: tuple[int, ImageResult]) -> None:
        at, result = share
        self.accumulator.add(result, at)

    def add_results(self, positions: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        self.accumulator.add(columns, positions)

    def add_scored(self, scored: PanopticAccumulator, image_ids: Mapping[int, Any]) -> None:
        """Images scored elsewhere at their final positions (``score``'s batch path, sums added alone)."""
        self.accumulator.merge(scored)

    def merge(self, other: PQEvaluator) -> None:
        self.merge_at(other, 0)

    def merge_at(self, other: PQEvaluator, offset: int) -> None:
        self.accumulator.merge(other.accumulator, offset)

    def columns(self) -> PanopticAccumulator:
        """The run's PQ sums and per-image results (read; the analyses' input)."""
        return self.accumulator

    def evaluate(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics": self.accumulator.evaluate()}
        if self.diagnose and (found := self.accumulator.diagnosis()):
            out["diagnosis"] = found
        return out


class AnalysesEvaluator(BuiltIn, TakesScored, HoldsPositions, UsesColumns):
    """The analyses and the per-image export (``analysis``, the :class:`~panbench.analysis.AnalysisSet` saved beside
    the record) of the run's per-image PQ columns (:func:`~panbench.analysis.scoring.analyses_of`;
    ``own_threshold``: the model's own score threshold); its own state is each image's COCO id by position, a share
    ``[position, image_id]``."""

    name, version = "Analyses", "1"
    needs = frozenset({"result"})

    def __init__(self, own_threshold: float | None = None) -> None:
        self.own_threshold = own_threshold
        self.reset()

    def fresh(self) -> AnalysesEvaluator:
        return AnalysesEvaluator(self.own_threshold)

    def reset(self) -> None:
        self.image_ids: dict[int, Any] = {}

    def process(self, image: ImageData) -> list[Any]:
        image_id = image.image_id.item() if isinstance(image.image_id, np.generic) else image.image_id
        return [int(image.index), image_id]

    def add(self, share: list[Any]) -> None:
        self.image_ids[int(share[0])] = share[1]

    def add_scored(self, scored: PanopticAccumulator, image_ids: Mapping[int, Any]) -> None:
        self.image_ids.update(image_ids)

    def merge(self, other: AnalysesEvaluator) -> None:
        self.merge_at(other, 0)

    def merge_at(self, other: AnalysesEvaluator, offset: int) -> None:
        self.image_ids.update({i + offset: image_id for i, image_id in other.image_ids.items()})

    def evaluate_with(self, pq: PanopticAccumulator) -> dict[str, Any]:
        if (n := len(self.image_ids)) and max(self.image_ids) != n - 1:
            raise PanbenchError(f"internal: the analyses hold {n} images, the last at position {max(self.image_ids)}; "
                                "please report")
        aset, fields = analyses_of(pq, [self.image_ids[i] for i in range(n)], own_threshold=self.own_threshold)
        return {"analysis": aset, **fields}


class APEvaluator(BuiltIn, HasInstances):
    """COCO mask AP of the thing categories from the model's instances, which ``source`` (one of
    :data:`~panbench.analysis.ap.AP_SOURCES`) gave: the record's ``ap`` and ``ap_source``."""

    name, version = "AP", "1"
    needs = frozenset({"id_maps", "segments", "instances"})

    def __init__(self, categories: CategoryTable, source: str | None = None) -> None:
        self.categories, self.source = categories, source
        self.reset()

    def fresh(self) -> APEvaluator:
        return APEvaluator(self.categories, self.source)

    def reset(self) -> None:
        self.accumulator = APAccumulator.for_table(self.categories)

    def process(self, image: ImageData) -> dict[str, Any]:
        """The image's share, as the cache keeps it: COCO id, size, converted ground truth and predictions."""
        assert image.gt_ids is not None and image.gt_segments is not None  # declared in needs
        h, w = np.shape(image.gt_ids)[:2]
        # COCO's evaluation numbers images; a string id (Cityscapes, ADE20K) is its position, from 1
        coco_id = int(image.image_id) if isinstance(image.image_id, (int, np.integer)) else image.index + 1
        if coco_id in self.accumulator.images:
            raise PanbenchError(f"internal: image {coco_id} scored twice for AP; please report")
        inst = image.instances if image.instances is not None else Instances.empty()
        return {"image_id": coco_id, "size": [int(h), int(w)],
                "gt": gt_annotations(coco_id, image.gt_ids, image.gt_segments, self.accumulator.thing_ids),
                "dt": {"rles": inst.rles, "scores": inst.scores.tolist(), "category_ids": inst.category_ids.tolist()}}

    def add(self, share: dict[str, Any]) -> None:
        dt, (h, w) = share["dt"], share["size"]
        self.accumulator.add(int(share["image_id"]), (int(h), int(w)), share["gt"],
                             Instances(dt["rles"], dt["scores"], dt["category_ids"]))

    def merge(self, other: APEvaluator) -> None:  # COCO ids: no positions
        self.accumulator = self.accumulator + other.accumulator

    def instance_results(self) -> list[dict[str, Any]]:
        """The instances scored, as COCO's results JSON lists them."""
        return self.accumulator.results()

    def evaluate(self) -> dict[str, Any]:
        return ap_fields(self.accumulator, self.source) if self.source is not None else {}


class SemanticEvaluator(BuiltIn, UsesSums):
    """The pixel confusion of the model's semantic output (an image without one adds nothing): the record's mIoU,
    the panoptic output's (from PQ's sums) where the model has none."""

    name, version = "SemanticConfusion", "1"
    needs = frozenset({"id_maps", "segments", "semantic"})

    def __init__(self, categories: CategoryTable) -> None:
        self.categories = categories
        self.reset()

    def fresh(self) -> SemanticEvaluator:
        return SemanticEvaluator(self.categories)

    def reset(self) -> None:
        self.confusion = SemanticConfusion([int(c) for c in self.categories.ids])

    def process(self, image: ImageData) -> dict[str, list[int]] | None:
        """The image's confusion, sparse: the flat cells of the (C + 1) x (C + 1) matrix and their pixels."""
        if image.semantic is None:
            return None
        assert image.gt_ids is not None and image.gt_segments is not None  # declared in needs
        one = SemanticConfusion(self.confusion.category_ids)
        one.add_image(image.gt_ids, image.gt_segments, image.semantic)
        flat = one.conf.ravel()
        cells = np.flatnonzero(flat)
        return {"idx": cells.tolist(), "n": flat[cells].tolist()}

    def add(self, share: dict[str, list[int]] | None) -> None:
        if share is not None:
            np.add.at(self.confusion.conf.reshape(-1), np.asarray(share["idx"], np.int64),
                      np.asarray(share["n"], np.int64))
            self.confusion.n_images += 1

    def merge(self, other: SemanticEvaluator) -> None:
        self.confusion = self.confusion + other.confusion

    def evaluate_with(self, pq: PanopticAccumulator) -> dict[str, Any]:
        """The record's ``miou`` and ``miou_source``: of the model's semantic output, else of the panoptic output
        (the pixel confusion of PQ's sums)."""
        return miou_fields(pq.evaluate(), self.confusion)


class RulesEvaluator(BuiltIn, TakesScored, UsesSums):
    """PQ under other implementations' rules (``--rules``; :mod:`panbench.pq.rules`): the record's ``rules``, each
    rule's PQ, SQ and RQ for All, Things and Stuff and per class, and ``rules_attribution``, the PQ each of its
    quirks adds (:mod:`panbench.pq.quirks`: :class:`~panbench.pq.quirks.RuleStates`). Every quirk state's sums are
    counted from the image's intersection table in C: images scored in bulk bring them (``counted_rules``, which
    the scoring counts into the accumulator's ``rule_states`` as it counts the tables); an image handed to
    :meth:`process` has its table counted again from its id maps. ``panopticapi`` reads PQ's sums."""

    name, version = "Rules", "2"

    def __init__(self, categories: CategoryTable, rules: tuple[str, ...]) -> None:
        self.categories, self.rules = categories, tuple(rules)
        self.counted_rules = tuple(r for r in self.rules if r != "panopticapi")  # the rules read from the table
        # a cache of other rules (or of another attribution order) holds other shares: run again
        self.version = "2:" + ",".join(f"{r}/{len(states(r))}" for r in self.counted_rules)
        self.needs = frozenset({"id_maps", "segments"}) if self.counted_rules else frozenset()
        self.reset()

    def fresh(self) -> RulesEvaluator:
        return RulesEvaluator(self.categories, self.rules)

    def reset(self) -> None:
        self.states = RuleStates(self.categories, self.counted_rules)

    def process(self, image: ImageData) -> dict[str, Any]:
        if not self.counted_rules:
            return {}
        assert image.gt_ids is not None and image.pred_ids is not None  # declared in needs
        inter, gt, pred = pair_table(self.categories, image.gt_ids, list(image.gt_segments or []), image.pred_ids,
                                     list(image.pred_segments or []), f"image {image.image_id}")
        out = self.states.sums_of([table_of(inter, gt, pred)])
        cats = np.flatnonzero(out.any(axis=(0, 1)))  # the categories the image touched
        return {"c": cats.tolist(), "sums": out[:, :, cats].ravel().tolist()}

    def add(self, share: dict[str, Any]) -> None:
        if self.counted_rules:
            cats = np.asarray(share["c"], np.int64)
            n_states = len(self.states.codes)
            self.states.sums[:, :, cats] += np.asarray(share["sums"], np.int64).reshape(n_states, 4, len(cats))
            self.states.images += 1

    def add_scored(self, scored: PanopticAccumulator, image_ids: Mapping[int, Any]) -> None:
        """Images scored in bulk: their sums under the rules' states, which the scoring counted
        (``scored.rule_states``; a driver that counted none is refused: the rules would read 0)."""
        got = scored.rule_states
        if self.counted_rules and (got.rules != self.states.rules or got.images < len(image_ids)):
            raise PanbenchError(f"internal: the sums of the rules {got.rules} of {got.images} images came for "
                                f"{self.counted_rules} of {len(image_ids)} scored in bulk (a driver scores with "
                                "Scoring(rules=Evaluators.rules)); please report")
        if self.counted_rules:
            self.states.merge(got)

    def merge(self, other: RulesEvaluator) -> None:
        self.states.merge(other.states)

    def evaluate_with(self, pq: PanopticAccumulator) -> dict[str, Any]:
        numbers, rows = self.states.fields(RuleSums.from_stats(pq.stats))
        out: dict[str, Any] = {}
        for r in self.rules:
            out[r] = panopticapi_rule(pq.stats, self.categories) if r == "panopticapi" else numbers[r]
        return {"rules": out, **({"rules_attribution": rows} if rows else {})}
