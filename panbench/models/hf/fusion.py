"""The post-processing stage of an ``hf:`` model (:class:`Fusion`, the stage the eval loop times): transformers'
``post_process_panoptic_segmentation`` or ``--postprocess``, and under the original's input (:class:`OriginalFusion`)
the original's mask upsampling and fusion (:mod:`.original`) or the steps between; each image's share of a batch's
outputs (:func:`one_image`) and transformers' segments as panbench's (:func:`to_panbench_segments`)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from panbench.models.encoding import relabelled
from panbench.models.hf.original import detr_fusion, image_masks, query_fusion
from panbench.models.hf.types import ModelType, Original
from panbench.models.postprocess import PostProcess, merge_queries

MASK_FIELDS = ("masks_queries_logits", "pred_masks")  # per-query mask logits, at a fraction of the padded input
# what post_process_panoptic_segmentation reads (transformers 4.4x-5.x): the rest (hidden states, pixel-decoder
# features) is never copied to float32 per image
POST_FIELDS = ("class_queries_logits", "logits", "pred_boxes", *MASK_FIELDS)


@dataclass(frozen=True)
class HFSegments:
    """transformers' post-processing of one image: segment-id map (0 or -1: none) and ``segments_info``."""

    segmentation: torch.Tensor
    info: list[dict[str, Any]]


@dataclass(frozen=True)
class HFMerged:
    """``--postprocess maskwise|argmax`` of one image: mmdet's panoptic map and each segment's score by its code."""

    pan: torch.Tensor
    scores: dict[int, float]


class Fusion:
    """The stage the eval loop times (``predict``): the processor's panoptic post-processing, or ``--postprocess``."""

    def __init__(self, mtype: ModelType, post: Callable, settings: dict, order: list[int], n_things: int,
                 fuse: set[int], n_hf: int) -> None:
        self.post, self.settings = post, settings
        # the stuff labels whose segments merge: a set (label_ids_to_fuse) or a sorted list (EoMT's stuff_classes)
        self.stuff: dict[str, Any] = {mtype.stuff_keyword: sorted(fuse) if mtype.stuff_keyword == "stuff_classes"
                                      else fuse}
        self.label_of = {hid: k for k, hid in enumerate(order)}  # model label id -> panbench label
        self.num_classes, self.num_things_classes = len(order), n_things
        # what --postprocess maskwise|argmax reads: class logits in panbench's label order, "no object" last
        self.columns = [*order, n_hf] if mtype.query_masks and len(order) == n_hf else None
        self.postprocess: PostProcess | None = None  # --postprocess maskwise|argmax

    def predict(self, outputs: Any, sizes: list[tuple[int, int]], padded: tuple[int, int],
                targets: list[tuple[int, int]]) -> list[HFSegments | HFMerged]:
        """:meth:`segments`, under the name the eval loop times inside the forward."""
        return self.segments(outputs, sizes, padded, targets)

    def segments(self, outputs: Any, sizes: list[tuple[int, int]], padded: tuple[int, int],
                 targets: list[tuple[int, int]]) -> list[HFSegments | HFMerged]:
        """One output per image: :class:`HFSegments`, or with ``--postprocess`` :class:`HFMerged`."""
        return [self.one(self.image(outputs, i, size, padded), target)
                for i, (size, target) in enumerate(zip(sizes, targets))]

    def image(self, outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
        """Image ``i``'s share of a batch's outputs, as :meth:`one` reads it (:func:`one_image`)."""
        return one_image(outputs, i, size, padded)

    def share(self, outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
        """Image ``i``'s share as transformers' post-processing (panoptic, instance, semantic) reads it: cropped to
        the image's input (:func:`one_image`)."""
        return one_image(outputs, i, size, padded)

    def one(self, one: SimpleNamespace, target: tuple[int, int], settings: dict[str, float] | None = None,
            postprocess: PostProcess | None = None) -> HFSegments | HFMerged:
        """One image's output (:func:`one_image`) under ``settings`` and ``postprocess`` (default: the model's)."""
        settings = self.settings if settings is None else settings
        pp = self.postprocess if postprocess is None else postprocess
        if pp is not None and pp.name != "default" and self.columns is not None:
            masks = F.interpolate(one.masks_queries_logits, size=target, mode="bilinear", align_corners=False)
            scores: dict[int, float] = {}
            pan = merge_queries(one.class_queries_logits[0][:, self.columns], masks[0], self.num_classes,
                                self.num_things_classes, pp, scores)
            return HFMerged(pan, scores)
        r = self.post(one, target_sizes=[target], **self.stuff, **settings)[0]
        return HFSegments(r["segmentation"], r["segments_info"])


class OriginalFusion(Fusion):
    """The post-processing of a model fed the original's input (``--pipeline``, :mod:`.original`): the original's
    mask upsampling, crop and resize and its fusion (``original``), on the model's device; the same masks fused by
    transformers' ``compute_segments`` (``original-masks``); transformers' post-processing (``original-input``).
    ``--postprocess maskwise|argmax`` as under transformers' pipeline."""

    def __init__(self, protocol: Original, pipeline: str, mtype: ModelType, post: Callable, settings: dict,
                 order: list[int], n_things: int, fuse: set[int], n_hf: int) -> None:
        super().__init__(mtype, post, settings, order, n_things, fuse, n_hf)
        self.protocol, self.pipeline = protocol, pipeline
        self.pad_square = mtype.pad_square  # EoMT: transformers' post-processing reads the whole padded square
        self.from_logits = mtype.segments_from_logits  # EoMT's compute_segments applies the sigmoid itself
        # the processor's module: transformers' remove_low_and_no_objects and compute_segments (original-masks)
        self.processor_module = inspect.getmodule(type(post.__self__)) if inspect.ismethod(post) else None
        # per model label: a thing or not; a label mapped to no category (DETR's N/A) as its original counts it:
        # DETR's hubconf.py is_thing_map, ids up to 90 (its labels are COCO's ids), a thing otherwise
        unmapped = (lambda h: h <= 90) if protocol.fusion == "mask_argmax" else (lambda h: True)
        self.is_thing = [self.label_of[h] < n_things if h in self.label_of else unmapped(h) for h in range(n_hf)]

    def image(self, outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
        """Image ``i``'s outputs uncropped (the originals upsample the padded batch's masks), with its resized
        ``size`` and the batch's ``padded`` size."""
        one = one_image(outputs, i, padded, padded)
        one.size, one.padded = size, padded
        return one

    def share(self, outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
        """As transformers' post-processing reads it: cropped to the image's resized input, but EoMT's whole padded
        square (its post-processing takes the padding off itself)."""
        return one_image(outputs, i, padded if self.pad_square else size, padded)

    def one(self, one: SimpleNamespace, target: tuple[int, int], settings: dict[str, float] | None = None,
            postprocess: PostProcess | None = None, pipeline: str | None = None) -> HFSegments | HFMerged:
        settings = self.settings if settings is None else settings
        pp = self.postprocess if postprocess is None else postprocess
        pipeline = self.pipeline if pipeline is None else pipeline
        if (pp is not None and pp.name != "default" and self.columns is not None) or pipeline == "original-input":
            # transformers' post-processing reads the image's share (EoMT's: its whole padded square)
            return super().one(self.share(vars(one), 0, one.size, one.padded), target, settings, postprocess)
        if pipeline == "original-masks":
            return self._compute_segments(one, target, settings)
        p = self.protocol
        if p.fusion == "mask_argmax":
            seg = detr_fusion(one.logits[0], one.pred_masks[0], one.size, target, self.is_thing,
                              settings["threshold"])
        else:
            seg = query_fusion(one.class_queries_logits[0], one.masks_queries_logits[0], one.padded, one.size,
                               target, self.is_thing, settings["threshold"], settings["overlap_mask_area_threshold"],
                               own_mask=p.fusion == "own_mask", mask_threshold=settings["mask_threshold"])
        return HFSegments(seg.id_map, seg.info)

    def _compute_segments(self, one: SimpleNamespace, target: tuple[int, int],
                          settings: dict[str, float]) -> HFSegments:
        """The original's masks (upsampled, cropped, resized, then the sigmoid) fused by transformers' own
        ``remove_low_and_no_objects`` and ``compute_segments`` (its processor's module): the fusion step alone."""
        module = self.processor_module
        assert module is not None, "the processor's post-processing is a method of its class"
        logits, masks = one.class_queries_logits[0].float(), one.masks_queries_logits[0]
        scores, labels = F.softmax(logits, dim=-1).max(-1)
        kept, scores, labels = module.remove_low_and_no_objects(torch.arange(len(labels), device=labels.device),
                                                                scores, labels, settings["threshold"],
                                                                logits.shape[-1] - 1)
        if kept.numel() == 0:
            return HFSegments(torch.zeros(target, dtype=torch.int32), [])
        probs = image_masks(masks[kept].float(), one.padded, one.size, target)
        if not self.from_logits:
            probs = probs.sigmoid()
        seg, info = module.compute_segments(probs, scores, labels, mask_threshold=settings["mask_threshold"],
                                            overlap_mask_area_threshold=settings["overlap_mask_area_threshold"],
                                            **self.stuff)
        return HFSegments(seg, info)


def to_panbench_segments(seg: torch.Tensor, info: list[dict[str, Any]], label_of: dict[int, int],
                         label2cat: list[int]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """transformers' segment-id map and ``segments_info`` -> a uint32 id map (0 = VOID) of the segments that map,
    each with transformers' ``score`` (a fused stuff segment: the highest of its queries' scores)."""
    u, inv = torch.unique(seg.to(torch.int64), return_inverse=True)
    where = {v: k for k, v in enumerate(u.tolist())}
    new_id = np.zeros(len(where), np.uint32)
    first: dict[int, dict[str, Any]] = {}  # a fused stuff class lists one entry per query, all with one id
    best: dict[int, float] = {}
    for s in info:
        sid = int(s["id"])
        first.setdefault(sid, s)
        if "score" in s:
            best[sid] = max(best.get(sid, -math.inf), float(s["score"]))
    segs: list[dict[str, Any]] = []
    for sid, s in first.items():
        label = label_of.get(int(s["label_id"]))
        if label is not None and sid in where:
            new_id[where[sid]] = len(segs) + 1
            segs.append({"id": len(segs) + 1, "category_id": int(label2cat[label]), "iscrowd": 0})
            if sid in best:
                segs[-1]["score"] = best[sid]
    return relabelled(inv, new_id), segs


def one_image(outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
    """Image ``i`` of a batch's outputs (float32), its mask logits cropped to its own padded size."""
    fields = {}
    for k, v in outputs.items():
        if k in POST_FIELDS and isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] > i:
            v = v[i:i + 1].float() if v.is_floating_point() else v[i:i + 1]
            if k in MASK_FIELDS and tuple(size) != tuple(padded):
                mh, mw = v.shape[-2:]
                v = v[..., : math.ceil(size[0] * mh / padded[0]), : math.ceil(size[1] * mw / padded[1])]
            fields[k] = v
    return SimpleNamespace(**fields)
