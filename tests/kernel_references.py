"""The numpy twins of panbench's C kernels of one image (the same arguments and results as ``_native.pair_counts``,
``_match.areas`` and ``_match.fold``): the references the C is checked against, and :func:`numpy_kernels`, which
hands every kernel of the per-image path its twin (the match to ``panbench.pq.matching.match_image_numpy``, boundary
PQ's counts to ``panbench.pq.kernels.boundary_counts``, the segments_info checks to their Python code)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from panbench.pq import boundary, kernels, matching
from panbench.pq.kernels import _SENTINEL, index_map, workspace
from panbench.pq.matching import RES_HEADER


class Twin:
    """A C extension with some of its functions replaced (the others are the extension's own)."""

    def __init__(self, ext: Any, **replaced: Any) -> None:
        self._ext, self._replaced = ext, replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._ext, name)


def numpy_kernels(m: pytest.MonkeyPatch) -> None:
    """The per-image path on the numpy twins: the pixel pass (:func:`pair_counts`), the match (the numpy matcher,
    which ``match`` returning None hands the table to), :func:`areas`, :func:`fold`, boundary PQ's counts and match,
    the segments_info checks (their Python code, which C's ``typed``/``segments``/``packed`` declining leaves to)."""
    m.setattr(kernels, "_native", Twin(kernels._native, pair_counts=pair_counts))
    m.setattr(matching, "_native", Twin(matching._native, match=_declined, boundary_match=_declined, areas=areas,
                                        fold=fold, typed=lambda *a: False, segments=_declined, packed=_declined,
                                        scan=_declined))
    m.setattr(boundary, "_native", Twin(boundary._native, boundary_counts=kernels.boundary_counts))


def python_checks(ext: Any) -> Twin:
    """``_match`` (``ext``) with the segments_info checks and the JSON scan declining (``typed`` False, ``segments``,
    ``packed`` and ``scan`` None): their Python code runs, as the package does wherever C declines."""
    return Twin(ext, typed=lambda *a: False, segments=_declined, packed=_declined, scan=_declined)


def _declined(*args: Any) -> None:
    return None


def intersections(gt_index: np.ndarray, n_gt: int, pred_index: np.ndarray, n_pred: int, gt_step: int = 1) -> np.ndarray:
    """Pixel counts of (ground truth, prediction) index pairs, shape ``(n_gt + 2, n_pred + 1)``; ``gt_index`` holds
    ``g * gt_step`` (with ``gt_step == n_pred + 1``, the fast path, the pair index is a plain uint16 sum)."""
    cols = n_pred + 1
    if gt_step == cols:
        flat = np.add(gt_index.ravel(), pred_index.ravel(), out=workspace("pairs", (gt_index.size,), np.intp))
    else:
        flat = gt_index.ravel().astype(np.intp) * cols + pred_index.ravel()
    return np.bincount(flat, minlength=(n_gt + 2) * cols)[: (n_gt + 2) * cols].reshape(n_gt + 2, cols)


def pair_counts(gt_ids: np.ndarray, pred_ids: np.ndarray, gt_keys: np.ndarray, pred_keys: np.ndarray,
                inter: np.ndarray, strict: bool) -> tuple[int, int] | None:
    """Fill ``inter`` ((G + 2) x (P + 1)) with the pixel counts of (ground truth, prediction) index pairs of two
    uint32 id maps; None, or ``(side, id)`` for the first id in no segment, the ground truth's first (side 0, refused
    only with ``strict``: its pixels otherwise count in row G + 1; side 1: the prediction's)."""
    n_gt, n_pred = len(gt_keys), len(pred_keys)
    cols = n_pred + 1
    step = cols if (n_gt + 2) * cols < int(_SENTINEL) else 1  # fast path: one uint16 add per pixel
    gt_index = index_map(gt_ids, gt_keys, step, slot="gt_index")
    pred_index = index_map(pred_ids, pred_keys, slot="pred_index")
    unknown_gt = gt_index == _SENTINEL
    bad_gt = int(np.argmax(unknown_gt)) if strict and unknown_gt.any() else None
    unknown_pred = pred_index == _SENTINEL
    bad_pred = int(np.argmax(unknown_pred)) if unknown_pred.any() else None
    if bad_gt is not None and (bad_pred is None or bad_gt <= bad_pred):
        return 0, int(gt_ids.ravel()[bad_gt])
    if bad_pred is not None:
        return 1, int(pred_ids.ravel()[bad_pred])
    gt_index[unknown_gt] = (n_gt + 1) * step  # the row of ids in no segment
    inter[...] = intersections(gt_index, n_gt, pred_index, n_pred, gt_step=step)
    return None


def areas(inter: np.ndarray, n_gt: int, n_pred: int, gt_areas: np.ndarray, out: np.ndarray) -> tuple[int, int] | None:
    """The predictions' pixel areas into ``out``; None, or ``(0, k)`` for the first ground truth with more pixels
    than its JSON area, ``(1, k)`` for the first prediction absent from the PNG."""
    pixels = inter[1 : n_gt + 1].sum(axis=1)
    over = pixels > gt_areas
    if over.any():
        return 0, int(np.argmax(over))
    out[:] = inter[:, 1:].sum(axis=0)
    if not out.all():
        return 1, int(np.argmin(out))
    return None


def fold(inter: np.ndarray, n_gt: int, n_pred: int, gt_cats: np.ndarray, pred_cats: np.ndarray) -> bytearray:
    """The table folded to categories, as a ``res`` (:data:`~panbench.pq.matching.RES_FIELDS`) holding the fold
    alone (``sem_gt``, ``sem_pred``, ``sem_px``) and its header's ``m`` and unlisted pixels (row G + 1)."""
    r, c = np.nonzero(inter[: n_gt + 1])
    row_cat = np.concatenate(([-1], gt_cats)).astype(np.int64, copy=False)
    col_cat = np.concatenate(([-1], pred_cats)).astype(np.int64, copy=False)
    head = np.zeros(RES_HEADER, np.int64)  # its m, unlisted pixels and words used; no other rows
    head[4], head[5], head[RES_HEADER - 1] = len(r), int(inter[n_gt + 1].sum()), RES_HEADER + 3 * len(r)
    res = np.concatenate([head, row_cat[r], col_cat[c], inter[r, c].astype(np.int64, copy=False)])
    return bytearray(res.tobytes())
