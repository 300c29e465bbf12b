"""The panoptic encoding the model families hand over (``label + instance * INSTANCE_OFFSET``, VOID = ``num_classes``)
as a uint32 id map (0 = VOID) and COCO ``segments_info``.  A leaf: imports nothing of panbench."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

INSTANCE_OFFSET = 1000  # mmdet's panoptic label encoding: label + instance * INSTANCE_OFFSET


def panoptic_to_segments(pan: Any, num_classes: int, label2cat: list[int],
                         scores: Mapping[int, float] | None = None) -> tuple[np.ndarray, list[dict]]:
    """mmdet's panoptic map to an id map and segments_info with compact ids 1..n (0 = VOID).  ``scores`` maps a code
    of the map to its segment's score: a segment whose code is in it carries ``"score": float(value)``, others none."""
    import torch

    if isinstance(pan, torch.Tensor) and pan.device.type != "cpu":
        u, inv = torch.unique(pan, return_inverse=True)
        u = u.cpu().numpy()
    else:
        u, inv = _unique(pan.numpy() if isinstance(pan, torch.Tensor) else np.asarray(pan))
    labels = u % INSTANCE_OFFSET
    keep = labels != num_classes
    new_id = np.zeros(len(u), np.uint32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    kept = np.nonzero(keep)[0]
    segs: list[dict[str, Any]] = [
        {"id": int(new_id[k]), "category_id": int(label2cat[int(labels[k])]), "iscrowd": 0} for k in kept]
    if scores:
        for k, seg in zip(kept, segs):
            code = int(u[k])
            if code in scores:
                seg["score"] = float(scores[code])
    return relabelled(inv, new_id), segs


def relabelled(inv: Any, new_id: np.ndarray) -> np.ndarray:
    """``new_id[inv]``: the uint32 id map of the inverse of a ``torch.unique`` (a tensor, or its array) given each
    unique value's new id (below 2^24).  An inverse on a device is looked up there (:func:`relabelled_on_device`)."""
    if not isinstance(inv, np.ndarray):
        if inv.device.type != "cpu":
            return relabelled_on_device(inv, new_id)
        inv = inv.numpy()
    out: np.ndarray = new_id[inv]
    return out


def relabelled_on_device(inv: Any, new_id: np.ndarray) -> np.ndarray:
    """:func:`relabelled` where ``inv`` lies: the lookup on its device and only the map copied to the host, as
    int32 (half the bytes of the int64 inverse; the ids are below 2^24), read as uint32 there."""
    import torch

    table = torch.from_numpy(new_id.astype(np.int32)).to(inv.device)
    out: np.ndarray = table[inv].cpu().numpy().view(np.uint32)
    return out


def _unique(pan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(pan, return_inverse=True)`` (the inverse in ``pan``'s shape) of a map of small non-negative codes,
    by counting instead of sorting where the codes are few enough (a sort of a million pixels takes 100 ms)."""
    top = int(pan.max()) if pan.size else 0
    if pan.size == 0 or int(pan.min()) < 0 or top > 4 * pan.size:
        u, inv = np.unique(pan, return_inverse=True)
        return u, inv.reshape(pan.shape)
    u = np.flatnonzero(np.bincount(pan.ravel(), minlength=top + 1))
    lut = np.zeros(top + 1, np.intp)
    lut[u] = np.arange(len(u))
    return u.astype(pan.dtype), lut[pan]
