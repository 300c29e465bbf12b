"""One image's intersection table counted in torch on the id maps' own device: what
:class:`~panbench.metrics.panoptic.PanopticQuality` scores torch tensors on a device other than the CPU with
(docs/api.md, "PanopticQuality"). Each id becomes its row or column index through a search of the segments' sorted
ids, and one ``bincount`` of ``row * (n_pred + 1) + col`` counts the ``(n_gt + 2) x (n_pred + 1)`` table of
:func:`panbench.pq.evaluator.intersection_table`; only the table, the counted ground-truth areas and the few values
an error message names cross to the host. The checks and their one-line errors are
:func:`~panbench.pq.evaluator.pair_table`'s (tests/metrics/test_device_table.py compares both paths on CPU tensors).
torch is imported inside the functions: ``import panbench`` stays torch-free."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from panbench.metrics.id_maps import FloatFacts, float_error, float_shape_error, map_form
from panbench.pq.diagnosis import unlisted_png_ids
from panbench.pq.evaluator import FILE_NAMES, Naming, image_segments, size_error, unlisted_id_error
from panbench.pq.kernels import MAX_ID
from panbench.pq.matching import CategoryTable, Segments


class DeviceMap(NamedTuple):
    """An HxW map of int64 segment ids on its tensor's device, whether ids outside 0 .. 2^24 - 1 are refused as
    out of range (a uint32 map's are not: as on the host, an id above them is one that no segment lists) and the
    numpy dtype of the ids as given (an RGB map's: uint32, as the host reads it)."""

    ids: Any
    ranged: bool
    dtype: np.dtype


def on_device(pred_ids: Any, gt_ids: Any, cpu: bool = False) -> bool:
    """Whether both maps are torch tensors on a device other than the CPU (with ``cpu``: on any device, the switch
    the tests count CPU tensors' tables with); ``check_one_device`` has refused two devices."""
    maps = (pred_ids, gt_ids)
    if not all(hasattr(x, "detach") and hasattr(x, "device") and not isinstance(x, np.ndarray) for x in maps):
        return False
    return cpu or all(x.device.type != "cpu" for x in maps)


def device_map(x: Any, where: str, name: str) -> DeviceMap:
    """:func:`~panbench.metrics.panoptic.id_map` of a tensor, on its device: the same checks and forms (HxW, (1, H, W),
    HxWx3 uint8 RGB)."""
    import torch

    if x.is_floating_point() or x.is_complex():
        raise float_shape_error(where, name, str(x.dtype), tuple(x.shape)) or \
            float_error(where, name, str(x.dtype), tensor_facts(x))
    x = x.detach()
    dtype = torch.empty(0, dtype=x.dtype).numpy().dtype  # the dtype the host path names
    form = map_form(dtype, tuple(x.shape), where, name)
    if form == "rgb":
        rgb = x.to(torch.int64)
        return DeviceMap(rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16), False, np.dtype(np.uint32))
    return DeviceMap((x[0] if form == "stacked" else x).to(torch.int64), dtype != np.uint32, dtype)


def tensor_facts(x: Any) -> FloatFacts | None:
    """:func:`~panbench.metrics.id_maps.array_facts` of a tensor of floating-point values, counted on its device
    (None: of complex ones); only the few values the error names cross to the host."""
    import torch

    if x.is_complex():
        return None
    x = x.detach()
    values = x[torch.isfinite(x)]
    fractions = values[values != torch.round(values)]
    low, high = (float(values.min()), float(values.max())) if values.numel() else (0.0, 0.0)
    return FloatFacts(bool(torch.isnan(x).any()), bool(torch.isinf(x).any()),
                      float(fractions[0]) if fractions.numel() else None, low, high)


def device_counts(ids: Any, seg_ids: np.ndarray) -> dict[int, int]:
    """The pixels of each of ``seg_ids`` in the device map ``ids``, by id; only the counts cross to the host."""
    import torch

    keys = np.unique(seg_ids)
    if not len(keys):
        return {}
    sorted_keys = torch.as_tensor(keys, dtype=torch.int64, device=ids.device)
    flat = ids.reshape(-1)
    pos = torch.searchsorted(sorted_keys, flat).clamp_(max=len(keys) - 1)
    slot = torch.where(sorted_keys[pos] == flat, pos, len(keys))  # len(keys): an id not in seg_ids
    counts = torch.bincount(slot, minlength=len(keys) + 1)[: len(keys)]
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def device_pair_table(cats: CategoryTable, gt_ids: DeviceMap, gt_segments_info: list[dict[str, Any]],
                      pred_ids: DeviceMap, pred_segments_info: list[dict[str, Any]], where: str = "image",
                      strict: bool = False, names: Naming = FILE_NAMES) -> tuple[np.ndarray, Segments, Segments]:
    """:func:`~panbench.pq.evaluator.pair_table` (``areas=False``) of two maps on one device: the table (on the
    host) and both sides' segments, with the same checks in the same order and the same one-line errors."""
    g, p = tuple(gt_ids.ids.shape), tuple(pred_ids.ids.shape)
    if g != p:
        raise size_error(where, g, p, names)
    gt, pred = image_segments(cats, gt_segments_info, pred_segments_info, where, names)
    return device_table(gt_ids, gt, pred_ids, pred, where, strict, cats, names), gt, pred


def device_table(gt_ids: DeviceMap, gt: Segments, pred_ids: DeviceMap, pred: Segments, where: str,
                 strict: bool = False, cats: CategoryTable | None = None, names: Naming = FILE_NAMES) -> np.ndarray:
    """:func:`~panbench.pq.evaluator.intersection_table` counted on the maps' device: ids out of range refused (the
    ground truth's first), then the first pixel (raster order) whose id no segment lists, the ground truth's with
    ``strict`` (first where both are at one pixel); without it such ground-truth pixels count in row n_gt + 1. The
    table and the first pixels the checks look for cross to the host in one copy."""
    import torch

    g, p = gt_ids.ids.reshape(-1), pred_ids.ids.reshape(-1)
    rows, g_unknown = _indices(g, gt.ids, len(gt) + 1)
    cols, p_unknown = _indices(p, pred.ids, 0)
    masks = [(x < 0) | (x >= MAX_ID) if m.ranged else None for x, m in ((g, gt_ids), (p, pred_ids))]
    firsts = _firsts([g, p, g, p], [*masks, g_unknown if strict else None, p_unknown])
    n_cols = len(pred) + 1
    counts = torch.bincount(rows * n_cols + cols, minlength=(len(gt) + 2) * n_cols)
    host = torch.cat([firsts.reshape(-1), counts]).cpu().numpy()
    bad = [(int(host[2 * k]), int(host[2 * k + 1])) if host[2 * k] < g.numel() else None for k in range(4)]
    for gt_side, out_of_range in zip((True, False), bad[:2]):
        if out_of_range is not None:
            raise unlisted_id_error(where, gt_side, out_of_range[1], names=names)
    bad_gt, bad_pred = bad[2:]
    if bad_gt is not None and (bad_pred is None or bad_gt[0] <= bad_pred[0]):
        raise unlisted_id_error(where, True, bad_gt[1], names=names)
    if bad_pred is not None:  # a mistake that explains ids absent from segments_info: swapped channels, encoded cats
        png_ids, listed = [bad_pred[1], *torch.unique(p).tolist()], pred.ids.tolist()
        found = unlisted_png_ids(png_ids, listed, cats, pred_ids.ids.cpu().numpy())
        raise unlisted_id_error(where, False, bad_pred[1], found, names)
    return host[8:].reshape(len(gt) + 2, n_cols)


def _indices(ids: Any, keys: np.ndarray, unlisted: int) -> tuple[Any, Any]:
    """Each pixel's index (0 for VOID, k + 1 for ``keys[k]``, ``unlisted`` for an id in no segment) and where the id
    is in no segment; ``keys``: a segments_info's ids (unique, 1 .. 2^24 - 1)."""
    import torch

    order = np.argsort(keys, kind="stable")
    sorted_keys = torch.as_tensor(np.concatenate(([0], keys[order])), dtype=torch.int64, device=ids.device)
    index_of = torch.as_tensor(np.concatenate(([0], order + 1)), dtype=torch.int64, device=ids.device)
    pos = torch.searchsorted(sorted_keys, ids).clamp_(max=len(keys))
    unknown = sorted_keys[pos] != ids
    return torch.where(unknown, unlisted, index_of[pos]), unknown


def _firsts(maps: list[Any], masks: list[Any]) -> Any:
    """For each mask its first true pixel in raster order and the id of its map there, as a ``(len(masks), 2)``
    int64 tensor on the maps' device; the pixel is the number of pixels where the mask (or None) has none."""
    import torch

    n, device = maps[0].numel(), maps[0].device
    pos = torch.arange(n, device=device)
    found = []
    for ids, mask in zip(maps, masks):
        if mask is None or n == 0:
            found.append(torch.full((2,), n, dtype=torch.int64, device=device))
            continue
        first = torch.where(mask, pos, n).min()
        found.append(torch.stack([first, ids[first.clamp(max=n - 1)]]))
    return torch.stack(found)
