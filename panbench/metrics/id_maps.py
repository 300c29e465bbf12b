"""The checks of an id map's dtype and shape that the metrics' ``update`` makes, one for numpy arrays and torch
tensors alike (:func:`panbench.metrics.panoptic.id_map` on the host, :func:`panbench.metrics.device_table.device_map`
on a tensor's device): the same one-line errors on either path, in the words of the arrays and arguments passed."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from panbench.errors import InputError
from panbench.pq.kernels import MAX_ID

MapForm = Literal["rgb", "stacked", "plain"]

#: the largest whole number each floating-point type holds exactly, where it is below the largest segment id
_EXACT = {"float16": 2048, "bfloat16": 256}


class FloatFacts(NamedTuple):
    """What a map of floating-point values holds, for its error to name: NaN, infinities, its first value that is
    not a whole number (raster order; None: none) and its least and greatest finite values (0 without any)."""

    nan: bool
    inf: bool
    fraction: float | None
    low: float
    high: float


def map_form(dtype: np.dtype, shape: tuple[int, ...], where: str, name: str) -> MapForm:
    """How a map of this (numpy) dtype and shape holds its ids: ``rgb`` (HxWx3 uint8, a panoptic PNG's),
    ``stacked`` ((1, H, W), as mmdet's sem_seg) or ``plain`` (HxW); anything else refused in one line (a map of
    floating-point values by the caller, which reads its values: :func:`float_error`)."""
    if dtype.kind == "b":
        raise InputError(f"{where}: {name} is a bool map (a mask); pass a map of integer segment ids, 0 = VOID "
                         "(a mask as one segment of id 1: mask.long() / mask.astype(np.int64))")
    if dtype.kind not in "iu":
        raise InputError(f"{where}: {name} has dtype {dtype}; pass a map of integer segment ids (0 = VOID)")
    if len(shape) == 3 and shape[-1] == 3 and dtype == np.uint8:
        return "rgb"
    if len(shape) == 3 and shape[0] == 1:
        return "stacked"
    if len(shape) != 2:
        raise InputError(f"{where}: {name} has shape {shape}; pass one image's HxW map of segment ids "
                         "(or HxWx3 uint8 RGB as in a panoptic PNG)")
    return "plain"


def float_shape_error(where: str, name: str, dtype: str, shape: tuple[int, ...]) -> InputError | None:
    """The one error of a map of floating-point values (``dtype`` as numpy or torch names it) whose shape no id map
    has (an HxWx3 float RGB image among them): its shape and type at once; None where the shape is one of an id map
    (HxW, (1, H, W)), whose values :func:`float_error` then names."""
    if len(shape) == 2 or len(shape) == 3 and shape[0] == 1:
        return None
    return InputError(f"{where}: {name} has shape {shape} and dtype {dtype}; pass an HxW integer id map (or an HxWx3 "
                      "uint8 RGB map, ids = R + 256G + 256^2B)")


def array_facts(arr: np.ndarray) -> FloatFacts | None:
    """The :class:`FloatFacts` of a numpy map of floating-point values (None: of complex ones)."""
    if arr.dtype.kind == "c":
        return None
    finite = np.isfinite(arr)
    values = arr[finite]
    fractions = values[values != np.round(values)]
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    return FloatFacts(bool(np.isnan(arr).any()), bool(np.isinf(arr).any()),
                      float(fractions[0]) if fractions.size else None, low, high)


def float_error(where: str, name: str, dtype: str, facts: FloatFacts | None) -> InputError:
    """The one error of a map of floating-point values (``dtype`` as numpy or torch names it): every problem its
    values have besides their type (NaN, fractions, values below 0 or above the largest segment id) and each fix,
    so that the map converted as it says is taken."""
    found, fixes = [], []
    if facts is not None and (facts.nan or facts.inf):
        odd = " and ".join(w for w, has in (("NaN", facts.nan), ("inf", facts.inf)) if has)
        found.append(odd)
        fixes.append(f"set its {odd} pixels to 0 (VOID) or to their segment's id")
    if facts is not None and facts.fraction is not None:
        found.append(f"{_number(facts.fraction)}, not a whole number")
        fixes.append("resize the map with nearest-neighbour interpolation (or round it)")
    if facts is not None and facts.low < 0:
        found.append(_number(facts.low))
        fixes.append("map -1 to 0 (VOID)" if facts.low == -1 else "map its negative values to 0 (VOID)")
    if facts is not None and facts.high >= MAX_ID:
        found.append(f"{_number(facts.high)}, above the largest segment id {MAX_ID - 1}")
        fixes.append("number the segments below 2^24")
    exact = _EXACT.get(dtype.removeprefix("torch."))
    if facts is not None and exact is not None and facts.high > exact:
        found.append(f"{_number(facts.high)}, above {exact}, past which {dtype} skips whole numbers")
        fixes.append("keep the map integer where it is made (its ids may have changed)")
    said = f", among them {'; '.join(found)}" if found else ""
    then = f"{', '.join(fixes)}, then convert" if fixes else "convert"
    return InputError(f"{where}: {name} has floating-point values ({dtype}){said}; segment ids are integers "
                      f"0..{MAX_ID - 1} (0 = VOID): {then} the map with .long() / .astype(np.int64)")


def _number(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


def check_width(dtype: np.dtype, segments: list[Any], where: str, name: str, listing: str) -> None:
    """Refuse a map of an integer type too narrow for the ids its segments list (a map cast to uint8 or int16: its
    ids cut), naming the type and the id."""
    if dtype.kind not in "iu" or dtype.itemsize > 2:
        return
    top = int(np.iinfo(dtype).max)
    for s in segments:
        seg_id = s.get("id") if isinstance(s, dict) else None
        if isinstance(seg_id, (int, np.integer)) and not isinstance(seg_id, bool) and seg_id > top:
            raise InputError(f"{where}: {name} is {dtype}, which holds ids up to {top}, but {listing} lists id "
                             f"{seg_id}; keep the map int32 or int64 (cast to {dtype}, its ids were cut)")
