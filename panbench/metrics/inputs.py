"""What the metrics accept as an image: id maps as numpy arrays or torch tensors, checked before anything is
scored.  torch is never imported here: a tensor is recognised by its methods and copied to the CPU (the map
alone: scoring needs nothing else of a model's output)."""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq.kernels import rgb2id


def check_one_device(where: str, **maps: Any) -> None:
    """Refuse tensors on different devices (as torch refuses an operation across devices)."""
    devices = {k: str(v.device) for k, v in maps.items()  # a tensor's device as text (cpu, cuda:0)
               if getattr(v, "device", None) is not None and not isinstance(v, np.ndarray)}
    if len(set(devices.values())) > 1:
        said = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise InputError(f"{where}: {said}; put them on one device (or pass numpy arrays)")


def id_map(x: Any, where: str, name: str) -> np.ndarray:
    """An HxW integer id map (``R + 256 G + 256^2 B``, 0 is VOID) from a numpy array or a torch tensor (any
    device), or an HxWx3 uint8 RGB array as a panoptic PNG holds it.  Floats, booleans and other shapes are
    refused with a one-line error naming ``where`` and the fix."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        if x.is_floating_point() or x.is_complex():
            raise _float_error(where, name, str(x.dtype))
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind == "f" or arr.dtype.kind == "c":
        raise _float_error(where, name, str(arr.dtype))
    if arr.dtype.kind not in "iu":
        raise InputError(f"{where}: {name} has dtype {arr.dtype}; pass integer segment ids "
                         "(R + 256G + 256^2B, 0 = VOID)")
    if arr.ndim == 3 and arr.shape[-1] == 3 and arr.dtype == np.uint8:
        return rgb2id(np.ascontiguousarray(arr))
    if arr.ndim == 3 and arr.shape[0] == 1:  # (1, H, W), as mmdet's sem_seg
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"{where}: {name} has shape {tuple(arr.shape)}; pass one image's HxW map of segment ids "
                         "(or HxWx3 uint8 RGB as in a panoptic PNG)")
    return arr


def _float_error(where: str, name: str, dtype: str) -> InputError:
    return InputError(f"{where}: {name} has floating-point values ({dtype}); segment ids are integers: "
                      "convert the map with .long() / .astype(np.int64) after rounding it where it was resized")


def counted_areas(ids: np.ndarray, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``segments`` with each missing ``area`` counted from the map (the ground truth's, when a dataset's
    segments_info carries no areas)."""
    if all("area" in s for s in segments):
        return segments
    seg_ids = np.array([s["id"] for s in segments], np.int64)
    flat = ids.ravel()
    u, c = np.unique(flat[np.isin(flat, seg_ids)], return_counts=True) if len(seg_ids) else (seg_ids, seg_ids)
    counts = dict(zip(u.tolist(), c.tolist(), strict=True))
    return [s if "area" in s else {**s, "area": int(counts.get(s["id"], 0))} for s in segments]
