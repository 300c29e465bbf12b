"""The pixel kernels of PQ: segment ids from RGB, ids to compact indices, and the intersection
table of two id maps; reused per-thread work buffers.  The C extension (``_native``) runs them
when it is built; the numpy path gives the same numbers.  numpy only."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from panbench.pq.extensions import load_extension

_native = load_extension("panbench.pq._native")  # the C loops of this module
_deflate: Any
try:  # libdeflate: whole-buffer inflate, ~10x faster than zlib on panoptic PNGs
    import deflate as _deflate
except ImportError:  # pragma: no cover
    _deflate = None

MAX_ID = 256**3
_SENTINEL = np.uint16(0xFFFF)
# per thread: "buffers", (slot, dtype, ndim) -> a flat buffer, grown as needed; "lut", index_map's table
_LOCAL = threading.local()


def workspace(slot: str | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A reusable array of this thread for ``slot`` (a fresh one when ``slot`` is None), valid until the thread's
    next call with that slot, dtype and number of dimensions.

    Reusing image-sized buffers avoids a page fault per 4 KiB on every fresh allocation, which
    otherwise costs as much as the arithmetic: one flat buffer per slot serves every shape (COCO's images
    come in many sizes), grown when an image needs more.  One set per thread: ``score`` scores images on threads.
    """
    if slot is None:
        return np.empty(shape, dtype)
    dt = np.dtype(dtype)
    n = math.prod(shape)
    key = (slot, dt.str, len(shape))
    buffers = _LOCAL.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.size < n:
        buf = buffers[key] = np.empty(max(n, buf.size * 5 // 4 if buf is not None else 0, 1), dt)
    return buf[:n].reshape(shape)


def rgb2id(rgb: np.ndarray, slot: str | None = None) -> np.ndarray:
    """Segment ids ``R + 256 G + 256^2 B`` as uint32 (one SIMD pass: RGBA viewed as uint32).

    With ``slot`` the result lives in a reused buffer, valid until this thread's next call with that slot.
    """
    import cv2

    if cv2.getNumThreads() != 1:  # OpenCV's thread pool spins after each call and starves numpy
        cv2.setNumThreads(1)
    h, w = rgb.shape[:2]
    rgba = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2RGBA, dst=workspace(slot, (h, w, 4), np.uint8))
    ids = rgba.view("<u4")[..., 0]
    ids &= 0x00FFFFFF
    return ids


def index_map(ids: np.ndarray, seg_ids: np.ndarray, step: int = 1, slot: str | None = None) -> np.ndarray:
    """Map segment ids to ``k * step`` for the k-th segment (k = 1..n; VOID stays 0, ids in no
    segment become 0xFFFF), through a reused 2^24-entry table.  ``(n + 1) * step`` must be < 0xFFFF."""
    lut = _LOCAL.__dict__.get("lut")
    if lut is None:  # this thread's 2^24-entry table (32 MiB, made on the numpy path's first use in the thread)
        lut = _LOCAL.lut = np.full(MAX_ID, _SENTINEL, np.uint16)
    lut[0] = 0
    lut[seg_ids] = np.arange(1, len(seg_ids) + 1, dtype=np.uint16) * np.uint16(step)
    try:
        return np.take(lut, ids, out=workspace(slot, ids.shape, np.uint16))
    finally:
        lut[seg_ids] = _SENTINEL
        lut[0] = _SENTINEL


def intersections(gt_index: np.ndarray, n_gt: int, pred_index: np.ndarray, n_pred: int, gt_step: int = 1) -> np.ndarray:
    """Pixel counts of (ground truth, prediction) index pairs, shape ``(n_gt + 2, n_pred + 1)``.

    ``gt_index`` holds ``g * gt_step`` for g in 0 (VOID), 1..n_gt; with ``gt_step == n_pred + 1``
    (the fast path) the pair index is a plain uint16 sum.
    """
    cols = n_pred + 1
    if gt_step == cols:
        flat = np.add(gt_index.ravel(), pred_index.ravel(), out=workspace("pairs", (gt_index.size,), np.intp))
    else:
        flat = gt_index.ravel().astype(np.intp) * cols + pred_index.ravel()
    return np.bincount(flat, minlength=(n_gt + 2) * cols)[: (n_gt + 2) * cols].reshape(n_gt + 2, cols)
