"""The pixel kernels of PQ in numpy (segment ids from RGB, ids to compact indices, boundary PQ's counts for images
past the C's int32 rows), reused per-thread work buffers, and the loaded C kernels of one image (``_native``); the
numpy twins of the C kernels are the tests' references (tests/kernel_references.py).  numpy only."""

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
    next call with that slot, dtype and number of dimensions: one flat buffer per slot, grown as needed, serves every
    shape (a fresh image-sized allocation costs a page fault per 4 KiB, as much as the arithmetic)."""
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
    """Segment ids ``R + 256 G + 256^2 B`` as uint32 (one SIMD pass: RGBA viewed as uint32), in :func:`workspace`
    ``slot``'s buffer with ``slot``."""
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
    if lut is None:  # this thread's 2^24-entry table (32 MiB, made on its first use in the thread)
        lut = _LOCAL.lut = np.full(MAX_ID, _SENTINEL, np.uint16)
    lut[0] = 0
    lut[seg_ids] = np.arange(1, len(seg_ids) + 1, dtype=np.uint16) * np.uint16(step)
    try:
        return np.take(lut, ids, out=workspace(slot, ids.shape, np.uint16))
    finally:
        lut[seg_ids] = _SENTINEL
        lut[0] = _SENTINEL


def _window_clean(breaks: np.ndarray, n: int, d: int, axis: int) -> np.ndarray:
    """For every position i along ``axis`` (length n): positions i-d..i+d are inside and
    ``breaks`` (length n-1 along axis, break between k and k+1) has none in i-d..i+d-1."""
    shape = list(breaks.shape)
    shape[axis] = n
    out = np.zeros(shape, bool)
    if n < 2 * d + 1:
        return out
    c = np.cumsum(breaks, axis=axis, dtype=np.int32)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)  # length n
    hi = np.take(c, np.arange(2 * d, n), axis=axis)
    lo = np.take(c, np.arange(0, n - 2 * d), axis=axis)
    idx = [slice(None)] * out.ndim
    idx[axis] = slice(d, n - d)
    out[tuple(idx)] = (hi - lo) == 0
    return out


def boundary_mask(ids: np.ndarray, d: int) -> np.ndarray:
    """True where a pixel is on the boundary of the region of its own id (every id, VOID too)."""
    h, w = ids.shape
    inner_h = _window_clean(ids[:, 1:] != ids[:, :-1], w, d, axis=1)  # its row window is one id
    # the column window: one id, and every pixel in it has a clean row window
    breaks_v = (ids[1:] != ids[:-1]) | ~inner_h[1:] | ~inner_h[:-1]
    inner = _window_clean(breaks_v, h, d, axis=0) & inner_h
    return ~inner


def _index(ids: np.ndarray, seg_ids: np.ndarray) -> np.ndarray:
    """Per pixel: 0 for VOID, k + 1 for ``seg_ids[k]``, len + 1 for an id not listed."""
    out = index_map(ids, seg_ids).astype(np.int64)
    out[out == _SENTINEL] = len(seg_ids) + 1
    return out


def boundary_counts(gt_ids: np.ndarray, pred_ids: np.ndarray, width: int, height: int, gt_keys: np.ndarray,
                    pred_keys: np.ndarray, d: int, bint: np.ndarray, bg_area: np.ndarray,
                    bp_area: np.ndarray) -> tuple[int, int] | None:
    """Boundary PQ's counts into ``bint`` ((G + 2) x (P + 1): pixels on a predicted boundary and on a ground-truth
    boundary or VOID), ``bg_area`` and ``bp_area`` (each segment's boundary pixels); None, or ``(1, id)``."""
    n_gt, n_pred = len(gt_keys), len(pred_keys)
    gt_ids, pred_ids = gt_ids.reshape(height, width), pred_ids.reshape(height, width)
    bg, bp = boundary_mask(gt_ids, d), boundary_mask(pred_ids, d)
    g_of = _index(gt_ids, gt_keys)  # 0 VOID, 1..G, G+1 not listed
    p_of = _index(pred_ids, pred_keys)
    if p_of.max(initial=0) > n_pred:
        return 1, int(pred_ids.ravel()[np.argmax(p_of.ravel() > n_pred)])
    bg_area[:] = np.bincount(g_of[bg], minlength=n_gt + 2)
    bp_area[:] = np.bincount(p_of[bp], minlength=n_pred + 1)
    sel = bp & (bg | (g_of == 0))  # predicted boundary on a ground-truth boundary or on VOID
    bint[...] = np.bincount(g_of[sel] * (n_pred + 1) + p_of[sel],
                            minlength=(n_gt + 2) * (n_pred + 1)).reshape(n_gt + 2, n_pred + 1)
    return None
