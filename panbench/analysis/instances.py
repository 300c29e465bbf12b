"""Instance predictions of each model family as :class:`panbench.analysis.ap.Instances` (RLE masks, scores, dataset
category ids), and a family's semantic output as a map of dataset category ids, from the outputs the libraries
document.  Tensors are read through ``detach().cpu().numpy()`` (duck-typed: this module never imports torch).

- MMDetection: the ``pred_instances`` of a ``DetDataSample`` (an ``InstanceData``: ``masks`` (N, H, W) bool,
  ``scores`` (N,), ``labels`` (N,) model labels): Mask2Former's and MaskFormer's fusion head with
  ``test_cfg.instance_on`` (``instance_postprocess``), and PanopticFPN's instance branch (the ``InstanceData`` of
  ``roi_head.predict(..., rescale=True)``, which its fusion head consumes).
- transformers: one image's dict of ``post_process_instance_segmentation`` (``segmentation`` an (H, W) map of
  segment ids, -1 none, or with ``return_binary_maps=True`` an (N, H, W) stack; ``segments_info`` with ``id``,
  ``label_id``, ``score``), and the (H, W) label map of ``post_process_semantic_segmentation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from panbench.analysis.ap import MAX_DETS, Instances, encode_masks

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
    """:func:`~panbench.analysis.ap.encode_masks` of an (N, H, W) torch tensor, encoded where it lies: the runs
    counted and written as COCO's compressed strings on the tensor's device, only the strings' bytes copied to the
    host.  ``chunk`` bounds the pixels encoded at once (the device's working memory: about 100 bytes a pixel at
    worst, a mask that changes at every pixel, 1.7 GB for a chunk; a few bytes a pixel for a model's masks)."""
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
    device = getattr(getattr(masks, "device", None), "type", "cpu") != "cpu"  # a tensor on an accelerator
    if not device:
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


def from_mmdet(pred_instances: Any, label2cat: Sequence[int], max_dets: int | None = MAX_DETS) -> Instances:
    """An mmdet ``InstanceData`` (``DetDataSample.pred_instances``, or an element of ``roi_head.predict``'s list):
    ``masks``, ``scores``, ``labels``."""
    return from_arrays(pred_instances.masks, pred_instances.scores, pred_instances.labels, label2cat, max_dets)


def from_hf_instances(result: dict[str, Any], label2cat: Sequence[int], max_dets: int | None = MAX_DETS) -> Instances:
    """One image's dict of transformers' ``post_process_instance_segmentation``: an (N, H, W) stack of binary maps
    (``return_binary_maps=True``, what COCO's instance AP reads) in the order of ``segments_info``, or an (H, W)
    map of segment ids (each pixel given to one instance)."""
    info = result["segments_info"]
    seg = result["segmentation"] if result["segmentation"] is not None else np.zeros((0, 0, 0))
    if not info:
        return Instances.empty()
    if seg.ndim == 3:
        masks = seg[: len(info)] != 0  # a GPU's maps stay there (from_arrays encodes them on it)
    else:
        masks = as_numpy(seg)[None] == np.array([s["id"] for s in info])[:, None, None]
    return from_arrays(masks, [s["score"] for s in info], [s["label_id"] for s in info], label2cat, max_dets)


def semantic_categories(label_map: Any, label2cat: Sequence[int], void_label: int | None = None) -> np.ndarray:
    """An (H, W) map of model labels (transformers' ``post_process_semantic_segmentation``, an argmax) as dataset
    category ids; ``void_label`` (or a label outside ``label2cat``) becomes -1 (VOID)."""
    labels = as_numpy(label_map).astype(np.int64)
    lut = np.append(np.asarray(label2cat, np.int64), -1)
    bad = (labels < 0) | (labels >= len(label2cat))
    if void_label is not None:
        bad |= labels == void_label
    return lut[np.where(bad, len(label2cat), labels)]
