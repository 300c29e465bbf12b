"""The streaming panoptic-quality metrics of the Python API (docs/api.md), thin owners of the one composite of
evaluators (:class:`~panbench.evaluators.Evaluators`: PQ, the analyses with ``analyses=True``, the user's
``evaluators``); a refused update raises :class:`panbench.errors.InputError`, worded for the arrays and arguments
passed (:attr:`BasePanopticQuality.naming`).
A kept ground-truth image (``keep_ground_truth``) costs one byte per pixel while it has fewer than 255 segments
(docs/api.md, "CocoPanopticQuality")."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

import numpy as np

from panbench.errors import InputError, PanbenchError
from panbench.evaluators import Evaluators, ImageData, load_evaluators
from panbench.evaluators.contract import BuiltIn, cache_key_of, fresh_copy, name_of
from panbench.metrics.builds import MetricBuild, build_difference
from panbench.metrics.device_table import device_counts, device_map, device_pair_table, on_device, tensor_facts
from panbench.metrics.id_maps import array_facts, check_width, float_error, float_shape_error, map_form
from panbench.metrics.segments import plain_segments
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.coco_format import (
    parse_categories,
    png_folder,
    read_ground_truth,
    read_json,
    safe_join,
)
from panbench.pq.diagnosis import Finding, diagnose, warn_findings
from panbench.pq.evaluator import FILE_NAMES, Naming, score_pair, table_result
from panbench.pq.kernels import _SENTINEL, index_map, rgb2id
from panbench.pq.matching import CategoryTable
from panbench.pq.paths import not_a_folder
from panbench.pq.png import read_ids
from panbench.pq.result import ImageResult
from panbench.pq.rule_names import rule_list
from panbench.pq.sums import PQStats, panopticapi_summary, pq_summary

Categories = CategoryTable | Sequence[dict[str, Any]] | str | os.PathLike[str]
_P = ParamSpec("_P")
_R = TypeVar("_R")

#: what an evaluator's failure says on the command line, where ``--debug`` shows its traceback
_CLI_WHERE = " (--debug shows where)"


def category_table(categories: Categories) -> CategoryTable:
    """A :class:`CategoryTable` from COCO panoptic ``categories``, a COCO panoptic JSON's path, or a table."""
    if isinstance(categories, CategoryTable):
        return categories
    if isinstance(categories, (str, os.PathLike)):
        return parse_categories(read_json(categories, "ground-truth JSON"), categories)
    return parse_categories({"categories": list(categories)}, "categories")


class PQValues(NamedTuple):
    """PQ, SQ and RQ of a group of categories (fractions 0-1) and ``n``, the categories with TP + FP + FN > 0."""

    pq: float
    sq: float
    rq: float
    n: int


class ClassPQ(NamedTuple):
    """One category's PQ, SQ, RQ (fractions 0-1) and its match counts."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class PQResult:
    """PQ/SQ/RQ for All/Things/Stuff and per class, as panopticapi computes them; ``metrics`` (what ``panbench score
    --json`` prints), ``analyses`` (with ``analyses=True``), ``diagnosis`` and ``evaluators`` (the fields of the
    metric's ``evaluators``, by name: a record's and ``score --json``'s ``evaluators``) as docs/api.md describes
    them."""

    all: PQValues
    things: PQValues
    stuff: PQValues
    per_class: dict[int, ClassPQ]
    n_images: int
    metrics: dict[str, Any] = field(repr=False)
    analyses: dict[str, Any] = field(default_factory=dict, repr=False)
    diagnosis: tuple[Finding, ...] = field(default=(), repr=False)
    evaluators: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    rules_attribution: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    @staticmethod
    def from_stats(stats: PQStats, categories: CategoryTable, analyses: dict[str, Any] | None = None,
                   evaluators: dict[str, dict[str, Any]] | None = None,
                   rules: dict[str, dict[str, Any]] | None = None,
                   rules_attribution: dict[str, list[dict[str, Any]]] | None = None) -> PQResult:
        api = panopticapi_summary(stats, categories.ids, categories.isthing)
        per_class = {cid: ClassPQ(v["pq"], v["sq"], v["rq"], int(stats.tp[k]), int(stats.fp[k]), int(stats.fn[k]))
                     for k, (cid, v) in enumerate(api["per_class"].items())}
        return PQResult(PQValues(**api["All"]), PQValues(**api["Things"]), PQValues(**api["Stuff"]), per_class,
                        stats.n_images, pq_summary(stats, categories.ids, categories.isthing), analyses or {},
                        tuple(diagnose(stats, categories)), evaluators or {}, rules or {}, rules_attribution or {})

    def to_panopticapi(self) -> dict[str, Any]:
        """panopticapi's ``pq_compute`` dict (:func:`panbench.pq.sums.panopticapi_summary`)."""
        out: dict[str, Any] = {name: v._asdict() for name, v in
                               (("All", self.all), ("Things", self.things), ("Stuff", self.stuff))}
        out["per_class"] = {cid: {"pq": c.pq, "sq": c.sq, "rq": c.rq} for cid, c in self.per_class.items()}
        return out


def check_one_device(where: str, **maps: Any) -> None:
    """Refuse tensors on different devices (as torch refuses an operation across devices)."""
    devices = {k: str(v.device) for k, v in maps.items()  # a tensor's device as text (cpu, cuda:0)
               if getattr(v, "device", None) is not None and not isinstance(v, np.ndarray)}
    if len(set(devices.values())) > 1:
        said = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise InputError(f"{where}: {said}; put them on one device (or pass numpy arrays)")


def id_map(x: Any, where: str, name: str) -> np.ndarray:
    """An HxW integer id map (0 is VOID) from a numpy array, a torch tensor or a panoptic PNG's HxWx3 uint8 RGB."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        if x.is_floating_point() or x.is_complex():
            raise float_shape_error(where, name, str(x.dtype), tuple(x.shape)) or \
                float_error(where, name, str(x.dtype), tensor_facts(x))
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind in "fc":
        raise float_shape_error(where, name, str(arr.dtype), arr.shape) or \
            float_error(where, name, str(arr.dtype), array_facts(arr))
    form = map_form(arr.dtype, tuple(arr.shape), where, name)
    if form == "rgb":
        return rgb2id(np.ascontiguousarray(arr))
    return arr[0] if form == "stacked" else arr  # (1, H, W), as mmdet's sem_seg


def counted_areas(ids: Any, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``segments`` with each missing ``area`` counted from the map (a numpy array, or a tensor on its device)."""
    if all("area" in s for s in segments):
        return segments
    seg_ids = np.array([s["id"] for s in segments], np.int64)
    if not isinstance(ids, np.ndarray):  # a map on its tensor's device
        counts = device_counts(ids, seg_ids)
    else:
        flat = ids.ravel()
        u, c = np.unique(flat[np.isin(flat, seg_ids)], return_counts=True) if len(seg_ids) else (seg_ids, seg_ids)
        counts = dict(zip(u.tolist(), c.tolist(), strict=True))
    return [s if "area" in s else {**s, "area": int(counts.get(s["id"], 0))} for s in segments]


class GroundTruth:
    """The ground truth of a COCO panoptic dataset, read image by image; with ``keep`` kept until :meth:`clear`."""

    def __init__(self, gt_json: str | os.PathLike[str], gt_folder: str | os.PathLike[str] | None = None,
                 keep: bool = False) -> None:
        self.json_path = Path(gt_json)
        self.folder = Path(gt_folder) if gt_folder is not None else png_folder(gt_json)
        truth = read_ground_truth(self.json_path)
        self.categories: CategoryTable = truth.categories
        self.annotations: dict[Any, dict[str, Any]] = truth.annotations
        self.sizes = truth.sizes
        if (err := _not_a_png_folder(self.folder, self.json_path, gt_folder is not None)) is not None:
            raise err
        self.keep = keep
        self._kept: dict[Any, tuple[np.ndarray, list[dict[str, Any]]]] = {}

    def __contains__(self, image_id: Any) -> bool:
        return image_id in self.annotations

    def __len__(self) -> int:
        return len(self.annotations)

    @property
    def kept_bytes(self) -> int:
        """The memory the kept images take."""
        return sum(m.nbytes for m, _ in self._kept.values())

    def clear(self) -> None:
        """Drop the kept images."""
        self._kept.clear()

    def image(self, image_id: Any) -> tuple[np.ndarray, list[dict[str, Any]], str, bool]:
        """Image ``image_id``'s id map, segments_info, name for messages and whether it is kept (its index map then)."""
        if (ann := self.annotations.get(image_id)) is None:
            raise _unknown_image(self.json_path, image_id, self.annotations)
        where = f"image {image_id}"
        segments = ann["segments_info"]
        if (kept := self._kept.get(image_id)) is not None:
            return kept[0], kept[1], where, True
        png = safe_join(self.folder, ann["file_name"], f"{where} (ground truth)")
        return read_ids(png, where, shape=self.sizes.get(image_id), role="ground truth"), segments, where, False

    def hold(self, image_id: Any, ids: np.ndarray, segments: list[dict[str, Any]]) -> None:
        """Keep image ``image_id``'s map as :meth:`image` read it, once scoring has checked its ids."""
        self._kept[image_id] = _compact(ids, segments)


def _not_a_png_folder(folder: Path, gt_json: Path, given: bool) -> InputError | None:
    """None where ``folder`` is a folder, else the error naming what is there (:func:`~panbench.pq.paths.path_kind`):
    of ``gt_folder`` where it was ``given``, else of the default folder (the JSON's path without ``.json``)."""
    if given:
        return not_a_folder(folder, "gt_folder", f"point gt_folder at the folder of {gt_json}'s panoptic PNGs")
    return not_a_folder(folder, f"the ground-truth PNG folder of {gt_json} (its path without .json)",
                        "pass gt_folder, the folder of its panoptic PNGs")


def _compact(ids: np.ndarray, segments: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A map to keep and its segments: each pixel's segment index (segments numbered 1..n), else the ids as they are."""
    seg_ids = np.array([s["id"] for s in segments], np.int64)
    if len(seg_ids) + 1 >= int(_SENTINEL):
        return ids.copy(), segments
    # a PNG's ids are below 2^24: as int32 numpy's take indexes the table without converting them to intp first
    index = index_map(ids.view(np.int32) if ids.dtype == np.uint32 else ids, seg_ids)
    if (index == _SENTINEL).any():
        return ids.copy(), segments
    numbered = [{**seg, "id": k} for k, seg in enumerate(segments, 1)]
    return index.astype(np.uint8 if len(seg_ids) < 255 else np.uint16), numbered


def _unknown_image(path: Path, image_id: Any, annotations: dict[Any, Any]) -> InputError:
    other = str(image_id) if not isinstance(image_id, str) else int(image_id) if image_id.isdigit() else None
    if other is not None and other in annotations:
        return InputError(f"{path}: image_id {image_id!r} is a {type(image_id).__name__} but the ground truth has "
                          f"{other!r}; pass the image ids as the ground-truth JSON writes them")
    return InputError(f"{path}: no annotation of image {image_id!r}; pass the ids of this JSON's images (or the "
                      "ground-truth JSON of the images you evaluate)")


def _plain(image_id: Any) -> Any:
    """An image id as the JSON writes it: a 0-d tensor or numpy integer as a Python int."""
    return image_id.item() if hasattr(image_id, "item") and not isinstance(image_id, (str, bytes)) else image_id


@dataclass(frozen=True)
class MetricPart:
    """A metric's images as one picklable value (:meth:`BasePanopticQuality.part`; :meth:`~BasePanopticQuality.merge`
    takes it): what a rank or process sends where the evaluators need more than the PQ sums."""

    category_ids: tuple[int, ...]
    scored: frozenset[Any]  # the image ids given
    analyses: bool
    evaluators: tuple[str, ...]  # the user's evaluators' names
    members: list[Any] = field(repr=False)  # the composite's members (panbench.evaluators.Evaluators.part)
    rules: tuple[str, ...] = ()
    category_isthing: tuple[bool, ...] = ()  # each category's thing flag, in the order of category_ids
    category_names: tuple[str, ...] = ()

    @property
    def build(self) -> MetricBuild:
        """What decides the shape of the state of the metric it is a part of (:class:`MetricBuild`)."""
        return MetricBuild(self.category_ids, self.analyses, self.rules,
                           tuple(cache_key_of(m) for m in self.members if not isinstance(m, BuiltIn)),
                           self.category_isthing, self.category_names)


def _api_words(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """``method`` with an evaluator's failure worded for the Python API: the evaluator's own exception, chained
    below the error, shows where (the command line's ``--debug`` has no part here)."""
    @functools.wraps(method)
    def worded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except PanbenchError as e:
            if (text := str(e)).endswith(_CLI_WHERE):
                e.args = (text[: -len(_CLI_WHERE)] + (" (the exception above shows where)" if e.__cause__ else ""),)
            raise
    return worded


class BasePanopticQuality:
    """What both metrics share: their state (one composite of evaluators) and everything but ``update``.
    ``evaluators``: the user's (docs/api.md, "Your own evaluator": instances, classes, ``module:Class`` or
    ``path/to/file.py:Class``), each image handed to them as ``eval`` and ``score`` hand it."""

    #: count the intersection table of CPU tensors with torch too (the tests' switch: tensors on another device
    #: always are, :mod:`panbench.metrics.device_table`)
    torch_table_on_cpu = False
    #: what ``update``'s errors call the maps and segments lists (an integration sets its own arguments' names)
    naming: Naming = Naming("gt_ids", "pred_ids", "gt_segments", "pred_segments", "with strict=False",
                            "the categories the metric was built with")

    def __init__(self, categories: Categories, *, analyses: bool = False, strict: bool = False,
                 evaluators: Sequence[Any] = (), rules: Sequence[str] = ()) -> None:
        self.categories = category_table(categories)
        self.rules = rule_list(rules)  # PQ under other rules: PQResult.rules
        self.analyses = analyses  # keep each image's result for the analyses of compute()
        self.strict = strict  # refuse ground-truth PNG ids that segments_info does not list
        self._user = load_evaluators(evaluators)  # a fresh copy of each for every round
        self.reset()

    @_api_words
    def reset(self) -> None:
        """Forget every image (a new evaluation round)."""
        self._reset_at(0)

    def _reset_at(self, first: int) -> None:
        """:meth:`reset`, the next image's ``ImageData.index`` ``first``: the MMEngine metric scores each image in a
        round of its own (its user's evaluators only, no analyses) and numbers them on."""
        self._evaluators = Evaluators.for_run(self.categories, strict=self.strict, analyses=self.analyses,
                                              semantic=False, rules=self.rules,
                                              extra=[fresh_copy(ev) for ev in self._user], first=first)
        self._seen: set[Any] = set()  # the image ids given since the last reset
        self._synced = False

    @property
    def evaluators(self) -> tuple[Any, ...]:
        """The user's evaluators as loaded (each round scores with a fresh copy): what a metric built alike takes."""
        return tuple(self._user)

    @property
    def build(self) -> MetricBuild:
        """What decides the shape of this metric's state: what :meth:`sync` compares over the ranks first."""
        cats = self.categories
        return MetricBuild(tuple(cats.ids), self.analyses, self.rules, tuple(cache_key_of(ev) for ev in self._user),
                           tuple(cats.isthing), tuple(cats.names))

    @property
    def n_images(self) -> int:
        """The images added since the last :meth:`reset`."""
        return self._evaluators.columns().n_images

    @property
    def scored(self) -> frozenset[Any]:
        """The image ids scored since the last :meth:`reset` (what a round's ranks gather and check)."""
        return frozenset(self._seen)

    def _score(self, image_id: Any, where: str, pred_ids: Any, pred_segments: Sequence[dict[str, Any]],
               gt_ids: Any, gt_segments: Sequence[dict[str, Any]]) -> ImageResult:
        self._check_new(image_id, where)
        names = self.naming
        check_one_device(where, **{names.pred_map or "pred_ids": pred_ids, names.gt_map or "gt_ids": gt_ids})
        pred_segs = list(pred_segments)
        if on_device(pred_ids, gt_ids, cpu=self.torch_table_on_cpu):
            gt_segs, result = self._score_on_device(where, pred_ids, pred_segs, gt_ids, list(gt_segments))
            reads_maps = "id_maps" in self._evaluators.needs  # else the maps stay on their device
            pred = id_map(pred_ids, where, names.pred_map or "pred_ids") if reads_maps else None
            gt = id_map(gt_ids, where, names.gt_map or "gt_ids") if reads_maps else None
        else:
            pred = id_map(pred_ids, where, names.pred_map or "pred_ids")
            gt = id_map(gt_ids, where, names.gt_map or "gt_ids")
            self._check_widths(where, pred.dtype, pred_segs, gt.dtype, gt_segments)
            gt_segs = counted_areas(gt, list(gt_segments))
            result = score_pair(self.categories, gt, gt_segs, pred, pred_segs, where, self.strict, names=names)
        index = self._evaluators.first + self.n_images
        self._evaluators.take(ImageData(index, image_id if image_id is not None else index, self.categories, gt,
                                        gt_segs, pred, pred_segs, result), where)
        if image_id is not None:
            self._seen.add(image_id)
        return result

    def _score_on_device(self, where: str, pred_ids: Any, pred_segs: list[dict[str, Any]], gt_ids: Any,
                         gt_segs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ImageResult]:
        """:func:`~panbench.pq.evaluator.score_pair` of two tensors with the table counted on their device
        (:mod:`panbench.metrics.device_table`): the ground truth's segments (areas counted) and the result."""
        names = self.naming
        pred = device_map(pred_ids, where, names.pred_map or "pred_ids")
        gt = device_map(gt_ids, where, names.gt_map or "gt_ids")
        self._check_widths(where, pred.dtype, pred_segs, gt.dtype, gt_segs)
        gt_segs = counted_areas(gt.ids, gt_segs)
        inter, gt_arrays, pred_arrays = device_pair_table(self.categories, gt, gt_segs, pred, pred_segs, where,
                                                          self.strict, names)
        return gt_segs, table_result(inter, gt_arrays, pred_arrays, where, names)

    def _check_widths(self, where: str, pred_dtype: np.dtype, pred_segs: Sequence[Any], gt_dtype: np.dtype,
                      gt_segs: Sequence[Any]) -> None:
        """Refuse a map of an integer type too narrow for its segments' ids (:func:`~.id_maps.check_width`)."""
        names = self.naming
        if names.pred_map is not None:
            check_width(pred_dtype, list(pred_segs), where, names.pred_map, names.pred_segments)
        if names.gt_map is not None:
            check_width(gt_dtype, list(gt_segs), where, names.gt_map, names.gt_segments)

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

    @_api_words
    def add(self, results: ImageResult | Sequence[ImageResult]) -> None:
        """Add images scored elsewhere: one :class:`~panbench.pq.result.ImageResult` (``update``'s) or a list."""
        chunk = [results] if isinstance(results, ImageResult) else list(results)
        self._check_open("add()")
        if not all(isinstance(r, ImageResult) for r in chunk):
            raise InputError("add(): pass the ImageResult objects update() returns (one, or a list of them)")
        if self._user:
            raise InputError("add(): a result alone carries no image for the metric's evaluators; score each image "
                             "with update(), or build the metric without evaluators")
        n = len(self.categories)
        if any(len(c) and (int(c.min()) < 0 or int(c.max()) >= n)  # first: a bad result changes nothing
               for r in chunk for c in (r.match.tp_cats, r.match.fn_cats, r.match.fp_cats)):
            raise InputError(f"add(): a result of another metric's categories added to a metric of {n}; add the "
                             "results of a metric of the same categories")
        first = self.n_images
        for k, result in enumerate(chunk):  # after the images so far
            self._evaluators.take(ImageData(first + k, first + k, self.categories, None, None, None, None, result),
                                  "add()")

    def sums(self) -> np.ndarray:
        """The state as one int64 vector: what crosses processes and ranks; the sum of two is the state of both."""
        return self._evaluators.columns().stats.to_array()

    def add_sums(self, sums: np.ndarray) -> None:
        """Add a :meth:`sums` vector of another metric (a rank's, a process's)."""
        self._check_open("add_sums()")
        if self.analyses or self._user or self.rules:
            raise InputError("add_sums(): the analyses, the evaluators and the rules need each image; merge() the "
                             "other metric or add() its results instead, or build both with analyses=False, no "
                             "evaluators and no rules")
        stats = PQStats.from_array(np.asarray(sums, np.int64))
        if len(stats.tp) != len(self.categories):
            raise InputError(f"add_sums(): a vector of {len(stats.tp)} categories added to a metric of "
                             f"{len(self.categories)}; add the sums of a metric of the same categories")
        self._evaluators.add_scored(_sums_alone(self.categories, stats), ())

    def part(self) -> MetricPart:
        """This metric's images as one picklable value, for another process or rank to :meth:`merge`."""
        cats = self.categories
        return MetricPart(tuple(cats.ids), frozenset(self._seen), self.analyses,
                          tuple(name_of(ev) for ev in self._user), self._evaluators.part(), self.rules,
                          tuple(cats.isthing), tuple(cats.names))

    @_api_words
    def merge(self, other: BasePanopticQuality | MetricPart) -> None:
        """Add another metric's images (of other processes or ranks; its image ids must not repeat this one's): the
        metric, or its :meth:`part`."""
        self._check_open("merge()")
        if other is self:
            raise InputError("merge(): a metric merged with itself would count its images twice; merge another one")
        part = other.part() if isinstance(other, BasePanopticQuality) else other
        if not isinstance(part, MetricPart):
            raise InputError(f"merge(): got {type(part).__name__}; merge a metric or the part() of one")
        if self.analyses and not part.analyses and part.category_ids == tuple(self.categories.ids):
            raise InputError("merge(): the other metric kept no per-image results; build it with analyses=True")
        if differs := build_difference(self.build, part.build, "here", "in the other", merging=True):
            raise InputError(f"merge(): the metrics have {differs}; merge metrics built alike (of one dataset, with "
                             "the same rules and evaluators)")
        if common := self._seen & part.scored:
            raise InputError(f"merge(): image {sorted(common, key=str)[0]!r} is in both metrics; merge the metrics "
                             "of disjoint images (one rank's each)")
        self._evaluators.reduce([part.members], offset=self.n_images)  # after this one's images
        self._seen |= part.scored

    @_api_words
    def sync(self, group: Any = None) -> None:
        """Sum the state over the ranks of ``torch.distributed`` (nothing when not initialised), on every rank; ranks
        whose metrics are built differently (:attr:`build`) are refused on every rank before any state crosses."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or self._synced:
            return
        builds: list[Any] = [None] * dist.get_world_size(group)
        dist.all_gather_object(builds, self.build, group=group)  # small: every rank compares the same list
        for rank, theirs in enumerate(builds):
            if differs := build_difference(builds[0], theirs, "on rank 0", f"on rank {rank}"):
                raise InputError(f"sync(): the ranks' metrics have {differs}; build the metric alike on every rank "
                                 "(the same categories, analyses, rules and evaluators)")
        total = self._evaluators.empty()
        if self.analyses or self._user or self.rules:  # the per-image results and shares too: every rank's members
            everyone: list[Any] = [None] * dist.get_world_size(group)
            dist.all_gather_object(everyone, self._evaluators.part(), group=group)
            for part in everyone:  # rank order: every rank ends with the same images in the same order
                total.reduce([part], offset=total.columns().n_images)
        else:  # the sums alone: one all-reduce of the integer vector
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else "cpu"
            t = torch.from_numpy(self.sums()).to(device)
            dist.all_reduce(t, group=group)
            total.add_scored(_sums_alone(self.categories, PQStats.from_array(t.cpu().numpy())), ())
        self._evaluators = total
        self._synced = True

    def compute(self) -> PQResult:
        """PQ, SQ and RQ of the images so far, one ``DiagnosisWarning`` per format mistake the sums show."""
        result = self.result()
        warn_findings(result.diagnosis, stacklevel=2)
        return result

    @_api_words
    def result(self) -> PQResult:
        """:meth:`compute` without the warning (the integrations log the diagnosis with their own logger)."""
        out = self._evaluators.evaluate()
        analyses = {k: v for k, v in out.items() if k not in _NOT_ANALYSES} if self.analyses and self.n_images else {}
        return PQResult.from_stats(self._evaluators.columns().stats, self.categories, analyses,
                                   out.get("evaluators", {}), out.get("rules", {}), out.get("rules_attribution", {}))


#: the result's keys that are not the analyses' fields (the per-image export ``analysis`` is the files of eval and
#: score)
_NOT_ANALYSES = ("metrics", "diagnosis", "analysis", "evaluators", "rules", "rules_attribution")


def _sums_alone(categories: CategoryTable, sums: PQStats) -> PanopticAccumulator:
    """Sums made elsewhere without their images, as images scored in bulk (the composite's ``add_scored``)."""
    acc = PanopticAccumulator(categories)
    acc.merge(sums)
    return acc


class PanopticQuality(BasePanopticQuality):
    """PQ streamed image by image: ``update`` with a prediction and its ground truth, ``compute`` at the end."""

    @_api_words
    def update(self, pred_ids: Any, pred_segments: Sequence[dict[str, Any]], gt_ids: Any,
               gt_segments: Sequence[dict[str, Any]], image_id: Any = None) -> ImageResult:
        """Score one image and add it: id maps (:func:`id_map`) and COCO segments_info of the prediction and the
        ground truth (docs/api.md; their values may be tensors); returns the image's result (small and picklable:
        :meth:`add` takes it)."""
        image_id = _plain(image_id)
        where = f"image {image_id}" if image_id is not None else f"image #{self.n_images}"
        names = self.naming
        pred_segs = plain_segments(pred_segments, where, names.pred_segments, names.pred_map or "pred_ids", False)
        gt_segs = plain_segments(gt_segments, where, names.gt_segments, names.gt_map or "gt_ids", True)
        return self._score(image_id, where, pred_ids, pred_segs, gt_ids, gt_segs)


class CocoPanopticQuality(BasePanopticQuality):
    """PQ of predictions against a COCO panoptic ground truth (JSON + PNG folder) read by :class:`GroundTruth`."""

    naming = Naming(None, "pred_ids", FILE_NAMES.gt_segments, "pred_segments", "with strict=False",
                    FILE_NAMES.categories)  # the ground truth: a PNG and its JSON's segments_info

    def __init__(self, gt_json: str | os.PathLike[str], gt_folder: str | os.PathLike[str] | None = None, *,
                 keep_ground_truth: bool = False, analyses: bool = False, strict: bool = False,
                 evaluators: Sequence[Any] = (), rules: Sequence[str] = ()) -> None:
        self.ground_truth = GroundTruth(gt_json, gt_folder, keep_ground_truth)
        super().__init__(self.ground_truth.categories, analyses=analyses, strict=strict, evaluators=evaluators,
                         rules=rules)

    @property
    def gt_json(self) -> Path:
        return self.ground_truth.json_path

    @_api_words
    def update(self, image_id: Any, pred_ids: Any, pred_segments: Sequence[dict[str, Any]]) -> ImageResult:
        """Score the prediction of image ``image_id`` of the ground-truth JSON and add it; returns its result."""
        image_id = _plain(image_id)
        self._check_new(image_id, f"image {image_id}")  # before reading its PNG
        pred_segments = plain_segments(pred_segments, f"image {image_id}", self.naming.pred_segments,
                                       self.naming.pred_map or "pred_ids", False)
        gt_ids, gt_segments, where, kept = self.ground_truth.image(image_id)
        result = self._score(image_id, where, pred_ids, pred_segments, gt_ids, gt_segments)
        if self.ground_truth.keep and not kept:  # kept once its first score has checked it
            self.ground_truth.hold(image_id, gt_ids, gt_segments)
        return result
