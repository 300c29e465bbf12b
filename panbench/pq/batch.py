"""The batch path of ``panbench score``: images read, decoded, intersected and matched in C, on threads of one process.

A chunk of :data:`CHUNK` images goes to ``_native.pair_tables`` at a time: for each image both PNG files are read,
checked as :mod:`panbench.pq.png` checks them, inflated (libdeflate, through the entry points the ``deflate``
package exports), unfiltered to ids and counted into the image's intersection table, with the GIL released and
one set of buffers per thread, reused from image to image; the table is then checked, matched and folded there too
(what :func:`~panbench.pq.evaluator.table_result` does, in C: ``_match_core.h``).  Up to :func:`window` chunks are
in flight on the threads while the calling thread turns the chunk before into results, in the images' order, and
adds them up.

An image the C path does not count (a file missing or damaged, a palette, 16-bit or interlaced PNG, an id in no
segment, a segments_info that does not parse, an area that does not add up) is scored again on the per-image
path, which gives its numbers or its one-line error: every image gets the numbers and the error it gets on that
path, bit for bit.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq import native
from panbench.pq.coco_format import safe_path
from panbench.pq.evaluator import image_segments, unlisted_array
from panbench.pq.matching import CategoryTable, unpack_match
from panbench.pq.png import max_pixels
from panbench.pq.result import ImageResult
from panbench.pq.sums import PQStats

CHUNK = 8  # images per C call: a chunk's C work (8 images' decodes and counts) dwarfs the call's cost
ADD_EVERY = 256  # images whose contributions are added to the sums at once (PQStats.add_images)
_READY: dict[tuple[Any, Any], bool] = {}  # (_native module, deflate module) -> use_libdeflate was called

Pair = tuple[dict[str, Any], dict[str, Any]]  # (ground-truth annotation, prediction annotation) of one image
# one image as the calling thread keeps it while its chunk is in flight: the res C matches it into and its number
# of predictions, or None (the per-image path scores it)
_Prepared = tuple[np.ndarray, int] | None
_HEADER = 8  # PB_RES_HEADER of _native.c: n_tp, n_fn, n_fp, n_nc, m, unlisted, used, (unused)
# a chunk in flight: its pairs, what the calling thread keeps of each, the C call (or its status bytes), and the
# position in the chunk of each image handed to C
_Chunk = tuple[Sequence[Pair], list[_Prepared], "Future[bytes] | bytes", list[int]]


def available() -> bool:
    """Whether ``score`` takes the batch path: this install has the C kernels with ``pair_tables`` and libdeflate's
    entry points, and ``PANBENCH_PER_IMAGE=1`` does not ask for the per-image path (its reference)."""
    ext, d = native.pixels(), native.deflate()
    if ext is None or d is None or not hasattr(ext, "pair_tables") or os.environ.get("PANBENCH_PER_IMAGE") == "1":
        return False
    key = (ext, d)  # the modules themselves (kept alive here): a test that swaps either one is seen
    if key not in _READY:
        points = native.libdeflate_entry_points()
        if points is not None:
            ext.use_libdeflate(*points)
        _READY[key] = points is not None
    return _READY[key]


def window(threads: int) -> int:
    """Chunks in flight at once: two per thread, so that a thread never waits for the next one."""
    return 2 * max(1, threads)


def _prepare(cats: CategoryTable, gt_dir: Path, pred_dir: Path, pair: Pair,
             strict: bool) -> tuple[_Prepared, tuple[Any, ...] | None]:
    """One image for ``pair_tables``: what the calling thread keeps and the C item (None: the per-image path)."""
    gt_ann, pred_ann = pair
    where = f"image {gt_ann['image_id']}"
    try:
        gt_png = os.fsencode(safe_path(gt_dir, gt_ann["file_name"], f"{where} (ground truth)"))
        pred_png = os.fsencode(safe_path(pred_dir, pred_ann["file_name"], f"{where} (prediction)"))
        gt, pred = image_segments(cats, gt_ann["segments_info"], pred_ann["segments_info"], where)
    except (InputError, KeyError, TypeError, ValueError):  # the per-image path raises it in its order
        return None, None
    if b"\0" in gt_png or b"\0" in pred_png:
        return None, None
    h, w, pixels = -1, -1, None  # the size the JSON gives, or -1: any
    if "height" in gt_ann:
        jh, jw = gt_ann.get("height"), gt_ann.get("width")
        if not (type(jh) is int and type(jw) is int and 0 < jh < 2**31 and 0 < jw < 2**31):
            return None, None  # a size no PNG has (or of another type): the per-image path says what is wrong
        h, w, pixels = jh, jw, jh * jw
    n_gt, n_pred = len(gt), len(pred)
    inter = np.empty((n_gt + 2, n_pred + 1), np.int64)
    res = np.empty(res_words(n_gt, n_pred, pixels), np.int64)
    return (res, len(pred)), (gt_png, pred_png, h, w, gt.ids, pred.ids, inter, strict, gt.cats, gt.areas,
                              gt.iscrowd, pred.cats, res)


def res_words(n_gt: int, n_pred: int, pixels: int | None = None) -> int:
    """The int64 words of a ``res`` that holds any match of ``n_gt`` ground truths and ``n_pred`` predictions
    (``match_one`` in ``_native.c``: header, predicted areas, packed match, fold, fp_matched bytes) on an image of
    ``pixels`` pixels (None: not known), each cell of the fold holding at least one pixel."""
    t = min(n_gt, n_pred)  # true positives: at most one per segment
    ints = 2 * t + 2 * n_gt + 2 * n_pred + n_gt
    floats = t + 4 * n_gt + 2 * n_pred + n_gt
    cells = (n_gt + 1) * (n_pred + 1) if pixels is None else min((n_gt + 1) * (n_pred + 1), pixels)
    return _HEADER + n_pred + ints + floats + 3 * cells + (n_pred + 7) // 8


def _unpack(res: np.ndarray, n_pred: int) -> ImageResult:
    """An image's result from the ``res`` C matched it into: views of one exact-size copy (what the analyses keep
    holds no slack)."""
    n_tp, n_fn, n_fp, n_nc, m, unlisted, used = res[:7].tolist()
    buf = res[:used].copy()
    o = _HEADER + n_pred
    ni, nf = 2 * (n_tp + n_fn + n_fp) + n_nc, n_tp + 4 * n_fn + 2 * n_fp + n_nc
    fold = buf[o + ni + nf:o + ni + nf + 3 * m]
    fp_matched = buf[o + ni + nf + 3 * m:].view(np.bool_)[:n_fp]
    match = unpack_match(buf[o:o + ni], buf[o + ni:o + ni + nf].view(np.float64), fp_matched, n_tp, n_fn, n_fp, n_nc)
    return ImageResult(match, fold[:m], fold[m:2 * m], fold[2 * m:], unlisted_array(unlisted))


def _submit(cats: CategoryTable, gt_dir: Path, pred_dir: Path, chunk: Sequence[Pair], strict: bool,
            limit: int | None, pool: ThreadPoolExecutor | None) -> _Chunk:
    """Prepare a chunk in the calling thread and start its C call (on a thread, or here without a pool);
    ``limit`` None sends every image to the per-image path."""
    prepared, items, slots = [], [], []
    for pair in chunk:
        kept_side, item = _prepare(cats, gt_dir, pred_dir, pair, strict) if limit is not None else (None, None)
        prepared.append(kept_side)
        if item is not None:
            slots.append(len(prepared) - 1)
            items.append(item)
    run: Future[bytes] | bytes = b""
    if items:
        ext = native.pixels()
        run = pool.submit(ext.pair_tables, items, limit) if pool is not None else ext.pair_tables(items, limit)
    return chunk, prepared, run, slots


def _results(c: _Chunk, per_image: Callable[[Pair], ImageResult]) -> list[ImageResult]:
    """A chunk's results in order, once its C call is done: each counted table checked, matched and folded, each
    other image scored by ``per_image``."""
    chunk, prepared, run, slots = c
    status = run.result() if isinstance(run, Future) else run
    counted = [False] * len(chunk)
    for k, st in zip(slots, status, strict=True):  # one status byte per item
        counted[k] = st == 0
    out = []
    for pair, prep, ok in zip(chunk, prepared, counted):
        if ok:  # counted and matched in C: prep holds its res
            out.append(_unpack(*prep))  # type: ignore[misc]
        else:
            out.append(per_image(pair))
    return out


def score_batch(cats: CategoryTable, gt_dir: Path, pred_dir: Path, pairs: Sequence[Pair], strict: bool,
                keep: bool, threads: int,
                per_image: Callable[[Pair], ImageResult]) -> tuple[PQStats, list[ImageResult]]:
    """The sums of ``pairs`` and, with ``keep``, their results in order, decoded and counted on ``threads``
    threads (1: in the calling thread).  ``per_image`` scores an image the C path leaves alone."""
    try:
        limit: int | None = max_pixels()
    except InputError:  # PANBENCH_MAX_PIXELS is not a number: the per-image path raises it at its turn
        limit = None
    stats = PQStats.zeros(len(cats))
    kept: list[ImageResult] = []
    images = []
    chunks = iter([pairs[lo:lo + CHUNK] for lo in range(0, len(pairs), CHUNK)])
    pool = ThreadPoolExecutor(threads, thread_name_prefix="panbench-score") if threads > 1 else None
    try:
        queue: deque[_Chunk] = deque()
        for chunk in chunks:
            queue.append(_submit(cats, gt_dir, pred_dir, chunk, strict, limit, pool))
            if len(queue) >= window(threads):
                break
        while queue:
            done = queue.popleft()
            nxt = next(chunks, None)
            if nxt is not None:  # the next chunk starts before this one is matched
                queue.append(_submit(cats, gt_dir, pred_dir, nxt, strict, limit, pool))
            for result in _results(done, per_image):
                images.append(result.stats)
                if keep:
                    kept.append(result)
                if len(images) == ADD_EVERY:
                    stats.add_images(images)
                    images.clear()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    stats.add_images(images)
    return stats, kept
