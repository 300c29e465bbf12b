"""The originals' own test-time inference for transformers checkpoints (``--pipeline original``, docs/huggingface.md
"Pipelines"): each model type's pre-processing (resize, normalisation, padding) and post-processing (mask upsampling,
crop, resize, fusion) as its original repository runs it, around transformers' network.

- Mask2Former (facebookresearch/Mask2Former 9b0651c ``mask2former/maskformer_model.py``), MaskFormer
  (facebookresearch/MaskFormer da3e60d ``mask_former/mask_former_model.py``), OneFormer (SHI-Labs/OneFormer 4962ef6
  ``oneformer/oneformer_model.py``): detectron2's ``ResizeShortestEdge(800, 1333)`` (a PIL bilinear resize of the
  uint8 image, EXIF orientation applied as ``read_image`` does), ``(x - mean) / std`` on the 0-255 scale,
  ``ImageList.from_tensors`` (zero padding to the batch's largest image, then to the size divisibility); mask
  logits upsampled to the padded input, cropped to the image, resized to the original size
  (``sem_seg_postprocess``), then ``panoptic_inference``.
- DETR (facebookresearch/detr 29901c5 ``datasets/transforms.py``, ``models/segmentation.py``): ``RandomResize([800],
  max_size=1333)``, ``ToTensor``, ``Normalize``, zero padding to the batch's largest image (``NestedTensor``) with a
  pixel mask; ``PostProcessPanoptic``.
- EoMT (tue-mps/eomt 7bd19dd ``training/lightning_module.py``): the long side resized to the square input size (PIL
  bilinear, sizes rounded), zero padding of the uint8 image to the square, ``x / 255`` then ``(x - mean) / std``; mask
  logits upsampled to the square, cropped, resized; ``to_per_pixel_preds_panoptic``.

Checked against the originals' own code, run on the same network outputs and images (tests/models/test_originals.py,
``make test-vision``).  Each function here is one step; a model type's :class:`panbench.models.hf.types.Original`
says which it runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from panbench.errors import PanbenchError
from panbench.models.hf.types import ModelType, Original


def protocol_for(mtype: ModelType, processor: Any, dataset: str) -> Original | None:
    """``mtype``'s original inference on ``dataset`` (its configs' test size and threshold there) with the mean and
    std of its checkpoint's processor (the originals' configs hold the same ImageNet values: detectron2's on the
    0-255 scale, 0.485 -> 123.675) and, for EoMT, the square size of its processor; None where the original's
    inference there is not known."""
    p = None if mtype.original is None else mtype.original.on(dataset)
    if p is None:
        return None
    mean = tuple(float(m) for m in getattr(processor, "image_mean", (0.485, 0.456, 0.406)))
    std = tuple(float(s) for s in getattr(processor, "image_std", (0.229, 0.224, 0.225)))
    if p.scale == 255.0:
        mean, std = tuple(round(m * 255, 3) for m in mean), tuple(round(s * 255, 3) for s in std)
    if p.resize == "long_side":
        size = getattr(processor, "size", None) or {}
        side = size.get("longest_edge") or size.get("shortest_edge") or max(size.get("height") or 0,
                                                                            size.get("width") or 0)
        if not side:
            raise PanbenchError(f"the processor's size {size!r} names no square for EoMT's input; save the "
                                "checkpoint's processor with its size (shortest_edge, as EoMT's hub processors)")
        p = replace(p, short=int(side), long=int(side))
    return replace(p, mean=mean, std=std)


# --- pre-processing -------------------------------------------------------------------------------------------


def read_rgb(path: str, exif: bool) -> np.ndarray:
    """An image file as an HxWx3 uint8 RGB array; ``exif``: turned by its EXIF orientation as detectron2's
    ``read_image`` turns it."""
    from PIL import Image

    with Image.open(path) as im:
        if exif:
            im = _exif_oriented(im)
        return np.asarray(im.convert("RGB"))


def _exif_oriented(im: Any) -> Any:
    from PIL import Image

    try:
        orientation = im.getexif().get(0x0112)
    except Exception:  # detectron2 reads no orientation from an image without (valid) EXIF
        return im
    t = Image.Transpose
    method = {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_270,
              7: t.TRANSVERSE, 8: t.ROTATE_90}.get(orientation)
    return im.transpose(method) if method is not None else im


def resized_size(p: Original, h: int, w: int) -> tuple[int, int]:
    """The resized (unpadded) input size of an ``h`` x ``w`` image."""
    if p.resize == "shortest_edge":  # detectron2 ResizeShortestEdge.get_output_shape
        size = p.short * 1.0
        scale = size / min(h, w)
        newh, neww = (size, scale * w) if h < w else (scale * h, size)
        if max(newh, neww) > p.long:
            scale = p.long * 1.0 / max(newh, neww)
            newh, neww = newh * scale, neww * scale
        return int(newh + 0.5), int(neww + 0.5)
    if p.resize == "shortest_edge_floor":  # detr datasets/transforms.py get_size_with_aspect_ratio
        size = p.short
        lo, hi = float(min(w, h)), float(max(w, h))
        if hi / lo * size > p.long:
            size = int(round(p.long * lo / hi))
        if (w <= h and w == size) or (h <= w and h == size):
            return h, w
        return (int(size * h / w), size) if w < h else (size, int(size * w / h))
    factor = min(p.long / h, p.long / w)  # EoMT scale_img_size_instance_panoptic
    return round(h * factor), round(w * factor)


def preprocess(p: Original, rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """An HxWx3 uint8 RGB image -> (the network's input for it, normalised, float32, CxHxW; EoMT's: the padded
    square), its resized size before padding."""
    from PIL import Image

    h, w = rgb.shape[:2]
    nh, nw = resized_size(p, h, w)
    img = rgb if (nh, nw) == (h, w) and p.resize != "long_side" else \
        np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    if p.resize == "long_side":  # EoMT pads the uint8 image to its square, then divides by 255
        x = F.pad(x, [0, max(0, p.long - nw), 0, max(0, p.long - nh)])
    mean = torch.tensor(p.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(p.std, dtype=torch.float32).view(-1, 1, 1)
    if p.scale == 255.0:  # detectron2: (x - PIXEL_MEAN) / PIXEL_STD on the uint8 image
        return (x - mean) / std, (nh, nw)
    return (x.to(torch.float32) / 255.0 - mean) / std, (nh, nw)  # ToTensor, Normalize / EoMT's forward


def padded_size(p: Original, sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The batch's padded input size: the largest image, up to a multiple of the divisor (``ImageList``)."""
    h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
    if p.divisor > 1:
        h, w = math.ceil(h / p.divisor) * p.divisor, math.ceil(w / p.divisor) * p.divisor
    return h, w


# --- post-processing ------------------------------------------------------------------------------------------


def image_masks(logits: torch.Tensor, padded: tuple[int, int], size: tuple[int, int],
                target: tuple[int, int]) -> torch.Tensor:
    """Mask logits [Q, h, w] of one image in a padded batch -> [Q, H, W] at the image's original size: upsampled to
    the padded input, cropped to the image's resized region, resized to ``target`` (bilinear, as the originals'
    ``F.interpolate`` and ``sem_seg_postprocess``).  Each query is its own image of one channel, so that a query's
    values do not depend on how many are passed with it (pass only the queries kept, in chunks)."""
    x = F.interpolate(logits[:, None], size=padded, mode="bilinear", align_corners=False)
    x = x[:, :, : size[0], : size[1]]
    return F.interpolate(x, size=target, mode="bilinear", align_corners=False)[:, 0]


@dataclass(frozen=True)
class OriginalOutput:
    """One image's panoptic output in the original's own form: an int32 id map and its segments (``id``,
    ``label_id``: the model's label, ``isthing``, ``score``; DETR's also ``area``).  Mask2Former's, MaskFormer's,
    OneFormer's and EoMT's ids count from 1 (0: VOID); DETR's from 0, every pixel an id, VOID where its id is not
    listed."""

    id_map: torch.Tensor
    info: list[dict[str, Any]]


#: the mask values (queries x pixels, at the padded input or the image's size, whichever is larger) made at once by
#: :func:`query_fusion`: 2^26 float32s, 256 MiB, of which a few copies are held (sigmoid, weighted, transposed); the
#: Mapillary Vistas configs keep every query, and 200 masks of a 3000x4000 image would be 9.6 GB each
CHUNK_VALUES = 1 << 26


def query_fusion(class_logits: torch.Tensor, mask_logits: torch.Tensor, padded: tuple[int, int],
                 size: tuple[int, int], target: tuple[int, int], is_thing: Sequence[bool], threshold: float,
                 overlap: float, own_mask: bool, mask_threshold: float = 0.5) -> OriginalOutput:
    """``panoptic_inference`` of Mask2Former and OneFormer (``own_mask``), MaskFormer (not), and EoMT's
    ``to_per_pixel_preds_panoptic`` (as Mask2Former's, its segment ids counted from 1): queries whose class is not
    no-object and whose score is above ``threshold``; the argmax of score x mask probability; a query whose won area
    over its own mask's area (mask >= ``mask_threshold``) is below ``overlap`` is dropped; stuff queries of one class
    share one segment.  ``class_logits`` [Q, K+1], ``mask_logits`` [Q, h, w] of the padded batch.  The kept queries'
    masks are made at the image's size :data:`CHUNK_VALUES` values at a time, the same numbers as all at once."""
    scores, labels = F.softmax(class_logits.float(), dim=-1).max(-1)
    keep = labels.ne(class_logits.shape[-1] - 1) & (scores > threshold)
    kept = keep.nonzero().flatten()
    if kept.numel() == 0:
        return OriginalOutput(torch.zeros(target, dtype=torch.int32, device=mask_logits.device), [])
    ids, at_own, own_area = _winners(mask_logits[kept], scores[kept], padded, size, target, mask_threshold)
    n = kept.numel()
    won_area = torch.bincount(ids.flatten(), minlength=n)
    final_area = torch.bincount(ids[at_own], minlength=n) if own_mask else won_area
    table, info = _segments(labels[kept].tolist(), scores[kept].tolist(), won_area.tolist(), own_area.tolist(),
                            final_area.tolist(), is_thing, overlap)
    id_map = table.to(ids.device)[ids]
    if own_mask:
        id_map = torch.where(at_own, id_map, 0)
    return OriginalOutput(id_map.to(torch.int32), info)


def _winners(logits: torch.Tensor, scores: torch.Tensor, padded: tuple[int, int], size: tuple[int, int],
             target: tuple[int, int], mask_threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each pixel's winning query (the first of equal maxima of score x sigmoid, as the originals' argmax(0)), whether
    the winner's own mask holds the pixel, and each query's own mask area; the masks made a chunk of queries at a
    time, a later chunk winning a pixel only with a larger value."""
    n, pixels = logits.shape[0], max(target[0] * target[1], padded[0] * padded[1])
    step = max(1, CHUNK_VALUES // max(1, pixels))
    own_area = torch.empty(n, dtype=torch.int32, device=logits.device)

    def chunk(lo: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The chunk's best value per pixel, its query (counted from 0 over all) and that query's own probability."""
        masks = image_masks(logits[lo:lo + step].float(), padded, size, target).sigmoid()
        own_area[lo:lo + masks.shape[0]] = (masks >= mask_threshold).flatten(1).sum(1, dtype=torch.int32)
        weighted = scores[lo:lo + step].view(-1, 1, 1) * masks
        # along a contiguous row per pixel: 5x faster on the CPU than reducing across the queries' planes
        value, arg = weighted.flatten(1).t().contiguous().max(1)
        return value, arg + lo, masks.flatten(1).gather(0, arg[None])[0]

    best, ids, win = chunk(0)
    for lo in range(step, n, step):
        value, arg, prob = chunk(lo)
        later = value > best
        best, ids, win = torch.where(later, value, best), torch.where(later, arg, ids), torch.where(later, prob, win)
    return ids.view(target), (win >= mask_threshold).view(target), own_area


def _segments(labels: list[int], scores: list[float], won: list[int], own: list[int], final: list[int],
              is_thing: Sequence[bool], overlap: float) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The kept queries' segment ids (0: dropped) and the segments' info: a query is dropped when its won, own or
    final area is 0 or its won over own area is below ``overlap``; stuff queries of one class share one segment."""
    table = torch.zeros(len(labels) + 1, dtype=torch.int32)
    info: list[dict[str, Any]] = []
    stuff: dict[int, dict[str, Any]] = {}
    for k, (label, w, o, f, score) in enumerate(zip(labels, won, own, final, scores)):
        if not (w > 0 and o > 0 and f > 0) or w / o < overlap:
            continue
        if not is_thing[label]:
            if label in stuff:
                table[k] = stuff[label]["id"]
                stuff[label]["score"] = max(stuff[label]["score"], score)
                continue
        info.append({"id": len(info) + 1, "label_id": label, "isthing": bool(is_thing[label]), "score": score})
        table[k] = len(info)
        if not is_thing[label]:
            stuff[label] = info[-1]
    return table, info


def detr_fusion(logits: torch.Tensor, masks: torch.Tensor, size: tuple[int, int], target: tuple[int, int],
                is_thing: Sequence[bool], threshold: float) -> OriginalOutput:
    """DETR's ``PostProcessPanoptic`` for one image: queries not no-object above ``threshold``; their mask logits
    resized to the image's processed ``size`` (the padded batch's masks, uncropped, as DETR does); the argmax over
    queries; stuff queries of one class merged; the id map resized NEAREST to ``target``; queries of 4 pixels or
    fewer dropped and the argmax taken again until none is.  Ids are query positions among those kept (from 0)."""
    probs = logits.float().softmax(-1)
    scores, labels = probs.max(-1)
    keep = labels.ne(logits.shape[-1] - 1) & (scores > threshold)
    cur_scores, cur_labels = scores[keep], labels[keep]
    cur = F.interpolate(masks[keep].float()[:, None], size, mode="bilinear").squeeze(1) if keep.any() else \
        masks.new_zeros((0, *size), dtype=torch.float32)
    equiv: dict[int, list[int]] = {}
    for k, label in enumerate(cur_labels.tolist()):
        if not is_thing[label]:
            equiv.setdefault(label, []).append(k)
    area, seg = _detr_ids(cur, target, [g for g in equiv.values() if len(g) > 1])
    if cur_labels.numel() > 0:
        while True:
            small = torch.as_tensor([a <= 4 for a in area], dtype=torch.bool)
            if not small.any():
                break
            cur_scores, cur_labels, cur = cur_scores[~small], cur_labels[~small], cur[~small.to(cur.device)]
            area, seg = _detr_ids(cur, target, [])
    info = [{"id": i, "label_id": int(label), "isthing": bool(is_thing[int(label)]), "area": int(a),
             "score": float(s)} for i, (a, label, s) in enumerate(zip(area, cur_labels.tolist(), cur_scores.tolist()))]
    return OriginalOutput(torch.from_numpy(seg.astype(np.int32)), info)


def _detr_ids(masks: torch.Tensor, target: tuple[int, int], merged: list[list[int]]) -> tuple[list[int], np.ndarray]:
    """DETR's ``get_ids_area``: the argmax over the queries' softmax (query 0 where none is), each group of
    ``merged`` stuff queries given its first's id, the id map resized NEAREST to ``target`` as DETR resizes its RGB
    image; each query's area there."""
    from PIL import Image

    n, (h, w) = masks.shape[0], masks.shape[-2:]
    if n == 0:
        m_id = torch.zeros((h, w), dtype=torch.long, device=masks.device)
    else:
        m_id = masks.flatten(1).transpose(0, 1).softmax(-1).argmax(-1).view(h, w)  # DETR's, softmax and all
    for group in merged:
        for k in group:
            m_id.masked_fill_(m_id.eq(k), group[0])
    small = m_id.to(torch.int32).cpu().numpy()
    rgb = np.stack([small % 256, small // 256 % 256, small // 65536 % 256], -1).astype(np.uint8)
    big = np.asarray(Image.fromarray(rgb).resize((target[1], target[0]), Image.Resampling.NEAREST)).astype(np.int32)
    seg = big[..., 0] + 256 * big[..., 1] + 65536 * big[..., 2]
    return (np.bincount(seg.ravel(), minlength=n)[:n].tolist() if n else []), seg
