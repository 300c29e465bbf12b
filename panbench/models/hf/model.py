"""The transformers family behind :class:`panbench.models.protocol.PanopticModel`: :class:`HFPanoptic` runs a
model loaded by :func:`panbench.models.hf.load.load_hf_model` with its processor: the processor as the data
pipeline, padding and the network as the forward, the processor's ``post_process_panoptic_segmentation`` (with the
original releases' settings) as the model's own panoptic fusion, whose segments become panbench's segments
(:func:`to_panbench_segments`); ``--postprocess maskwise|argmax`` (:mod:`panbench.models.postprocess`) merges the
query masks instead.

With AP on (:meth:`HFPanoptic.enable_instances`), each image's output also keeps the network's outputs for it
(:class:`HFOutput`), read after the timed part by the processor's ``post_process_instance_segmentation``
(:func:`instances_of`: AP) and ``post_process_semantic_segmentation`` (:func:`semantic_of`: mIoU)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from panbench.analysis.instances import from_hf_instances, semantic_categories
from panbench.errors import PanbenchError
from panbench.models.amp import autocast_forward, keep_autocast
from panbench.models.encoding import panoptic_to_segments
from panbench.models.hf.types import postprocess_refusal
from panbench.models.postprocess import PostProcess, merge_queries
from panbench.models.protocol import timed_calls

if TYPE_CHECKING:
    from panbench.analysis.ap import Instances
    from panbench.models.hf.types import ModelType

MASK_FIELDS = ("masks_queries_logits", "pred_masks")  # per-query mask logits, at a fraction of the padded input
# what post_process_panoptic_segmentation reads (transformers 4.4x-5.x): the rest (hidden states, pixel-decoder
# features) is never copied to float32 per image
POST_FIELDS = ("class_queries_logits", "logits", "pred_boxes", *MASK_FIELDS)
INSTANCE_SOURCE = "transformers post_process_instance_segmentation"  # the record's ap_source


@dataclass
class HFOutput:
    """One image's output: transformers' segments (:class:`HFSegments`; with ``--postprocess``, a panoptic map in
    mmdet's encoding) and, with AP on, the network's outputs for that image (float32, as post-processing reads
    them) and its size (height, width)."""

    result: HFSegments | torch.Tensor
    outputs: SimpleNamespace | None = None
    target: tuple[int, int] | None = None


@dataclass(frozen=True, eq=False)
class _Pending:
    """A batch's post-processing left by a forward under :meth:`HFPanoptic.deferred` (each image's output): ``job``."""

    job: Callable[[], list[HFOutput]]


@dataclass(frozen=True)
class HFSegments:
    """One image's output of transformers' post-processing: its segment-id map (0 or -1: no segment) and its
    ``segments_info`` (``id``, ``label_id`` in the model's labels)."""

    segmentation: torch.Tensor
    info: list[dict[str, Any]]


class _Fusion:
    """The post-processing stage the eval loop times (``predict``): the processor's
    ``post_process_panoptic_segmentation`` per image, or, for mask-classification models given
    ``--postprocess maskwise|argmax``, that merging of the query masks."""

    def __init__(self, mtype: ModelType, post: Callable, settings: dict, order: list[int], n_things: int,
                 fuse: set[int], n_hf: int) -> None:
        self.post, self.settings, self.fuse = post, settings, fuse
        # the stuff labels whose segments merge, as the model type's post-processing takes them: a set
        # (``label_ids_to_fuse``) or a sorted list (EoMT's ``stuff_classes``)
        self.stuff: dict[str, Any] = {mtype.stuff_keyword: sorted(fuse) if mtype.stuff_keyword == "stuff_classes"
                                      else fuse}
        self.label_of = {hid: k for k, hid in enumerate(order)}  # model label id -> panbench label
        self.num_classes, self.num_things_classes = len(order), n_things
        self.columns: list[int] | None = None  # mask classification: what --postprocess maskwise|argmax reads
        if mtype.query_masks and len(order) == n_hf:
            self.columns = [*order, n_hf]  # class logits in panbench's label order, "no object" last
        self.postprocess: PostProcess | None = None  # --postprocess maskwise|argmax

    def predict(self, outputs: Any, sizes: list[tuple[int, int]], padded: tuple[int, int],
                targets: list[tuple[int, int]]) -> list[HFSegments | torch.Tensor]:
        """One output per image: transformers' :class:`HFSegments`, or with ``--postprocess`` the merged panoptic
        map (:mod:`panbench.models.postprocess`'s encoding, in panbench's label order)."""
        out: list[HFSegments | torch.Tensor] = []
        for i, (size, target) in enumerate(zip(sizes, targets)):
            one = _one_image(outputs, i, size, padded)
            if self.postprocess is not None and self.columns is not None:
                masks = F.interpolate(one.masks_queries_logits, size=target, mode="bilinear", align_corners=False)
                out.append(merge_queries(one.class_queries_logits[0][:, self.columns], masks[0], self.num_classes,
                                         self.num_things_classes, self.postprocess))
            else:
                r = self.post(one, target_sizes=[target], **self.stuff, **self.settings)[0]
                out.append(HFSegments(r["segmentation"], r["segments_info"]))
        return out


def to_panbench_segments(seg: torch.Tensor, info: list[dict[str, Any]], label_of: dict[int, int],
                         label2cat: list[int]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """transformers' segment-id map (0 or -1: no segment) and ``segments_info`` -> panbench's segments: a uint32
    id map (0 = VOID) with ids 1..n in ``info`` order, given to the segments with pixels and a label that maps
    (``label_of``: model label id -> panbench label; a placeholder such as DETR's N/A stays VOID)."""
    u, inv = torch.unique(seg.to(torch.int64), return_inverse=True)
    where = {v: k for k, v in enumerate(u.tolist())}
    new_id = np.zeros(len(where), np.uint32)
    segs: list[dict[str, Any]] = []
    seen: set[int] = set()
    for s in info:  # a fused stuff class lists one entry per query, all with one id
        sid = int(s["id"])
        if sid in seen:
            continue
        seen.add(sid)
        label = label_of.get(int(s["label_id"]))
        if label is not None and sid in where:
            new_id[where[sid]] = len(segs) + 1
            segs.append({"id": len(segs) + 1, "category_id": int(label2cat[label]), "iscrowd": 0})
    return new_id[inv.cpu().numpy()], segs


def _one_image(outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
    """Image ``i`` of a batch's outputs (:data:`POST_FIELDS`, float32), its mask logits cropped to the image's own
    processed size when the batch padded it further (a batch of one is passed on as transformers made it)."""
    fields = {}
    for k, v in outputs.items():
        if k in POST_FIELDS and isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] > i:
            v = v[i:i + 1].float() if v.is_floating_point() else v[i:i + 1]
            if k in MASK_FIELDS and tuple(size) != tuple(padded):
                mh, mw = v.shape[-2:]
                v = v[..., : math.ceil(size[0] * mh / padded[0]), : math.ceil(size[1] * mw / padded[1])]
            fields[k] = v
    return SimpleNamespace(**fields)


def instances_of(processor: Any, settings: dict[str, Any], outputs: SimpleNamespace, target: tuple[int, int],
                 model_cats: list[int], things: set[int]) -> Instances:
    """One image's ``post_process_instance_segmentation`` (``settings``: its model type's ``instance_settings``)
    as :class:`panbench.analysis.ap.Instances`: the segments of thing categories (``model_cats``: model label id ->
    dataset category id), their masks at the image's size, scores and dataset category ids."""
    if getattr(processor, "class_info_file", "") is None:  # OneFormer's: transformers 5 tests
        processor = copy.copy(processor)  # `"ade20k" in class_info_file`, None without a file
        processor.class_info_file = ""
    r = processor.post_process_instance_segmentation(outputs, target_sizes=[target], **settings)
    r = r[0]
    keep = [k for k, s in enumerate(r["segments_info"])
            if 0 <= s["label_id"] < len(model_cats) and model_cats[s["label_id"]] in things]
    seg = r["segmentation"]
    if seg is not None and seg.dim() == 3:  # binary maps in the order of segments_info
        seg = seg[keep] if keep else seg[:0]
    return from_hf_instances({"segmentation": seg, "segments_info": [r["segments_info"][k] for k in keep]},
                             model_cats)


def semantic_of(processor: Any, outputs: SimpleNamespace, target: tuple[int, int], model_cats: list[int]) -> np.ndarray:
    """One image's ``post_process_semantic_segmentation`` at its size as an (H, W) map of dataset category ids
    (-1: VOID, a label mapped to no category)."""
    labels = processor.post_process_semantic_segmentation(outputs, target_sizes=[target])[0]
    return semantic_categories(labels, model_cats)


class HFPanoptic(torch.nn.Module):
    """A transformers panoptic model and its processor as a :class:`panbench.models.protocol.PanopticModel`.

    Its fusion stage is :class:`_Fusion` (``fusion``): what ``--postprocess`` configures and the fusion timer
    times."""

    def __init__(self, model: Any, processor: Any, mtype: ModelType, fusion: _Fusion, names: list[str],
                 label2cat: list[int], where: str = "hf model") -> None:
        super().__init__()
        self.model, self.processor, self.mtype = model, processor, mtype  # mtype: its model type's description
        self.fusion = fusion
        self.names, self.label2cat, self.where = names, label2cat, where
        self.instance_source: str | None = None  # INSTANCE_SOURCE once enable_instances() turned AP on
        self.deferring = False  # under deferred(): forward leaves the fusion stage to finish()

    @property
    def module(self) -> HFPanoptic:
        """This module (the transformers model and its fusion)."""
        return self

    def pipeline(self, item: dict[str, Any]) -> dict[str, Any]:
        """Image file -> the processor's tensors for it (run in the DataLoader workers) and its size."""
        from PIL import Image

        if "img" in item:  # an RGB array decoded (and corrupted) before the pipeline (panbench.robustness)
            img = Image.fromarray(item["img"])
        else:
            with Image.open(item["img_path"]) as im:
                img = im.convert("RGB")
        kw: dict[str, Any] = {"task_inputs": ["panoptic"]} if self.mtype.task_prompt else {}
        if self.mtype.pad_square:  # its post-processing reads the masks of a square padded input
            kw["do_pad"] = True
        enc = self.processor(images=img, return_tensors="pt", **kw)
        out: dict[str, Any] = {k: v[0] for k, v in enc.items() if isinstance(v, torch.Tensor)}
        out["height"], out["width"] = img.height, img.width
        return out

    def pipeline_with(self, item: dict[str, Any], image_step: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
        """:meth:`pipeline` of the decoded RGB image after ``image_step``."""
        from PIL import Image

        with Image.open(item["img_path"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        return self.pipeline({**item, "img": image_step(rgb)})

    def input_hw(self, item: dict[str, Any]) -> tuple[int, int]:
        """(H, W) of the processor's ``pixel_values``."""
        h, w = item["pixel_values"].shape[-2:]
        return int(h), int(w)

    def batch_key(self, item: dict[str, Any]) -> tuple[int, ...]:
        """The processor's ``pixel_values`` shape: a batch is padded to its largest input (:meth:`_step`), so
        inputs of one shape are batched unpadded, as each runs alone."""
        return tuple(int(x) for x in item["pixel_values"].shape)

    def forward(self, batch: list[dict[str, Any]], device: str, amp: str | None) -> list[Any]:
        """Pipeline outputs -> one output per image (:meth:`_Fusion.predict`, with AP on the network's outputs
        too): pad, network, post-processing (all under ``amp``)."""
        return autocast_forward(lambda: self._step(batch), device, amp)

    def _step(self, batch: list[dict[str, Any]]) -> list[Any]:
        pv = [b["pixel_values"] for b in batch]
        sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in pv]
        h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        dev = next(self.model.parameters()).device
        pixels = pv[0].new_zeros((len(pv), pv[0].shape[0], h, w))
        mask = torch.zeros((len(pv), h, w), dtype=torch.int64)
        for k, (t, (th, tw)) in enumerate(zip(pv, sizes)):
            pixels[k, :, :th, :tw] = t
            mask[k, :th, :tw] = batch[k]["pixel_mask"] if "pixel_mask" in batch[0] else 1
        inputs = {"pixel_values": pixels.to(dev)}
        if self.mtype.pixel_mask:  # EoMT takes none: its inputs are padded squares
            inputs["pixel_mask"] = mask.to(dev)
        if "task_inputs" in batch[0]:
            inputs["task_inputs"] = torch.stack([b["task_inputs"] for b in batch]).to(dev)
        outputs = self.model(**inputs)
        targets = [(int(b["height"]), int(b["width"])) for b in batch]
        if self.deferring:
            return [_Pending(keep_autocast(partial(self._fuse, outputs, sizes, (h, w), targets)))] * len(batch)
        return self._fuse(outputs, sizes, (h, w), targets)

    def _fuse(self, outputs: Any, sizes: list[tuple[int, int]], padded: tuple[int, int],
              targets: list[tuple[int, int]]) -> list[HFOutput]:
        """A batch's post-processing: the fusion stage and, with AP on, each image's share of the network's outputs."""
        results = self.fusion.predict(outputs, sizes, padded, targets)
        if self.instance_source is None:
            return [HFOutput(r) for r in results]
        return [HFOutput(r, _one_image(outputs, i, size, padded), t)
                for i, (r, size, t) in enumerate(zip(results, sizes, targets))]

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """While entered, :meth:`forward` leaves its post-processing (the fusion stage) to :meth:`finish`."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def finish(self, outputs: list[Any]) -> list[Any]:
        """A forward's outputs with the post-processing of those made under :meth:`deferred` run (one call per
        batch the network ran: an out-of-memory split gives two)."""
        out: list[Any] = []
        while len(out) < len(outputs):
            o = outputs[len(out)]
            out += o.job() if isinstance(o, _Pending) else [o]
        return out

    def to_segments(self, output: HFOutput) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One image's segments: transformers' straight (:func:`to_panbench_segments`), or the panoptic map of
        ``--postprocess`` (its encoding, VOID = number of labels)."""
        r = output.result
        if isinstance(r, HFSegments):
            return to_panbench_segments(r.segmentation, r.info, self.fusion.label_of, self.label2cat)
        return panoptic_to_segments(r, len(self.names), self.label2cat)

    def enable_instances(self) -> None:
        """AP and the semantic output on: each image's output keeps what the processor's instance and semantic
        post-processing read."""
        self.instance_source = INSTANCE_SOURCE

    def to_instances(self, output: HFOutput) -> Instances | None:
        """The processor's ``post_process_instance_segmentation`` of the image: thing classes, dataset ids."""
        if output.outputs is None or output.target is None:
            return None

        return instances_of(self._image_processor(), self.mtype.instance_settings, output.outputs, output.target,
                            self._model_cats(), self._thing_cats())

    def to_semantic(self, output: HFOutput) -> np.ndarray | None:
        """The processor's ``post_process_semantic_segmentation`` of the image in dataset category ids (-1: VOID);
        None (mIoU from the panoptic output) with AP off and for a model type without one (EoMT: its
        description's ``no_semantic`` says why)."""
        if output.outputs is None or output.target is None or self.mtype.no_semantic is not None:
            return None

        return semantic_of(self._image_processor(), output.outputs, output.target, self._model_cats())

    def _image_processor(self) -> Any:
        return getattr(self.processor, "image_processor", self.processor)

    def _model_cats(self) -> list[int]:
        """Model label id -> dataset category id (-1: a label mapped to none, e.g. DETR's N/A)."""
        cats = [-1] * (max(self.fusion.label_of, default=-1) + 1)
        for hid, k in self.fusion.label_of.items():
            cats[hid] = self.label2cat[k]
        return cats

    def _thing_cats(self) -> set[int]:
        n = self.fusion.num_things_classes  # panbench's labels: things first
        return {int(c) for c in self.label2cat[:n]}

    def timed_fusion(self, seconds: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """The calls of the post-processing stage (``fusion.predict``) timed into ``seconds``."""
        return timed_calls(self.fusion, "predict", seconds, sync)

    def configure(self, postprocess: PostProcess, fusion: str) -> None:
        """``--postprocess maskwise|argmax`` merges the query masks of a mask-classification model (MaskFormer,
        Mask2Former, OneFormer: the modes its model type's description allows) instead of transformers'
        post-processing; ``--fusion`` has one choice here (transformers' post-processing), so the record's
        ``fusion`` is None."""
        if postprocess.name == "default":
            return
        refusal = postprocess_refusal(self.where, postprocess.name, "this model", self.mtype)
        if refusal is not None:
            raise PanbenchError(f"{refusal}; leave --postprocess out")
        if self.fusion.columns is None:  # labels skipped (placeholders): no column of class logits for them
            raise PanbenchError(f"{self.where}: --postprocess {postprocess.name} reads the class logits of every "
                                "model label, and labels of this model map to no category (N/A); leave "
                                "--postprocess out")
        self.fusion.postprocess = postprocess

    def compile_targets(self) -> list[tuple[str, Any]]:
        """The transformers model whole (its network; the processor's post-processing stays eager), as EoMT's
        published FPS was measured."""
        return [("model", self.model)]

    def query_masks(self, item: dict[str, Any], device: str, top: int) -> tuple[Any, list]:
        """One image through ``forward``; no query masks drawn for transformers models."""
        return self.forward([item], device, None)[0], []

