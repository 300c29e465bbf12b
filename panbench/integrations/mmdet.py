"""``PanbenchPanopticMetric``: MMDetection's ``CocoPanopticMetric`` (mmdet 3.x) scored in memory by panbench
(docs/api.md, "MMDetection / MMEngine"; a config's ``custom_imports`` of ``panbench.integrations.mmdet`` registers it):
its arguments, result keys, tables and numbers; ``self.results`` holds each image's small ``ImageResult``.  With
``format_only=True`` MMDetection's own metric writes the predictions, and nothing is scored."""

from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.evaluation.metrics.coco_panoptic_metric import CocoPanopticMetric, parse_pq_results, print_panoptic_table
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from panbench.errors import InputError
from panbench.metrics import CocoPanopticQuality, PanopticQuality, load_evaluators
from panbench.pq.coco_format import png_folder
from panbench.pq.diagnosis import findings_text
from panbench.pq.paths import not_a_folder, path_kind
from panbench.pq.png import read_ids

_NAME = "PanbenchPanopticMetric"
_DENSE_IDS = 1 << 24  # ids below this are counted with bincount; COCO's RGB encoding holds no more


def prediction_segments(pan: np.ndarray, num_classes: int, ignore_index: int,
                        label2cat: dict[int, int] | None) -> tuple[np.ndarray, list[dict[str, int]]]:
    """An mmdet panoptic map -> a COCO id map (0 = VOID) and its segments, as ``CocoPanopticMetric._parse_predictions``
    makes them (docs/api.md: a segment of value 0 takes the VOID pixels too); ``pan`` is not modified."""
    flat = pan.reshape(-1)
    top = int(flat.max()) if flat.size else 0
    counts = None
    if top < _DENSE_IDS:
        try:
            counts = np.bincount(flat)  # one pass; refuses negative values (and unsigned 64-bit ones)
        except (ValueError, TypeError):
            counts = None
    if counts is not None:
        present = np.flatnonzero(counts)
        areas = counts[present]
    else:
        present, areas = np.unique(flat, return_counts=True)
    labels = present % INSTANCE_OFFSET
    void = (labels == num_classes) | (labels == ignore_index)
    zero = int(present[-1]) + 1 if len(present) and present[0] == 0 and not void[0] else 0  # 0 is COCO's VOID
    moved = {int(v): zero for v in present[void]}
    if zero:
        moved[0] = zero
    ids = _remap(pan, moved, dense=counts is not None) if moved else pan
    segments = []
    for value, label, area in zip(present[~void].tolist(), labels[~void].tolist(), areas[~void].tolist()):
        cat = label2cat[label] if label2cat is not None else label
        if zero and value == 0:
            area += int(areas[void].sum())  # the VOID pixels are this segment's for mmdet
        segments.append({"id": moved.get(value, value), "category_id": cat, "area": area})
    return ids, segments


def _remap(pan: np.ndarray, moved: dict[int, int], dense: bool) -> np.ndarray:
    """``pan`` with the values of ``moved`` replaced, through a uint32 lookup table where ``dense``."""
    if dense:
        lut = np.arange(max(int(pan.max()), *moved.values()) + 1, dtype=np.uint32)
        lut[list(moved)] = list(moved.values())
        return np.take(lut, pan)
    out = pan.astype(np.int64, copy=True)
    for old, new in moved.items():
        out[pan == old] = new
    return out


def _check_paths(ann_file: str | None, seg_prefix: str | None) -> None:
    """Refuse in one line an ``ann_file`` that is not a file, or a ``seg_prefix`` (by default the folder of
    ``ann_file``'s path without ``.json``) that is not a folder, naming what is there
    (:func:`~panbench.pq.paths.path_kind`) and the argument to correct."""
    if ann_file and not osp.isfile(ann_file):
        kind = path_kind(ann_file)
        said = "not found" if kind is None else f"is {kind}, not a JSON file"
        raise InputError(f"{ann_file}: {_NAME}'s ann_file {said}; point ann_file at the COCO panoptic JSON (e.g. "
                         "annotations/panoptic_val2017.json)")
    if seg_prefix:  # "" reads each sample's seg_map_path (without ann_file)
        err = not_a_folder(seg_prefix, f"{_NAME}'s seg_prefix", "point seg_prefix at the folder of the ground-truth "
                           "panoptic PNGs")
    elif ann_file and seg_prefix is None:
        err = not_a_folder(png_folder(ann_file), f"the ground-truth PNG folder of {ann_file} (its path without "
                           ".json)", f"pass {_NAME}'s seg_prefix, the folder of its panoptic PNGs")
    else:
        err = None
    if err is not None:
        raise err


@METRICS.register_module()
class PanbenchPanopticMetric(BaseMetric):
    """COCO panoptic PQ, SQ, RQ as ``CocoPanopticMetric``, scored in memory (docs/api.md, "MMDetection / MMEngine")."""

    default_prefix: str | None = "coco_panoptic"

    def __init__(self, ann_file: str | None = None, seg_prefix: str | None = None, classwise: bool = False,
                 format_only: bool = False, outfile_prefix: str | None = None, nproc: int = 32,
                 file_client_args: dict | None = None, backend_args: dict | None = None,
                 collect_device: str = "cpu", prefix: str | None = None, keep_ground_truth: bool = True,
                 evaluators: Sequence[Any] = ()) -> None:
        if file_client_args is not None:
            raise InputError(f"{_NAME}: file_client_args is deprecated in mmdet 3.x; pass backend_args instead")
        if backend_args and backend_args.get("backend", "local") != "local":
            raise InputError(f"{_NAME}: backend_args {backend_args!r}: panbench reads local files only; copy "
                             "the annotations to a local folder or use type='CocoPanopticMetric'")
        if format_only and evaluators:
            raise InputError(f"{_NAME}: format_only=True writes the predictions and scores nothing, so evaluators "
                             "would see no image; leave out evaluators, or format_only")
        if format_only and outfile_prefix is None:
            raise InputError(f"{_NAME}: format_only=True writes the results under outfile_prefix; "
                             "set outfile_prefix='path/prefix'")
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classwise, self.format_only, self.nproc = classwise, format_only, nproc
        self.ann_file, self.seg_prefix, self.keep_ground_truth = ann_file, seg_prefix, keep_ground_truth
        self._writer = None
        if format_only:  # MMDetection's own metric writes the results; nothing is scored
            self._writer = CocoPanopticMetric(ann_file, seg_prefix, classwise, True, outfile_prefix, nproc,
                                              None, backend_args, collect_device, prefix)
        self._coco: CocoPanopticQuality | None = None
        self._json_categories: list[dict[str, Any]] | None = None
        self._evaluators = load_evaluators(evaluators)  # loaded and checked once; each image a fresh copy
        if not format_only:  # MMDetection's own metric reads them with format_only
            _check_paths(ann_file, seg_prefix)
        if ann_file and not format_only:
            self._coco = CocoPanopticQuality(ann_file, seg_prefix, keep_ground_truth=keep_ground_truth,
                                             evaluators=self._evaluators)
            table = self._coco.categories  # the annotation file's categories, in its order
            self._json_categories = [{"id": i, "name": n, "isthing": int(t)}
                                     for i, n, t in zip(table.ids, table.names, table.isthing)]
        self._label2cat: dict[int, int] | None = None
        self._meta_scorer: PanopticQuality | None = None  # without ann_file: categories from dataset_meta
        self._gt_cache: dict[str, np.ndarray] = {}
        self._index = 0  # the next sample's ImageData.index: the samples of this rank, counted since reset()

    @property
    def dataset_meta(self) -> dict | None:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        self._label2cat, self._meta_scorer = None, None
        if self._writer is not None:
            self._writer.dataset_meta = dataset_meta

    def categories(self) -> list[dict[str, Any]]:
        """The categories PQ averages over: the annotation file's, or ``dataset_meta``'s classes by label."""
        if self._json_categories is not None:
            return self._json_categories
        meta = self._meta()
        things = set(meta.get("thing_classes", ()))
        return [{"id": i, "name": n, "isthing": int(n in things)} for i, n in enumerate(meta["classes"])]

    def _meta(self) -> dict:
        if not self.dataset_meta or "classes" not in self.dataset_meta:
            raise InputError(f"{_NAME}: dataset_meta has no 'classes'; run it in an mmengine Evaluator "
                             "(the dataset sets it) or set metric.dataset_meta")
        return self.dataset_meta

    def label_to_category(self) -> dict[int, int] | None:
        """Label -> category id, as ``CocoPanopticMetric`` maps them; None without ann_file (label = id)."""
        if self._json_categories is None:
            return None
        if self._label2cat is None:
            classes = list(self._meta()["classes"])
            cat_ids = [c["id"] for c in self._json_categories if c["name"] in classes]
            if missing := sorted(set(classes) - {c["name"] for c in self._json_categories}):
                raise InputError(f"{self.ann_file}: no category named {missing[0]!r} (one of dataset_meta's "
                                 "classes); pass the annotation file of the model's dataset as ann_file")
            self._label2cat = dict(enumerate(cat_ids))
        return self._label2cat

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Score each data sample's prediction against its ground truth; keep its ``ImageResult`` (with
        ``evaluators``, its part: each sample scored in a round of its own, its ``ImageData.index`` the count of this
        rank's samples before it since :meth:`reset`, as ``PanopticQuality`` numbers its images)."""
        if self._writer is not None:
            self._writer.process(data_batch, data_samples)
            self.results.extend(self._writer.results)
            self._writer.results.clear()
            return
        num_classes = len(self._meta()["classes"])
        label2cat = self.label_to_category()
        for sample in data_samples:
            pred = sample["pred_panoptic_seg"]
            pan = pred["sem_seg"].cpu().numpy()[0]
            ids, segments = prediction_segments(pan, num_classes, pred.get("ignore_index", num_classes), label2cat)
            scorer: CocoPanopticQuality | PanopticQuality
            if self._coco is not None:
                scorer = self._coco
                if self._evaluators:
                    scorer._reset_at(self._index)  # one image's part each: mmengine's collect keeps one result a sample
                result = scorer.update(sample["img_id"], ids, segments)
            else:
                gt_ids, gt_segments = self._sample_ground_truth(sample)
                scorer = self._meta_scorer = self._meta_scorer or PanopticQuality(self.categories(),
                                                                                  evaluators=self._evaluators)
                if self._evaluators:
                    scorer._reset_at(self._index)
                result = scorer.update(ids, segments, gt_ids, gt_segments, image_id=sample["img_id"])
            self.results.append(scorer.part() if self._evaluators else result)
            self._index += 1

    def _sample_ground_truth(self, sample: dict) -> tuple[np.ndarray, list[dict[str, int]]]:
        """The ground truth of a data sample (no ann_file), as ``CocoPanopticMetric`` reads it: the PNG under seg_prefix
        (else ``seg_map_path``), ``segments_info`` with labels as category ids; a thing not ``is_thing`` is a crowd."""
        segm_file = osp.basename(sample["img_path"]).replace(".jpg", ".png")
        path = osp.join(self.seg_prefix, segm_file) if self.seg_prefix else sample["seg_map_path"]
        if (ids := self._gt_cache.get(path)) is None:
            if not osp.isfile(path):
                raise InputError(f"{path}: ground-truth PNG not found; check {_NAME}'s seg_prefix")
            ids = read_ids(Path(path), f"image {sample['img_id']} (ground truth)")  # as mmcv reads it
            if self.keep_ground_truth:
                self._gt_cache[path] = ids
        things = {c["id"] for c in self.categories() if c["isthing"]}
        segments = [{"id": s["id"], "category_id": s["category"],
                     "iscrowd": int(s["category"] in things and not s["is_thing"])}
                    for s in sample["segments_info"]]
        return ids, segments

    def compute_metrics(self, results: list) -> dict[str, Any]:
        """The nine metrics (0-100) from the images' results of every rank, printed as mmdet prints them, and the
        ``evaluators``' fields by name."""
        if self._writer is not None:
            return self._writer.compute_metrics(results)
        total = PanopticQuality(self.categories(), evaluators=self._evaluators)
        if self._evaluators:  # each image's part: its PQ and its evaluators' state
            for part in results:
                total.merge(part)
        else:
            total.add(results)  # one chunk: the images' contributions added at once
        result = total.compute()  # warns (DiagnosisWarning) on a format mistake, every evaluation
        if result.diagnosis:  # and into MMEngine's log, beside the table
            MMLogger.get_current_instance().warning(findings_text(result.diagnosis))
        pq = result.to_panopticapi()
        classwise = None
        if self.classwise:  # mmdet pairs the classes with the categories in the annotation file's order
            per_class = pq["per_class"]
            zero = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
            rows = [per_class.get(c["id"], zero) for c in self.categories()]
            classwise = dict(zip(self._meta()["classes"], rows))
        print_panoptic_table(pq, classwise, logger=MMLogger.get_current_instance())
        metrics: dict[str, Any] = parse_pq_results(pq)
        if result.evaluators:  # by name, as a record's; mmengine keeps a value that is not a number as run info
            metrics["evaluators"] = result.evaluators
        return metrics

    def evaluate(self, size: int) -> dict:
        """mmengine's evaluate; then this rank's round starts again (:meth:`reset`)."""
        try:
            return super().evaluate(size)
        finally:
            self.reset()

    def reset(self) -> None:
        """Forget this rank's images: their results, the running sums and the count that numbers them (kept ground
        truth stays)."""
        self.results.clear()
        for scorer in (self._coco, self._meta_scorer):
            if scorer is not None:
                scorer.reset()
        self._index = 0
