"""``PanbenchPanopticEvaluator``: detectron2's ``COCOPanopticEvaluator`` scored in memory by panbench
(:class:`panbench.metrics.CocoPanopticQuality`): its arguments, input, result dict and printed table, each output's
``panoptic_seg`` converted as ``COCOPanopticEvaluator.process`` converts it, nothing written and the outputs left
as they are; docs/api.md, "detectron2", says the rules and what differs."""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.evaluation.panoptic_evaluation import _print_panoptic_results
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from panbench.errors import InputError
from panbench.metrics import CocoPanopticQuality, PanopticQuality
from panbench.metrics.panoptic import id_map
from panbench.pq.diagnosis import findings_text

_NAME = "PanbenchPanopticEvaluator"
_MAX_ID = 1 << 24  # a COCO PNG's ids, R + 256 G + 256^2 B (the core's limit; integrations import panbench.metrics only)
# (result key, group, panopticapi's key): PQ, SQ, RQ, PQ_th, ..., RQ_st
_KEYS = [(m + s, g, m.lower()) for s, g in (("", "All"), ("_th", "Things"), ("_st", "Stuff"))
         for m in ("PQ", "SQ", "RQ")]


def present_values(flat: np.ndarray) -> np.ndarray:
    """The distinct values of a flat segment map, sorted: ``np.unique`` of the values that start a run (a few a row)."""
    if flat.size == 0:
        return flat[:0]
    return np.unique(np.concatenate((flat[:1], flat[np.flatnonzero(flat[1:] != flat[:-1]) + 1])))


class PredictionSegments:
    """detectron2's ``panoptic_seg`` -> a COCO id map (0 VOID) and its segments with the dataset's category ids."""

    def __init__(self, dataset_name: str, meta: Any) -> None:
        self.dataset_name, self.meta = dataset_name, meta
        self.thing_to_dataset = {v: k for k, v in meta.thing_dataset_id_to_contiguous_id.items()}
        self.stuff_to_dataset = {v: k for k, v in meta.stuff_dataset_id_to_contiguous_id.items()}
        self.things = set(self.thing_to_dataset)  # a label's class is a thing where it is one of these

    def __call__(self, panoptic_seg: Any, where: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
        if not isinstance(panoptic_seg, Sequence) or len(panoptic_seg) != 2:
            raise InputError(f"{where}: panoptic_seg is {type(panoptic_seg).__name__}; give the pair (id map "
                             "tensor, segments_info list or None) as detectron2's panoptic models return it")
        pan, segments_info = panoptic_seg
        ids = id_map(pan, where, "panoptic_seg's map")
        if segments_info is None:
            return self._labels(ids, where)
        if not isinstance(segments_info, Sequence) or isinstance(segments_info, (str, bytes)):
            raise InputError(f"{where}: segments_info is {type(segments_info).__name__}; give a list of dicts ('id', "
                             "'category_id', 'isthing'), or None for a map of category * label_divisor + instance")
        return ids, [self._segment(s, k, where) for k, s in enumerate(segments_info)]

    def _segment(self, s: Any, k: int, where: str) -> dict[str, Any]:
        if not isinstance(s, Mapping) or "id" not in s or "category_id" not in s:
            raise InputError(f"{where}: segments_info[{k}] is {s!r}; each segment is a dict with 'id' and "
                             "'category_id' (and 'isthing' for a contiguous id)")
        isthing, cat = s.get("isthing"), s["category_id"]
        if isthing is None:  # the dataset's category id, used as it is
            return {"id": int(s["id"]), "category_id": cat}
        table, which = ((self.thing_to_dataset, "thing") if isthing is True  # COCOPanopticEvaluator's `is True`
                        else (self.stuff_to_dataset, "stuff"))
        if cat not in table:
            raise InputError(f"{where}: segment {s['id']} has isthing={isthing!r} and category_id {cat!r}, not a "
                             f"contiguous id of the {which} of dataset {self.dataset_name!r}; give the contiguous ids "
                             "of the dataset's metadata (isthing exactly True for a thing), or the dataset's ids "
                             "without 'isthing'")
        return {"id": int(s["id"]), "category_id": table[cat]}

    def _labels(self, pan: np.ndarray, where: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """A map of ``category * label_divisor + instance`` (-1 VOID): each value its segment ``value + 1``."""
        if (divisor := getattr(self.meta, "label_divisor", None)) is None:
            raise InputError(f"{where}: segments_info is None but dataset {self.dataset_name!r} has no metadata "
                             "'label_divisor'; set MetadataCatalog.get(name).label_divisor or return segments_info")
        if pan.dtype.itemsize < 4 or pan.dtype.kind == "u":  # + 1 wraps neither -1 of a small type nor a maximum
            pan = pan.astype(np.int64)
        ids = pan + 1  # 0 is VOID in COCO's encoding; an int32 maximum wraps to a negative value, refused below
        present = present_values(ids.reshape(-1))
        lo, hi = (int(present[0]), int(present[-1])) if present.size else (0, 0)
        if lo < 0 or hi >= _MAX_ID:
            bad = lo - 1 if lo < 0 else hi - 1
            raise InputError(f"{where}: panoptic_seg holds label {bad}; with segments_info None its values are category"
                             f" * label_divisor + instance, -1 for VOID, below {_MAX_ID - 1} (a COCO PNG's ids)")
        segments = []
        for value in present[present > 0].tolist():
            cls = (value - 1) // divisor
            table = self.thing_to_dataset if cls in self.things else self.stuff_to_dataset
            if cls not in table:
                raise InputError(f"{where}: label {value - 1} is of class {cls} (label // label_divisor "
                                 f"{divisor}), a contiguous id of neither the things nor the stuff of dataset "
                                 f"{self.dataset_name!r}; give category * label_divisor + instance with the "
                                 "dataset's contiguous ids")
            segments.append({"id": value, "category_id": table[cls]})
        return ids.view(np.uint32) if ids.dtype == np.int32 else ids, segments  # uint32: as a PNG's ids


class PanbenchPanopticEvaluator(DatasetEvaluator):
    """COCO panoptic PQ, SQ, RQ as ``COCOPanopticEvaluator``, scored in memory (docs/api.md, "detectron2")."""

    def __init__(self, dataset_name: str, output_dir: str | None = None, *, keep_ground_truth: bool = False,
                 evaluators: Sequence[Any] = ()) -> None:
        self.dataset_name = dataset_name
        self._metadata = MetadataCatalog.get(dataset_name)
        for key in ("thing_dataset_id_to_contiguous_id", "stuff_dataset_id_to_contiguous_id", "panoptic_json",
                    "panoptic_root"):
            if not hasattr(self._metadata, key):
                raise InputError(f"{_NAME}: dataset {dataset_name!r} has no metadata {key!r}; register it with "
                                 "detectron2.data.datasets.register_coco_panoptic (or set "
                                 f"MetadataCatalog.get(name).{key})")
        self._convert = PredictionSegments(dataset_name, self._metadata)
        self._output_dir = output_dir
        if output_dir is not None:
            PathManager.mkdirs(output_dir)
        self._gt_json = PathManager.get_local_path(self._metadata.panoptic_json)
        self._coco = CocoPanopticQuality(self._gt_json, PathManager.get_local_path(self._metadata.panoptic_root),
                                         keep_ground_truth=keep_ground_truth, evaluators=evaluators)
        self._coco.naming = dataclasses.replace(self._coco.naming, pred_map="panoptic_seg's map",
                                                pred_segments="panoptic_seg's segments_info")  # what process() takes
        if "panoptic_seg" in (names := self._coco.part().evaluators):
            raise InputError(f"{_NAME}: an evaluator is named 'panoptic_seg', the task of the PQ numbers; give it "
                             f"another name (its class attribute 'name')")
        self._names = names

    def reset(self) -> None:
        """A new round: no image scored (kept ground truth stays)."""
        self._coco.reset()

    def process(self, inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]]) -> None:
        """Score each output's ``panoptic_seg`` against its input's ``image_id``; a refused image adds nothing."""
        if len(inputs) != len(outputs):
            raise InputError(f"{_NAME}.process: {len(inputs)} inputs and {len(outputs)} outputs; pass the batch "
                             "the model was given and its outputs, one each")
        for inp, out in zip(inputs, outputs):
            if "image_id" not in inp or "panoptic_seg" not in out:
                raise InputError(f"{_NAME}.process: an input needs 'image_id' and its output 'panoptic_seg' "
                                 f"(got input keys {sorted(inp)}, output keys {sorted(out)}); pass the dataset's "
                                 "dicts and the model's outputs")
            image_id = inp["image_id"]
            image_id = image_id.item() if hasattr(image_id, "item") else image_id
            ids, segments = self._convert(out["panoptic_seg"], f"image {image_id}")
            self._coco.update(image_id, ids, segments)

    def evaluate(self) -> OrderedDict[str, dict[str, Any]] | None:
        """The nine numbers (0-100) of every rank's images on the main process, printed as detectron2 prints them;
        each of ``evaluators`` adds its fields as a task of its name."""
        comm.synchronize()
        parts = comm.gather(self._coco.part())
        if not comm.is_main_process():
            return None
        total = PanopticQuality(self._coco.categories, evaluators=self._coco.evaluators)
        seen: set[Any] = set()
        for part in parts:
            if again := seen.intersection(part.scored):
                raise InputError(f"{_NAME}: image {sorted(again, key=str)[0]!r} was scored by two ranks; give each "
                                 "rank its own images (detectron2's InferenceSampler does)")
            seen.update(part.scored)
            total.merge(part)
        if missing := [i for i in self._coco.ground_truth.annotations if i not in seen]:
            raise InputError(f"{_NAME}: {len(missing)} of the {len(self._coco.ground_truth)} images of {self._gt_json} "
                             f"have no prediction (image {missing[0]!r} first); process every image of dataset "
                             f"{self.dataset_name!r}, as COCOPanopticEvaluator (panopticapi) requires")
        result = total.compute()  # warns (DiagnosisWarning) on a format mistake, every evaluation
        if result.diagnosis:  # and into detectron2's log, beside the table
            logging.getLogger(__name__).warning(findings_text(result.diagnosis))
        pq = result.to_panopticapi()
        _print_panoptic_results(pq)
        out = OrderedDict({"panoptic_seg": {key: 100 * pq[group][k] for key, group, k in _KEYS}})
        out.update((name, result.evaluators[name]) for name in self._names)  # each evaluator a task of its own
        return out
