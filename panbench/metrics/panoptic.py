"""The streaming panoptic-quality metric of the Python API.

:class:`PanopticQuality` takes one image at a time (a model's output and its ground truth, numpy arrays or torch
tensors), :class:`CocoPanopticQuality` one prediction at a time against a COCO panoptic ground truth it reads itself.
Both are thin owners of a :class:`~panbench.pq.accumulator.PanopticAccumulator`, the state that ``panbench eval`` and
``panbench score`` add to: one scoring path (``score_pair``), integer sums that add across processes and ranks
(:meth:`BasePanopticQuality.sums`, :meth:`~BasePanopticQuality.merge`, :meth:`~BasePanopticQuality.sync`), and with
``analyses=True`` the per-image results, as columns, that the command line's analyses read.  A refused update raises
:class:`panbench.errors.InputError` (the command line's one-line message, naming the image) and changes nothing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis.collect import AnalysisSet
from panbench.analysis.scoring import run_fields
from panbench.errors import InputError
from panbench.metrics.ground_truth import GroundTruth
from panbench.metrics.inputs import check_one_device, counted_areas, id_map
from panbench.metrics.result import PQResult
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.coco_format import parse_categories, read_json
from panbench.pq.diagnosis import DiagnosisWarning
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.result import ImageResult
from panbench.pq.sums import PQStats

Categories = CategoryTable | Sequence[dict[str, Any]] | str | os.PathLike[str]


def category_table(categories: Categories) -> CategoryTable:
    """A :class:`CategoryTable` from COCO panoptic ``categories`` (dicts with ``id``, ``name``, ``isthing``), a
    COCO panoptic JSON's path, or a table."""
    if isinstance(categories, CategoryTable):
        return categories
    if isinstance(categories, (str, os.PathLike)):
        return parse_categories(read_json(categories, "ground-truth JSON"), categories)
    return parse_categories({"categories": list(categories)}, "categories")


def _plain(image_id: Any) -> Any:
    """An image id as the JSON writes it: a 0-d tensor or numpy integer as a Python int."""
    return image_id.item() if hasattr(image_id, "item") and not isinstance(image_id, (str, bytes)) else image_id


class BasePanopticQuality:
    """What both metrics share: their state and everything but ``update``."""

    def __init__(self, categories: Categories, *, analyses: bool = False, strict: bool = False) -> None:
        self.categories = category_table(categories)
        self.analyses = analyses  # keep each image's result for the analyses of compute()
        self.strict = strict  # refuse ground-truth PNG ids that segments_info does not list
        self.reset()

    def reset(self) -> None:
        """Forget every image (a new evaluation round)."""
        self._pq = PanopticAccumulator(self.categories, keep_images=self.analyses)
        self._image_ids: list[Any] = []  # in the order of the per-image results (with analyses)
        self._seen: set[Any] = set()  # the image ids given since the last reset
        self._synced = False

    @property
    def n_images(self) -> int:
        """The images added since the last :meth:`reset`."""
        return self._pq.n_images

    @property
    def scored(self) -> frozenset[Any]:
        """The image ids scored since the last :meth:`reset` (what a round's ranks gather to check that no image
        was scored twice and none is missing)."""
        return frozenset(self._seen)

    def _score(self, image_id: Any, where: str, pred_ids: Any, pred_segments: Sequence[dict[str, Any]],
               gt_ids: Any, gt_segments: Sequence[dict[str, Any]]) -> ImageResult:
        self._check_new(image_id, where)
        check_one_device(where, pred_ids=pred_ids, gt_ids=gt_ids)
        pred = id_map(pred_ids, where, "pred_ids")
        gt = id_map(gt_ids, where, "gt_ids")
        result = score_pair(self.categories, gt, counted_areas(gt, list(gt_segments)), pred, list(pred_segments),
                            where, self.strict)
        self._pq.add(result)
        if image_id is not None:
            self._seen.add(image_id)
        if self.analyses:
            self._image_ids.append(image_id if image_id is not None else len(self._image_ids))
        return result

    def _check_new(self, image_id: Any, where: str) -> None:
        """Refuse an update of a synced metric, or of an image already scored in this round."""
        self._check_open(where)
        if image_id is not None and image_id in self._seen:
            raise InputError(f"{where}: scored already since the last reset(); call reset() before another "
                             "evaluation round, and pass each image once per round")

    def _check_open(self, where: str) -> None:
        if self._synced:
            raise InputError(f"{where}: this metric holds every rank's sums after sync(); call reset() before "
                             "scoring more images")

    def add(self, results: ImageResult | Sequence[ImageResult]) -> None:
        """Add images scored elsewhere: one :class:`~panbench.pq.result.ImageResult` (what ``update`` returns)
        or a chunk of them, added at once."""
        chunk = [results] if isinstance(results, ImageResult) else list(results)
        self._check_open("add()")
        if not all(isinstance(r, ImageResult) for r in chunk):
            raise InputError("add(): pass the ImageResult objects update() returns (one, or a list of them)")
        self._pq.add_results(chunk)  # after the images so far (a bad result leaves the state as it was)
        if self.analyses:
            self._image_ids += range(len(self._image_ids), len(self._image_ids) + len(chunk))

    def sums(self) -> np.ndarray:
        """The state as one int64 vector (:meth:`PQStats.to_array`): what crosses processes and ranks; the
        element-wise sum of two is the state of both."""
        return self._pq.stats.to_array()

    def add_sums(self, sums: np.ndarray) -> None:
        """Add a :meth:`sums` vector of another metric (a rank's, a process's)."""
        self._check_open("add_sums()")
        if self.analyses:
            raise InputError("add_sums(): the analyses need each image's result; merge() the other metric or "
                             "add() its results instead, or build both with analyses=False")
        stats = PQStats.from_array(np.asarray(sums, np.int64))
        if len(stats.tp) != len(self.categories):
            raise InputError(f"add_sums(): a vector of {len(stats.tp)} categories added to a metric of "
                             f"{len(self.categories)}; add the sums of a metric of the same categories")
        self._pq.add_sums(stats)

    def merge(self, other: BasePanopticQuality) -> None:
        """Add another metric's images (of other processes or ranks; its image ids must not repeat this one's)."""
        self._check_open("merge()")
        if other is self:
            raise InputError("merge(): a metric merged with itself would count its images twice; merge another one")
        if other.categories.ids != self.categories.ids:
            raise InputError("merge(): the metrics have different categories; merge metrics of one dataset")
        common = self._seen & other._seen
        if common:
            raise InputError(f"merge(): image {sorted(common, key=str)[0]!r} is in both metrics; merge the metrics "
                             "of disjoint images (one rank's each)")
        if self.analyses and (not other.analyses or len(other._image_ids) != other.n_images):
            raise InputError("merge(): the other metric kept no per-image results; build it with analyses=True")
        self._pq.merge(other._pq, offset=len(self._image_ids))  # without analyses: its sums alone
        if self.analyses:
            self._image_ids += other._image_ids
        self._seen |= other._seen

    def sync(self, group: Any = None) -> None:
        """Sum the state over the ranks of ``torch.distributed`` (every rank then holds all images); nothing
        when it is not initialised.  Call it on every rank, once per round, before :meth:`compute`."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or self._synced:
            return
        total = PanopticAccumulator(self.categories, keep_images=self.analyses)
        if self.analyses:  # the per-image results too: every rank's accumulator, gathered
            everyone: list[Any] = [None] * dist.get_world_size(group)
            dist.all_gather_object(everyone, (self._image_ids, self._pq), group=group)
            self._image_ids = []
            for ids, part in everyone:  # rank order: every rank ends with the same images in the same order
                total.merge(part, offset=len(self._image_ids))
                self._image_ids += ids
        else:  # the sums alone: one all-reduce of the integer vector
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else "cpu"
            t = torch.from_numpy(self.sums()).to(device)
            dist.all_reduce(t, group=group)
            total.add_sums(PQStats.from_array(t.cpu().numpy()))
        self._pq = total
        self._synced = True

    def compute(self) -> PQResult:
        """PQ, SQ and RQ of the images so far (and the analyses, with ``analyses=True``)."""
        analyses: dict[str, Any] = {}
        if self.analyses and self.n_images:
            cats = self.categories
            aset = AnalysisSet.from_columns(self._pq.dense_columns(len(self._image_ids)), len(cats), self._image_ids,
                                            cats.ids, cats.isthing)
            analyses = run_fields(aset, cats)
        result = PQResult.from_stats(self._pq.stats, self.categories, analyses)
        if result.diagnosis:  # one warning per compute(), whatever the findings
            warnings.warn("panbench: " + " | ".join(f"{f.kind}: {f.message}" for f in result.diagnosis),
                          DiagnosisWarning, stacklevel=2)
        return result


class PanopticQuality(BasePanopticQuality):
    """PQ streamed image by image: ``update`` with a prediction and its ground truth, ``compute`` at the end.

    ``categories``: COCO panoptic ``categories`` (dicts with ``id``, ``name``, ``isthing``) or the path of a COCO
    panoptic JSON.  ``analyses``: keep each image's result (a few small arrays) so that :meth:`compute` also gives
    the command line's analyses.  ``strict``: refuse ground-truth pixels whose id segments_info does not list
    (panopticapi scores them)."""

    def update(self, pred_ids: Any, pred_segments: Sequence[dict[str, Any]], gt_ids: Any,
               gt_segments: Sequence[dict[str, Any]], image_id: Any = None) -> ImageResult:
        """Score one image and add it.  ``pred_ids``, ``gt_ids``: HxW integer id maps (``R + 256G + 256^2B``, 0
        is VOID; numpy arrays or torch tensors on any one device); ``pred_segments``, ``gt_segments``: COCO
        segments_info (``id``, ``category_id``; the ground truth's ``iscrowd``, and ``area``, counted from the
        map when absent).  ``image_id`` names the image in errors and refuses a second update of it before
        :meth:`reset`.  Returns the image's result (small and picklable: :meth:`add` takes it elsewhere)."""
        image_id = _plain(image_id)
        where = f"image {image_id}" if image_id is not None else f"image #{self.n_images}"
        return self._score(image_id, where, pred_ids, pred_segments, gt_ids, gt_segments)


class CocoPanopticQuality(BasePanopticQuality):
    """PQ of predictions against a COCO panoptic ground truth (JSON + PNG folder) that the metric reads itself,
    each ground-truth PNG decoded once per process; with ``keep_ground_truth`` the decoded images stay between
    evaluation rounds (:meth:`reset` keeps them; :mod:`panbench.metrics.ground_truth` states their memory)."""

    def __init__(self, gt_json: str | os.PathLike[str], gt_folder: str | os.PathLike[str] | None = None, *,
                 keep_ground_truth: bool = False, analyses: bool = False, strict: bool = False) -> None:
        self.ground_truth = GroundTruth(gt_json, gt_folder, keep_ground_truth)
        super().__init__(self.ground_truth.categories, analyses=analyses, strict=strict)

    @property
    def gt_json(self) -> Path:
        return self.ground_truth.json_path

    def update(self, image_id: Any, pred_ids: Any, pred_segments: Sequence[dict[str, Any]]) -> ImageResult:
        """Score the prediction of image ``image_id`` (an id of the ground-truth JSON) and add it; returns the
        image's result as :meth:`PanopticQuality.update`."""
        image_id = _plain(image_id)
        self._check_new(image_id, f"image {image_id}")  # before reading its PNG
        gt_ids, gt_segments, where, kept = self.ground_truth.image(image_id)
        result = self._score(image_id, where, pred_ids, pred_segments, gt_ids, gt_segments)
        if self.ground_truth.keep and not kept:  # kept once its first score has checked it
            self.ground_truth.hold(image_id, gt_ids, gt_segments)
        return result
