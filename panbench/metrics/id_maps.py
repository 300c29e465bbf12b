"""The checks of an id map's dtype and shape that the metrics' ``update`` makes, one for numpy arrays and torch
tensors alike (:func:`panbench.metrics.panoptic.id_map` on the host, :func:`panbench.metrics.device_table.device_map`
on a tensor's device): the same one-line errors on either path."""

from __future__ import annotations

from typing import Literal

import numpy as np

from panbench.errors import InputError

MapForm = Literal["rgb", "stacked", "plain"]


def map_form(dtype: np.dtype, shape: tuple[int, ...], where: str, name: str) -> MapForm:
    """How a map of this (numpy) dtype and shape holds its ids: ``rgb`` (HxWx3 uint8, a panoptic PNG's),
    ``stacked`` ((1, H, W), as mmdet's sem_seg) or ``plain`` (HxW); anything else refused in one line."""
    if dtype.kind in "fc":
        raise float_error(where, name, str(dtype))
    if dtype.kind not in "iu":
        raise InputError(f"{where}: {name} has dtype {dtype}; pass integer segment ids (R + 256G + 256^2B, 0 = VOID)")
    if len(shape) == 3 and shape[-1] == 3 and dtype == np.uint8:
        return "rgb"
    if len(shape) == 3 and shape[0] == 1:
        return "stacked"
    if len(shape) != 2:
        raise InputError(f"{where}: {name} has shape {shape}; pass one image's HxW map of segment ids "
                         "(or HxWx3 uint8 RGB as in a panoptic PNG)")
    return "plain"


def float_error(where: str, name: str, dtype: str) -> InputError:
    """The error of a map of floating-point values (``dtype`` as numpy or torch names it)."""
    return InputError(f"{where}: {name} has floating-point values ({dtype}); segment ids are integers: "
                      "convert the map with .long() / .astype(np.int64) after rounding it where it was resized")
