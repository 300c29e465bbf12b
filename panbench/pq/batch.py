"""How ``panbench score`` scores a folder: chunks of :data:`CHUNK` images read, decoded, intersected and matched in C
(``_native.pair_tables``, with boundary PQ's pass where asked) on threads of one process, their results added every
:data:`ADD_EVERY` images (or :data:`ADD_BYTES`) in the images' order; an image the C path does not count, and every
image where libdeflate is not found or ``PANBENCH_PER_IMAGE=1``, goes on the per-image path, so every image gets that
path's numbers or error, bit for bit (docs/pq-evaluator.md, "Parallel paths"). Where the accumulator counts other
rules, each chunk's tables are counted under their quirk states on the same thread."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq import native
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.coco_format import PackedSegments, safe_path
from panbench.pq.evaluator import image_segments
from panbench.pq.matching import (
    MATCH_FIELDS,
    RES_COUNTS,
    RES_FIELDS,
    RES_HEADER,
    CategoryTable,
    column_dtype,
    res_fields,
)
from panbench.pq.png import max_pixels
from panbench.pq.quirks import RuleStates, Table
from panbench.pq.result import BOUNDARY_FIELDS, BOUNDARY_PREFIX, ImageResult, results_to_columns
from panbench.pq.threads import Task, Workers

CHUNK = 8  # images per C call: a chunk's C work (8 images' decodes and counts) dwarfs the call's cost
ADD_EVERY = 256  # images gathered into columns and added to the sums at once (res_columns, PQStats.add_columns)
ADD_BYTES = 32 << 20  # ... or fewer, once their res buffers (each sized for any match of its image) hold this much
_READY: dict[tuple[Any, Any], bool] = {}  # (_native module, deflate module) -> use_libdeflate was called

Pair = tuple[dict[str, Any], dict[str, Any]]  # (ground-truth annotation, prediction annotation) of one image
# an image kept by the calling thread while its chunk is in flight: its res and number of predictions, or None
# (the per-image path scores it)
_Prepared = tuple[np.ndarray, int] | None
# a chunk in flight: its pairs, what the calling thread keeps of each (None: the per-image path scores the chunk, the
# call's value its results), the C call (or its status bytes), the position of each image handed to C
_Chunk = tuple[Sequence[Pair], "list[_Prepared] | None", "Task[Any] | Any", list[int]]
# one image on the per-image path: its result, the image's table appended to the list where one is given (the
# rules' sums are counted from it)
PerImage = Callable[[Pair, "list[Table] | None"], ImageResult]


def available() -> bool:
    """Whether ``score`` takes the batch path: libdeflate's entry points are found, and ``PANBENCH_PER_IMAGE=1``
    does not ask for the per-image path (its reference, for checks and debugging)."""
    ext, d = native.pixels(), native.deflate()
    if d is None or os.environ.get("PANBENCH_PER_IMAGE") == "1":
        return False
    key = (ext, d)  # the modules themselves (kept alive here): a test that swaps either one is seen
    if key not in _READY:
        points = native.libdeflate_entry_points()
        if points is not None:
            ext.use_libdeflate(*points)
        _READY[key] = points is not None
    return _READY[key]


def _prepare(cats: CategoryTable, gt_dir: Path, pred_dir: Path, pair: Pair, strict: bool,
             boundary: bool = False) -> tuple[_Prepared, tuple[Any, ...] | None]:
    """One image for ``pair_tables``: what the calling thread keeps and the C item (None: the per-image path);
    with ``boundary``, boundary PQ's contributions counted and matched in C too."""
    gt_ann, pred_ann = pair
    where = f"image {gt_ann['image_id']}"
    try:
        gt_png = os.fsencode(safe_path(gt_dir, gt_ann["file_name"], f"{where} (ground truth)"))
        pred_png = os.fsencode(safe_path(pred_dir, pred_ann["file_name"], f"{where} (prediction)"))
        g_ids, g_cats, g_areas, g_crowd, p_ids, p_cats, p_scores = _segments(cats, gt_ann["segments_info"],
                                                                            pred_ann["segments_info"], where)
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
    n_gt, n_pred = len(g_crowd), len(p_ids) // 8
    inter = np.empty((n_gt + 2, n_pred + 1), np.int64)
    res = np.empty(res_words(n_gt, n_pred, pixels, boundary), np.int64)
    return (res, n_pred), (gt_png, pred_png, h, w, g_ids, p_ids, inter, strict, g_cats, g_areas, g_crowd, p_cats,
                           res, boundary, p_scores)


def _segments(cats: CategoryTable, gt_info: Any, pred_info: Any, where: str) -> tuple[Any, ...]:
    """Both sides' segments_info checked, as the memoryviews ``pair_tables`` reads (the ground truth's int64 ids,
    category indices, areas and one-byte crowd flags, the predictions' ids, category indices and float64 scores): of
    ``_match.packed``'s bytes where C read both arrays, else of :func:`image_segments`' arrays (which raises)."""
    c = native.match()
    if type(gt_info) is PackedSegments and type(pred_info) is PackedSegments:
        g = c.packed(gt_info.fields, gt_info.n, cats.index, True)
        p = c.packed(pred_info.fields, pred_info.n, cats.index, False)
        if g is not None and p is not None:  # the layout of coco_format._unpacked
            n, m, g, p = 8 * gt_info.n, 8 * pred_info.n, memoryview(g), memoryview(p)
            return g[:n], g[n:2 * n], g[2 * n:3 * n], g[4 * n:4 * n + gt_info.n], p[:m], p[m:2 * m], p[3 * m:4 * m]
    gt, pred = image_segments(cats, gt_info, pred_info, where)
    return tuple(a.data.cast("B") for a in (gt.ids, gt.cats, gt.areas, gt.iscrowd, pred.ids, pred.cats, pred.scores))


def res_words(n_gt: int, n_pred: int, pixels: int | None = None, boundary: bool = False) -> int:
    """The int64 words of a ``res`` that holds any match of ``n_gt`` ground truths and ``n_pred`` predictions
    (``match_one`` in ``_native.c``: header, predicted areas, the match's fields, fold, boundary PQ's contributions
    with ``boundary``, fp_matched bytes) on an image of ``pixels`` pixels (None: not known), each cell of the fold
    holding at least one pixel."""
    t = min(n_gt, n_pred)  # true positives: at most one per segment
    ints = 2 * t + 2 * n_gt + 2 * n_pred + n_gt
    floats = 2 * t + 4 * n_gt + 3 * n_pred + n_gt  # with tp_score and fp_score
    cells = (n_gt + 1) * (n_pred + 1) if pixels is None else min((n_gt + 1) * (n_pred + 1), pixels)
    bounds = 2 * t + n_gt + n_pred if boundary else 0  # b_tp_cats, b_tp_ious, b_fn_cats, b_fp_cats
    return RES_HEADER + n_pred + ints + floats + 3 * cells + bounds + (n_pred + 7) // 8


_GROUPS = (("tp", 0), ("fn", 1), ("fp", 2), ("gt", 3))  # each match group's row count, for its <group>_img
_BOUNDARY_GROUPS = ((BOUNDARY_PREFIX + "tp", 6), (BOUNDARY_PREFIX + "fn", 7), (BOUNDARY_PREFIX + "fp", 8))
_FOLD = ("sem_gt", "sem_pred", "sem_px")


def res_columns(kept: Sequence[tuple[np.ndarray, int]], boundary: bool = False) -> dict[str, np.ndarray]:
    """The results of images matched into their ``res`` (each with its number of predictions) as
    :func:`~panbench.pq.result.results_to_columns` gives them (``boundary``: the ``b_`` columns too), in one C pass."""
    n = len(kept)
    if n == 0:
        return results_to_columns([])
    values, heads, matched = native.pixels().res_columns([r for r, _ in kept], [p for _, p in kept])
    counts = np.frombuffer(heads, np.int64).reshape(n, RES_COUNTS)  # n_tp, n_fn, n_fp, n_nc, m, unlisted, b_tp, ...
    cols = res_fields(np.frombuffer(values, np.int64), counts.sum(axis=0), np.frombuffer(matched, np.bool_))
    images = np.arange(n, dtype=np.int64)
    out = {name: cols[name] for name in MATCH_FIELDS}
    out.update({g + "_img": np.repeat(images, counts[:, k]) for g, k in _GROUPS})
    out.update({name: cols[name] for name in _FOLD})
    listed = counts[:, 5] > 0  # unlisted pixels: one entry per image that has any
    out["unlisted_px"] = counts[listed, 5]
    out["sem_img"], out["unlisted_img"] = np.repeat(images, counts[:, 4]), images[listed]
    if boundary:
        out.update({BOUNDARY_PREFIX + name: cols[BOUNDARY_PREFIX + name] for name in BOUNDARY_FIELDS})
        out.update({g + "_img": np.repeat(images, counts[:, k]) for g, k in _BOUNDARY_GROUPS})
    return out


def packed(result: ImageResult) -> tuple[np.ndarray, int]:
    """An image's result as ``match_one`` writes a ``res`` (without the predictions' areas): what
    :func:`res_columns` reads, for an image the per-image path scored."""
    m, b = result.match, result.boundary
    fields = []
    for name, _ in RES_FIELDS:  # the one layout, field by field
        if name.startswith(BOUNDARY_PREFIX):
            if b is None:
                continue
            v = getattr(b, name[len(BOUNDARY_PREFIX):])
        else:
            v = getattr(result if name in _FOLD else m, name)
        fields.append(np.asarray(v, column_dtype(name.removeprefix(BOUNDARY_PREFIX))).view(np.int64))
    matched = np.zeros(-(-len(m.fp_matched) // 8) * 8, np.uint8)
    matched[:len(m.fp_matched)] = m.fp_matched
    body = np.concatenate([*fields, matched.view(np.int64)])
    bounds = [len(b.tp_cats), len(b.fn_cats), len(b.fp_cats)] if b is not None else [0, 0, 0]
    head = [len(m.tp_cats), len(m.fn_cats), len(m.fp_cats), len(m.gt_cats), len(result.sem_px),
            int(result.unlisted_px.sum()), *bounds, RES_HEADER + len(body)]
    return np.concatenate([np.array(head, np.int64), body]), 0


def _counted(items: list[tuple[Any, ...]], limit: int, rules: RuleStates) -> tuple[Any, tuple[np.ndarray, int]]:
    """``pair_tables`` of the items, then the sums of the tables it counted under ``rules``' states (both in C
    without the GIL): the status bytes and those sums with their number of images, which the calling thread adds."""
    status = native.pixels().pair_tables(items, limit)
    counted = [(it[6], it[4], it[8], it[9], it[10], it[11]) for it, st in zip(items, status) if st == 0]
    return status, (rules.sums_of(counted), len(counted))


def _alone(pairs: Sequence[Pair], per_image: PerImage,
           rules: RuleStates | None) -> tuple[list[ImageResult], tuple[np.ndarray, int] | None]:
    """Images scored by ``per_image`` (the per-image path), with their tables' sums under ``rules``' states and
    their number of images (None without rules), which the calling thread adds."""
    tables: list[Table] | None = None if rules is None else []
    results = [per_image(pair, tables) for pair in pairs]
    return results, None if rules is None or not tables else (rules.sums_of(tables), len(tables))


def _submit(cats: CategoryTable, gt_dir: Path, pred_dir: Path, chunk: Sequence[Pair], strict: bool, boundary: bool,
            limit: int | None, pool: Workers | None, per_image: PerImage, rules: RuleStates | None = None) -> _Chunk:
    """Prepare a chunk in the calling thread and start its C call (on a thread, or here without a pool), with the
    tables' sums under ``rules``' states where given; ``limit`` None scores the whole chunk with ``per_image``
    instead, on a thread all the same."""
    if limit is None:
        call: Any = _alone
        args: tuple[Any, ...] = (chunk, per_image, rules)
        prepared: list[_Prepared] | None = None
        slots: list[int] = []
    else:
        prepared, items, slots = [], [], []
        for pair in chunk:
            kept_side, item = _prepare(cats, gt_dir, pred_dir, pair, strict, boundary)
            prepared.append(kept_side)
            if item is not None:
                slots.append(len(prepared) - 1)
                items.append(item)
        if not items:
            return chunk, prepared, b"", slots
        call, args = (native.pixels().pair_tables, (items, limit)) if rules is None else (_counted,
                                                                                         (items, limit, rules))
    return chunk, prepared, pool.submit(call, *args) if pool is not None else call(*args), slots


def _results(c: _Chunk, per_image: PerImage, rules: RuleStates | None = None) -> list[Any]:
    """A chunk's results in order, once its call is done: each image C counted and matched as its ``res`` (and
    each other image scored by ``per_image``, :func:`packed`), or the chunk's :class:`ImageResult` s; the sums
    under ``rules``' states of the chunk's tables added to it."""
    chunk, prepared, run, slots = c
    done = run.result() if isinstance(run, Task) else run
    if prepared is None:
        results, summed = done
        if rules is not None and summed is not None:
            rules.add_state_sums(*summed)
        return list(results)
    if rules is not None and slots:
        done, summed = done
        rules.add_state_sums(*summed)
    counted = [False] * len(chunk)
    for k, st in zip(slots, done, strict=True):  # one status byte per item
        counted[k] = st == 0
    if all(counted):
        return prepared  # each holds its res
    left, summed = _alone([pair for pair, ok in zip(chunk, counted) if not ok], per_image, rules)
    if rules is not None and summed is not None:
        rules.add_state_sums(*summed)
    scored = iter(left)
    return [prep if ok else packed(next(scored))  # ok: prep holds its res
            for prep, ok in zip(prepared, counted)]


def _add(acc: PanopticAccumulator, done: list[Any], first: int, per_image: bool) -> int:
    """Add the collected results (``res`` buffers, or :class:`ImageResult` s with ``per_image``) to ``acc`` as
    columns, at positions ``first, first + 1, ...``; the position after them."""
    if done:
        cols = results_to_columns(done) if per_image else res_columns(done, acc.boundary)
        acc.add(cols, np.arange(first, first + len(done), dtype=np.int64))
    return first + len(done)


def score_batch(acc: PanopticAccumulator, gt_dir: Path, pred_dir: Path, pairs: Sequence[Pair], strict: bool,
                threads: int, per_image: PerImage, in_c: bool = True) -> None:
    """Add the results of ``pairs`` to ``acc`` at positions 0, 1, ... in their order (``acc.boundary``: the ``b_``
    columns too), on ``threads`` threads (1: the calling thread), counted in C where ``in_c``, else by ``per_image``;
    where ``acc`` counts rules, the sums of every image's table under their quirk states added to its
    ``rule_states`` as the tables are counted."""
    cats, boundary = acc.categories, acc.boundary
    rules = acc.rule_states if acc.rule_states.rules else None
    try:
        limit = max_pixels() if in_c else None
    except InputError:  # PANBENCH_MAX_PIXELS is not a number: the per-image path raises it at its turn
        limit = None
    done: list[Any] = []  # collected in the images' order, not yet added
    held = added = 0  # the bytes of the res buffers in done; the images added so far
    chunks = iter([pairs[lo:lo + CHUNK] for lo in range(0, len(pairs), CHUNK)])
    pool = None
    try:
        pool = Workers(threads, "panbench-score") if threads > 1 else None
        queue: deque[_Chunk] = deque()
        for chunk in chunks:
            queue.append(_submit(cats, gt_dir, pred_dir, chunk, strict, boundary, limit, pool, per_image, rules))
            if len(queue) >= 2 * max(1, threads):  # two chunks in flight per thread: none waits for the next
                break
        while queue:
            first = queue.popleft()
            nxt = next(chunks, None)
            if nxt is not None:  # the next chunk starts before this one is gathered
                queue.append(_submit(cats, gt_dir, pred_dir, nxt, strict, boundary, limit, pool, per_image, rules))
            got = _results(first, per_image, rules)
            done += got
            held += 0 if limit is None else sum(r.nbytes for r, _ in got)
            if len(done) >= ADD_EVERY or held >= ADD_BYTES:
                added, done, held = _add(acc, done, added, limit is None), [], 0
    finally:
        if pool is not None:
            pool.shutdown(cancel=True)
    _add(acc, done, added, limit is None)
