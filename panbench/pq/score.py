"""Score COCO-panoptic-format predictions (JSON + PNG folder) against ground truth.

Streaming: images are read, scored and dropped one by one; ``workers > 1`` splits the
images into chunks scored in worker processes whose per-category sums are added.

:func:`score_stream` takes the per-image scoring function as an argument, so that a layer above
(:mod:`panbench.analysis.scoring`) can keep a small per-image match beside the sums without this
package importing it; the records come back in the order of the images, whatever the workers.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq.coco_format import parse_annotations, parse_categories, read_json, safe_join
from panbench.pq.evaluator import PanopticEvaluator, score_image
from panbench.pq.matching import CategoryTable, ImageStats
from panbench.pq.png import read_ids
from panbench.pq.sums import PQStats

Pair = tuple[dict[str, Any], dict[str, Any]]
# (categories, gt ids, gt segments_info, pred ids, pred segments_info, where) -> (PQ contributions, a record)
ImageScorer = Callable[[CategoryTable, np.ndarray, list, np.ndarray, list, str], tuple[ImageStats, Any]]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers(n_images: int) -> int:
    """``score``'s worker processes when none are asked for: every available core, at most one per image."""
    return max(1, min(available_cores(), n_images))


def plain_scorer(cats: CategoryTable, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
                 where: str, strict: bool = False) -> tuple[ImageStats, None]:
    """PQ contributions only (no per-image match)."""
    return score_image(cats, gt_ids, gt_segs, pred_ids, pred_segs, where, strict), None


def load_pairs(gt_json: str | os.PathLike[str], pred_json: str | os.PathLike[str]) -> tuple[CategoryTable, list[Pair]]:
    """Categories and (ground truth, prediction) annotation pairs matched by image id."""
    gt_data = read_json(gt_json, "ground-truth JSON")
    cats = parse_categories(gt_data, gt_json)
    gt = parse_annotations(gt_data, gt_json, gt=True)
    pred = parse_annotations(read_json(pred_json, "prediction JSON"), pred_json, gt=False)
    pairs = []
    for image_id in image_order(gt_data, gt):
        gt_ann = gt[image_id]
        pred_ann = pred.get(image_id)
        if pred_ann is None:
            raise _no_prediction(pred_json, image_id, pred)
        pairs.append((gt_ann, pred_ann))
    extra = [i for i in pred if i not in gt]
    if extra:
        print(f"note: {pred_json}: {len(extra)} prediction(s) for images the ground truth does not have (first: "
              f"image {extra[0]!r}) are not scored", file=sys.stderr)
    if not pairs:
        raise InputError(f"{gt_json}: no image to score ('annotations' is empty); use a ground-truth JSON that "
                         "annotates the images you predicted")
    return cats, pairs


def _no_prediction(pred_json: str | os.PathLike[str], image_id: Any, pred: dict[Any, Any]) -> InputError:
    other = str(image_id) if not isinstance(image_id, str) else int(image_id) if image_id.isdigit() else None
    if other is not None and other in pred:  # "142238" where the ground truth has 142238, or the other way
        return InputError(f"{pred_json}: image_id {other!r} is written as a {type(other).__name__} but the ground "
                          f"truth has {image_id!r}; write the image ids as the ground-truth JSON does")
    return InputError(f"{pred_json}: no prediction for image {image_id}; predict every ground-truth image or "
                      "restrict the ground-truth JSON to the images you predicted")


def image_order(gt_data: dict[str, Any], gt: dict[Any, Any]) -> list[Any]:
    """The ground truth's image ids in the order of its ``images`` list, as ``eval`` orders them (the
    per-image matches and the dataset fingerprint depend on it), then any annotated image that list lacks."""
    listed = [im["id"] for im in gt_data.get("images") or [] if isinstance(im, dict) and im.get("id") in gt]
    seen = set(listed)
    return list(dict.fromkeys(listed)) + [i for i in gt if i not in seen]


def read_pair(gt_dir: Path, pred_dir: Path, pair: Pair) -> tuple[np.ndarray, list, np.ndarray, list, str]:
    """Decode one pair of PNGs: ground-truth ids and segments, predicted ids and segments, and
    the image's name for messages."""
    gt_ann, pred_ann = pair
    where = f"image {gt_ann['image_id']}"
    gt_png = safe_join(gt_dir, gt_ann["file_name"], f"{where} (ground truth)")
    pred_png = safe_join(pred_dir, pred_ann["file_name"], f"{where} (prediction)")
    gt_ids = read_ids(gt_png, where, "gt")  # reused buffers
    pred_ids = read_ids(pred_png, where, "pred", shape=gt_ids.shape)  # size checked before inflating
    return gt_ids, gt_ann["segments_info"], pred_ids, pred_ann["segments_info"], where


_WORKER: dict[str, Any] = {}
_ADD_EVERY = 256  # images whose contributions are added to the sums at once (PQStats.add_images)
# images a worker takes from the shared counter at a time: small enough that the workers finish together (the
# last chunk is all that one may wait for); each worker hands its sums and records back once, at its end
_CHUNK = 16


def _init_worker(cats: CategoryTable, gt_dir: Path, pred_dir: Path, scorer: ImageScorer, pairs: list[Pair],
                 next_image: Any, size: int) -> None:
    gc.disable()  # scoring makes no reference cycles; a collection would walk (and copy) the inherited annotations
    _WORKER.update(cats=cats, gt_dir=gt_dir, pred_dir=pred_dir, scorer=scorer, pairs=pairs, next_image=next_image,
                   size=size)


def _score_pairs(cats: CategoryTable, gt_dir: Path, pred_dir: Path, scorer: ImageScorer,
                 pairs: list[Pair]) -> tuple[PQStats, list[Any]]:
    """The sums and ``scorer``'s per-image records of ``pairs``, in order."""
    stats = PQStats.zeros(len(cats))
    records, images = [], []
    for pair in pairs:
        st, rec = scorer(cats, *read_pair(gt_dir, pred_dir, pair))
        images.append(st)
        records.append(rec)
        if len(images) == _ADD_EVERY:
            stats.add_images(images)
            images.clear()
    stats.add_images(images)
    return stats, records


def _score_chunk(span: tuple[int, int]) -> tuple[PQStats, list[Any]]:
    """Score the images ``span`` (start, stop) of the worker's pairs (inherited when forked)."""
    w = _WORKER
    return _score_pairs(w["cats"], w["gt_dir"], w["pred_dir"], w["scorer"], w["pairs"][span[0] : span[1]])


def _work(_: int) -> tuple[PQStats, list[tuple[int, list[Any]]]]:
    """One worker's share: it takes the next ``size`` images from the shared counter until none are left (so the
    workers finish together), adds their sums, and hands back once: its sums and each chunk's records by start."""
    w = _WORKER
    n, size, counter = len(w["pairs"]), w["size"], w["next_image"]
    stats = PQStats.zeros(len(w["cats"]))
    parts: list[tuple[int, list[Any]]] = []
    while True:
        with counter.get_lock():
            start = counter.value
            counter.value = start + size
        if start >= n:
            break
        part, recs = _score_chunk((start, min(start + size, n)))
        stats = stats + part
        parts.append((start, recs))
    pack = getattr(w["scorer"], "pack", None)  # a scorer may hand its records over in a cheaper form
    return stats, [(start, pack(recs)) for start, recs in parts] if pack else parts


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while JSON is parsed: the parse makes ~10^5 objects and no cycles, and
    collections triggered by those allocations walk them all again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def score_stream(
    gt_json: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    pred_json: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    workers: int | None = None,
    scorer: ImageScorer = plain_scorer,
) -> tuple[PanopticEvaluator, list[Pair], list[Any]]:
    """Score every image; returns the evaluator holding the sums, the (ground truth, prediction)
    pairs in scoring order and ``scorer``'s per-image matches in the same order.  With
    ``workers > 1`` the scorer runs in forked processes (it is inherited, not pickled); ``None``
    takes :func:`default_workers`.  Every choice gives the same sums, bit for bit.  A scorer with ``pack`` and
    ``unpack`` attributes has each worker's records packed (``pack(list) -> object``) before they are handed
    back and unpacked (``unpack(object) -> list``) here: one pickle of a few arrays instead of many small ones."""
    with _no_gc():
        cats, pairs = load_pairs(gt_json, pred_json)
    if workers is None:
        workers = default_workers(len(pairs))
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d, what in ((gt_dir, "--gt-dir"), (pred_dir, "--pred-dir")):
        if not d.is_dir():
            raise InputError(f"{d}: {what} is not a folder; point it at the folder of panoptic PNGs")
    ev = PanopticEvaluator(cats)
    records: list[Any] = []
    if workers <= 1 or len(pairs) < 2 * workers:
        with _no_gc():  # as in a worker: no cycles are made, and collections would walk the annotations
            part, records = _score_pairs(cats, gt_dir, pred_dir, scorer, pairs)
        ev.merge(part)
    else:
        size = max(1, min(_CHUNK, len(pairs) // (4 * workers)))
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        counter = ctx.Value("l", 0)  # the next image to score, shared by the workers
        init = (cats, gt_dir, pred_dir, scorer, pairs, counter, size)
        chunks: list[tuple[int, list[Any]]] = []
        with ctx.Pool(workers, initializer=_init_worker, initargs=init) as pool:
            for part, parts in pool.map(_work, range(workers), chunksize=1):  # one hand-off per worker
                ev.merge(part)
                chunks.extend(parts)
        unpack = getattr(scorer, "unpack", None)
        for _, recs in sorted(chunks, key=lambda c: c[0]):  # the images' order, whatever the workers
            records.extend(unpack(recs) if unpack else recs)
    return ev, pairs, records


def score_files(
    gt_json: str | os.PathLike[str],
    gt_dir: str | os.PathLike[str],
    pred_json: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    workers: int | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """panopticapi's ``pq_compute`` result, computed streaming (on every available core unless ``workers``
    says otherwise); see :func:`panbench.pq.sums.summarize`.
    ``strict`` refuses ground-truth PNG ids that segments_info does not list (panopticapi scores them)."""
    scorer = functools.partial(plain_scorer, strict=strict)
    return score_stream(gt_json, gt_dir, pred_json, pred_dir, workers, scorer)[0].evaluate()


def json_ready(res: dict[str, Any]) -> dict[str, Any]:
    """``res`` for ``score --json``: a category absent from both ground truth and predictions (no TP, FP or FN)
    has PQ, SQ and RQ ``null``, not 0.0 (undefined, as the table's '-'; the averages leave it out), so that the
    mean of the JSON's per-class PQ over the non-null entries is the PQ printed beside it."""
    if "per_class" not in res:
        return res
    return {**res, "per_class": {cid: {**v, "PQ": None, "SQ": None, "RQ": None}
                                 if v.get("TP", 0) + v.get("FP", 0) + v.get("FN", 0) == 0 else v
                                 for cid, v in res["per_class"].items()}}


def unlisted_note(res: dict[str, Any]) -> str | None:
    """The line that says how many ground-truth pixels (of how many images) carry an id that segments_info
    does not list (None when none do): panopticapi scores them, neither matched nor VOID."""
    u = res.get("unlisted_gt") or {}
    if not u.get("pixels"):
        return None
    return (f"note: {u['pixels']} ground-truth pixels of {u['images']} image(s) have a PNG id that segments_info "
            "does not list; scored as panopticapi scores them (neither matched nor VOID); --strict refuses them")
