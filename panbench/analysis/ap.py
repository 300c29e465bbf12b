"""COCO mask AP of the thing categories beside PQ (the model zoos' AP^Th_pan), from instance predictions with
scores, evaluated by hotcoco (docs/analysis.md, "AP and mIoU beside PQ"); the masks' RLEs counted in C (``_rle.c``).
Numpy only here; hotcoco is imported inside functions, torch never (tensors are read
duck-typed through ``detach().cpu().numpy()``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq.extensions import load_extension
from panbench.pq.matching import CategoryTable

_rle = load_extension("panbench.analysis._rle")

AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # COCOeval.stats[0:6], in percent
# the predictions an image keeps (the best scores), as the zoos' max_per_image / test_topk_per_image; COCO's own
# maxDets (100) then applies per image and category
MAX_DETS = 100
# the record's ap_source: what gave the instances
AP_SOURCES = ("mmdet instance_on", "mmdet roi_head", "transformers post_process_instance_segmentation",
              "instances JSON")


def _hotcoco() -> Any:
    try:
        import hotcoco
    except ImportError as e:
        raise InputError("AP needs the hotcoco package (COCO evaluation); install it with `pip install hotcoco`, "
                         "or leave AP out") from e
    return hotcoco


@dataclass
class Instances:
    """One image's instance predictions: COCO RLE masks, scores, dataset category ids (not model labels)."""

    rles: list[dict[str, Any]]
    scores: np.ndarray  # float64, (N,)
    category_ids: np.ndarray  # int64, (N,)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        self.category_ids = np.asarray(self.category_ids, np.int64).reshape(-1)
        if not len(self.rles) == len(self.scores) == len(self.category_ids):
            raise ValueError(f"Instances: {len(self.rles)} masks, {len(self.scores)} scores and "
                             f"{len(self.category_ids)} category ids; give one of each per instance")

    def __len__(self) -> int:
        return len(self.rles)

    @staticmethod
    def empty() -> Instances:
        return Instances([], np.zeros(0, np.float64), np.zeros(0, np.int64))

    @staticmethod
    def from_masks(masks: np.ndarray, scores: Any, category_ids: Any) -> Instances:
        """From binary masks ``(N, H, W)`` (nonzero is inside)."""
        return Instances(encode_masks(masks), scores, category_ids)


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO RLEs (counts as ``str``, JSON-ready) of binary masks ``(N, H, W)``, as ``pycocotools.mask.encode``
    (nonzero is inside).  Bool or uint8 masks in C order are read where they are (no copy)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"encode_masks: masks of shape {masks.shape}; give (N, H, W)")
    n, h, w = (int(x) for x in masks.shape)
    if n == 0:
        return []
    if masks.dtype not in (np.bool_, np.uint8) or not masks.flags.c_contiguous:
        masks = np.ascontiguousarray(masks != 0)
    return [{"size": [h, w], "counts": c} for c in _rle.encode(masks.view(np.uint8), n, h, w)]


def gt_annotations(image_id: int, ids: np.ndarray, segments_info: Sequence[dict[str, Any]],
                   thing_ids: Iterable[int]) -> list[dict[str, Any]]:
    """One image's thing segments as COCO detection annotations, without ``id`` (docs/analysis.md, "AP and mIoU
    beside PQ")."""
    things = set(thing_ids)
    if not (segs := [s for s in segments_info if s["category_id"] in things]):
        return []
    rles = segment_rles(np.asarray(ids), [int(s["id"]) for s in segs])
    return [{"image_id": image_id, "category_id": int(s["category_id"]), "iscrowd": int(s.get("iscrowd", 0)),
             "area": s["area"], "bbox": list(s["bbox"]), "segmentation": r} for s, r in zip(segs, rles)]


def segment_rles(ids: np.ndarray, seg_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The RLE of each segment of an id map (H x W), as ``encode_masks(ids == seg_id)`` gives it, from one pass over
    the pixels' column-major runs (in C for a uint32 map of ids below 2^32 - 1, what panoptic PNGs decode to)."""
    h, w = ids.shape
    if ids.dtype == np.uint32 and all(0 <= int(s) < 0xFFFFFFFF for s in seg_ids):
        counts = _rle.segments(np.ascontiguousarray(ids), h, w, np.asarray(seg_ids, np.int64))
        return [{"size": [int(h), int(w)], "counts": c} for c in counts]
    flat = ids.T.ravel()
    n = flat.size
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1)) if n else np.zeros(0, np.int64)
    lengths = np.diff(np.append(starts, n))
    order = np.argsort(flat[starts], kind="stable")  # runs grouped by id, each group in pixel order
    by_id = flat[starts][order]
    encode = _hotcoco().mask.rle_to_string
    out = []
    for seg_id in seg_ids:
        run = order[np.searchsorted(by_id, seg_id) : np.searchsorted(by_id, seg_id, side="right")]
        st, ln = starts[run], lengths[run]
        ends = st + ln
        counts = np.empty(2 * len(st) + 1, np.int64)  # zeros, ones, zeros, ..., the zeros after the last run
        counts[0:-1:2] = st - np.concatenate(([0], ends[:-1]))
        counts[1::2] = ln
        counts[-1] = n - (ends[-1] if len(ends) else 0)
        if counts[-1] == 0 and len(counts) > 1:
            counts = counts[:-1]
        out.append({"size": [int(h), int(w)], "counts": encode({"size": [h, w], "counts": counts.tolist()})})
    return out


@dataclass
class APAccumulator:
    """The images scored so far: ``add`` one at a time, ``+`` two shares (any split: the same AP), :meth:`evaluate`."""

    categories: list[dict[str, Any]]  # the thing categories: id, name
    images: dict[int, tuple[int, int]] = field(default_factory=dict)  # image id -> (height, width)
    gt: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # image id -> annotations without "id"
    dt: dict[int, Instances] = field(default_factory=dict)

    @staticmethod
    def for_categories(categories: Iterable[dict[str, Any]]) -> APAccumulator:
        """For a dataset's ``categories`` (id, name, isthing): its thing categories."""
        return APAccumulator([{"id": int(c["id"]), "name": str(c.get("name", c["id"]))}
                              for c in categories if c.get("isthing")])

    @staticmethod
    def for_table(table: CategoryTable) -> APAccumulator:
        """For a dataset's :class:`~panbench.pq.matching.CategoryTable`: its thing categories."""
        return APAccumulator([{"id": int(i), "name": n} for i, n, t in zip(table.ids, table.names, table.isthing) if t])

    @property
    def thing_ids(self) -> list[int]:
        return [c["id"] for c in self.categories]

    def add_image(self, image_id: int, ids: np.ndarray, segments_info: Sequence[dict[str, Any]],
                  instances: Instances | None) -> None:
        """One image: its ground-truth id map and ``segments_info`` and its predictions (None or empty: none)."""
        h, w = np.shape(ids)
        self.add(image_id, (int(h), int(w)), gt_annotations(image_id, ids, segments_info, self.thing_ids), instances)

    def add(self, image_id: int, size: tuple[int, int], gt: list[dict[str, Any]], instances: Instances | None) -> None:
        """One image from its size (height, width), converted ground truth and predictions."""
        if image_id in self.images:
            raise ValueError(f"APAccumulator: image {image_id} added twice")
        self.images[image_id] = size
        self.gt[image_id] = gt
        self.dt[image_id] = instances if instances is not None else Instances.empty()

    def __add__(self, other: APAccumulator) -> APAccumulator:
        if both := set(self.images) & set(other.images):
            raise ValueError(f"APAccumulator: images {sorted(both)[:5]} in both parts")
        return APAccumulator(self.categories, {**self.images, **other.images}, {**self.gt, **other.gt},
                             {**self.dt, **other.dt})

    def gt_dataset(self) -> dict[str, Any]:
        """The ground truth as a COCO detection dataset (images in id order, annotation ids from 1)."""
        anns = [{**a, "id": k} for k, a in enumerate((a for i in sorted(self.images) for a in self.gt[i]), 1)]
        images = [{"id": i, "height": self.images[i][0], "width": self.images[i][1]} for i in sorted(self.images)]
        return {"images": images, "annotations": anns, "categories": self.categories}

    def results(self) -> list[dict[str, Any]]:
        """The predictions as COCO instance results (``image_id``, ``category_id``, ``segmentation``, ``score``)."""
        return [{"image_id": image_id, "category_id": int(c), "segmentation": r, "score": float(s)}
                for image_id in sorted(self.dt)
                for r, s, c in zip(self.dt[image_id].rles, self.dt[image_id].scores, self.dt[image_id].category_ids)]

    def evaluate(self) -> dict[str, float]:
        """AP, AP50, AP75, APs, APm, APl (0-100) of the thing categories: COCO's segm evaluation (hotcoco)."""
        return coco_segm_ap(self.gt_dataset(), self.results())


def ap_fields(acc: APAccumulator, source: str) -> dict[str, Any]:
    """The record's ``ap`` and ``ap_source`` of a run's accumulator (``source``: one of :data:`AP_SOURCES`)."""
    if source not in AP_SOURCES:
        raise ValueError(f"ap_fields: source {source!r} is not one of {AP_SOURCES}")
    return {"ap": acc.evaluate(), "ap_source": source}


def coco_segm_ap(gt: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """COCO mask AP (``COCOeval`` segm ``stats[0:6]``, percent) of ``results`` on ``gt``; -1: no number."""
    hc = _hotcoco()
    coco_gt = hc.COCO(gt)
    known = {c["id"] for c in gt["categories"]}
    results = [r for r in results if r["category_id"] in known]  # stuff predictions: not thing AP
    ev = hc.COCOeval(coco_gt, coco_gt.load_res(results), "segm")
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its summary; panbench prints its own
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: 100.0 * float(v) if v >= 0 else -1.0 for k, v in zip(AP_KEYS, ev.stats[:6])}


def ap_line(ap: dict[str, float]) -> str:
    """The terminal line of an AP block (``-`` where COCO has no number)."""
    return "mask AP (things): " + ", ".join(f"{k} {v:.2f}" if v >= 0 else f"{k} -" for k, v in ap.items())


def write_results(path: str | os.PathLike[str], results: list[dict[str, Any]]) -> Path:
    """Write COCO instance results (what ``loadRes`` reads) to ``path``; returns it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(results))
    tmp.replace(p)
    return p

DEVICE_CHUNK = 1 << 24  # pixels of masks encoded at once on a device


def as_numpy(x: Any) -> np.ndarray:
    """A tensor (torch, on any device) or array as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def encode_on_device(masks: Any, chunk: int = DEVICE_CHUNK) -> list[dict[str, Any]]:
    """:func:`encode_masks` of an (N, H, W) torch tensor on its device, only the strings' bytes copied to the host.
    ``chunk`` bounds the pixels encoded at once (about 100 bytes a pixel at worst, 1.7 GB a chunk)."""
    n, h, w = (int(s) for s in masks.shape)
    if n == 0 or h * w == 0:
        return encode_masks(as_numpy(masks))
    out: list[dict[str, Any]] = []
    step = max(1, chunk // (h * w))
    for i in range(0, n, step):
        chars, ends = (as_numpy(x) for x in _device_strings(*_device_counts(masks[i : i + step], h * w)))
        raw = chars.tobytes()
        out += [{"size": [h, w], "counts": raw[a:b].decode("ascii")} for a, b in zip([0, *ends[:-1]], ends)]
    return out


def _device_counts(masks: Any, hw: int) -> tuple[Any, Any]:
    """Each mask's column-major runs, zeros first, on its device: a 0 pixel put before each mask, a run starts at
    the first (padding) pixel and wherever the pixels change; a run's count is the distance to the next start (the
    next mask's first start ends a mask's last run), less the padding pixel for a mask's first run.  Returns the
    int64 counts, the masks one after another, and whether each count is its mask's first."""
    n = masks.shape[0]
    pixels = (masks != 0).transpose(1, 2).reshape(n, hw)  # column-major, as COCO counts
    starts = pixels.new_ones((n, hw + 1))
    starts[:, 1] = pixels[:, 0]  # the padding pixel is 0
    starts[:, 2:] = pixels[:, 1:] != pixels[:, :-1]
    at = starts.reshape(-1).nonzero()[:, 0]
    first = at % (hw + 1) == 0  # each mask's padding pixel
    return at.diff(append=at.new_full((1,), n * (hw + 1))) - first.long(), first


def _device_strings(counts: Any, first: Any) -> tuple[Any, Any]:
    """pycocotools' ``rleToString`` on the device: each count from a mask's fourth on (none of it and the two
    before it a mask's first) less the count two before, written in 5-bit groups, low first, 0x20 marking that more
    follow, plus 48.  A value takes the fewest groups that hold it as a signed number (where pycocotools' loop
    stops).  Returns the characters (uint8) and where each mask's string ends in them."""
    x = counts.clone()
    x[2:] -= (~(first[2:] | first[1:-1] | first[:-2])).long() * counts[:-2]
    groups = 1 + sum(((x < -(1 << (5 * g - 1))) | (x >= 1 << (5 * g - 1))).long() for g in range(1, 7))
    chars = first.new_zeros((len(x), 7)).byte()
    for j in range(7):
        chars[:, j] = (((x >> (5 * j)) & 31) | ((groups > j + 1).long() << 5)) + 48
    keep = counts.new_tensor(range(7))[None, :] < groups[:, None]
    # a mask's last count is followed by the next mask's first; the very last, by the first of all, rolled round
    return chars[keep], groups.cumsum(0)[first.roll(-1, 0)]


def from_arrays(masks: Any, scores: Any, labels: Any, label2cat: Sequence[int],
                max_dets: int | None = MAX_DETS) -> Instances:
    """Binary masks (N, H, W), scores (N,) and model labels (N,) as :class:`Instances` in dataset category ids,
    in the order of decreasing score; the ``max_dets`` best kept (None: all), as the zoos' ``max_per_image``."""
    scores = as_numpy(scores).astype(np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")[:max_dets] if max_dets else np.arange(len(scores))
    if not (device := getattr(getattr(masks, "device", None), "type", "cpu") != "cpu"):  # a tensor on an accelerator
        masks = as_numpy(masks)
    if masks.ndim != 3 or len(masks) != len(scores):
        raise ValueError(f"masks of shape {tuple(masks.shape)} for {len(scores)} scores; give (N, H, W)")
    if device or len(order) == len(masks):  # a GPU's masks, or every mask kept: encoded where they lie (no copy),
        rles = (encode_on_device if device else encode_masks)(masks)  # the RLEs picked in score order
        ordered = [rles[i] for i in order]
    else:
        ordered = encode_masks(masks[order])
    lut = np.asarray(label2cat, np.int64)  # model label -> dataset category id
    labels = as_numpy(labels).astype(np.int64).reshape(-1)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(lut)):
        raise ValueError(f"model labels {sorted(set(labels.tolist()))[:5]}... outside the {len(lut)} the model maps")
    return Instances(ordered, scores[order], lut[labels][order])


def semantic_categories(label_map: Any, label2cat: Sequence[int], void_label: int | None = None) -> np.ndarray:
    """An (H, W) map of model labels (transformers' ``post_process_semantic_segmentation``, an argmax) as dataset
    category ids; ``void_label`` (or a label outside ``label2cat``) becomes -1 (VOID)."""
    labels = as_numpy(label_map).astype(np.int64)
    lut = np.append(np.asarray(label2cat, np.int64), -1)
    bad = (labels < 0) | (labels >= len(label2cat))
    if void_label is not None:
        bad |= labels == void_label
    return lut[np.where(bad, len(label2cat), labels)]
