"""Why is my PQ low?  The format mistakes that score a good model near zero, found from what scoring keeps.

Each rule is a pure function of what scoring already has (the semantic confusion matrix ``PQStats.conf``, the
prediction's category ids, one segment's PNG id) and returns a :class:`Finding` or None: silent unless it can explain
a low number.  The mapping rule (docs/pq-evaluator.md, "Why is my PQ low?"): each predicted category is mapped to the
ground-truth category it covers most pixels of (masks alone decide); the prediction uses another category order when

* at least :data:`MIN_MOVED` predicted categories map to a category other than their own (where several map to one,
  the one covering it most keeps it: the mapping is one-to-one) over at least :data:`MIN_MAPPED_IMAGES` images,
* the mapping explains at least :data:`FOLLOW_SHARE` of the pixels where both sides have a category, and
* the moved categories hold at least :data:`MOVED_SHARE` of those pixels.

A correct prediction maps to itself; labels drawn at random spread each predicted category over many ground-truth
ones (the mapping explains little); a model confusing two similar classes moves two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats

MIN_MAPPED_IMAGES = 2  # images the confusion must sum (one image's mislabelled regions are no class order)
MIN_MOVED = 3  # predicted categories that must map elsewhere
FOLLOW_SHARE = 0.8  # share of the pixels (both sides a category) the mapping must explain
MOVED_SHARE = 0.5  # share of those pixels the moved categories must hold


class DiagnosisWarning(UserWarning):
    """What the Python API's ``compute()`` warns with when it finds a format mistake (once per call)."""


@dataclass(frozen=True)
class Finding:
    """One diagnosed mistake: ``kind`` (a fixed word), ``message`` (what is wrong and the fix, one line) and
    ``pq_if_fixed`` (the corrected prediction's PQ where the caller can score it: ``score`` re-scores the PNGs once with
    ``remap``, each listed predicted category id to its replacement, not serialized; else None)."""

    kind: str
    message: str
    pq_if_fixed: float | None = None
    remap: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "pq_if_fixed": self.pq_if_fixed}


def diagnose(stats: PQStats, table: CategoryTable) -> list[Finding]:
    """The findings an accepted input's sums show, without ``pq_if_fixed`` (scoring the fix needs the files)."""
    found = category_mapping(stats.conf, table, stats.n_images)
    return [found] if found else []


def category_mapping(conf: np.ndarray, table: CategoryTable, n_images: int) -> Finding | None:
    """The ``category_mapping`` (or ``category_index``) finding of a confusion matrix (``PQStats.conf``: rows ground
    truth, columns prediction, VOID last) summed over ``n_images``, or None (module docstring)."""
    if n_images < MIN_MAPPED_IMAGES:
        return None
    n = len(table)
    k = np.asarray(conf, np.int64)[:n, :n]
    seen = np.flatnonzero(k.sum(axis=0))
    total = int(k.sum())
    if total == 0 or len(seen) < MIN_MOVED:
        return None
    to = k[:, seen].argmax(axis=0)  # the ground-truth category each predicted one covers most
    follow = k[to, seen]
    # one predicted category per ground-truth one: the one that covers it most (others, e.g. a category seen
    # only where a model mislabelled, keep their ids and count as not following)
    order = np.lexsort((-follow, to))
    lead = order[np.r_[True, to[order][1:] != to[order][:-1]]]
    seen, to, follow = seen[lead], to[lead], follow[lead]
    moved = to != seen
    if moved.sum() < MIN_MOVED or follow.sum() < FOLLOW_SHARE * total or follow[moved].sum() < MOVED_SHARE * total:
        return None
    ids = np.asarray(table.ids, np.int64)
    unplaced = len(np.setdiff1d(np.flatnonzero(np.asarray(conf)[:, :n].sum(axis=0)), seen))
    return _named(ids[seen], ids[to], to, follow, table, unplaced)


def _named(pred_ids: np.ndarray, gt_ids: np.ndarray, gt_index: np.ndarray, weight: np.ndarray,
           table: CategoryTable, unplaced: int) -> Finding:
    """The finding of a mapping from ``pred_ids`` to ``gt_ids``: the simplest rule all its pixels follow, with the
    line of code that fixes it.  A rule (indexes, an offset) places every category; another class order only those
    the masks show, so with ``unplaced`` predicted categories left over its fix has no ``remap``."""
    remap = dict(zip(pred_ids.tolist(), gt_ids.tolist(), strict=True))
    moved = np.flatnonzero(pred_ids != gt_ids)
    k = moved[np.argmax(weight[moved])]  # the moved category with most pixels
    gid = int(gt_ids[k])
    example = f"e.g. predicted {int(pred_ids[k])} covers '{table.names[table.index[gid]]}' (id {gid})"
    for base in (0, 1):
        if np.array_equal(pred_ids, gt_index + base):
            fix = "categories[i]['id']" if base == 0 else "categories[i - 1]['id']"
            rule = {i: table.ids[i - base] for i in range(base, len(table) + base)}
            return Finding("category_index", f"predicted category ids are {base}-based indexes of the ground truth's "
                           f"category list ({example}); write {fix} for index i", remap=rule)
    offsets = np.unique(pred_ids - gt_ids)
    if len(offsets) == 1:
        d = int(offsets[0])
        rule = {cid + d: cid for cid in table.ids}
        fix = f"subtract {d} from" if d > 0 else f"add {-d} to"
        return Finding("category_mapping", f"predicted category ids are the ground truth's {d:+d} ({example}); "
                       f"{fix} each category_id", remap=rule)
    n_moved = len(moved)
    left = f"; {unplaced} more predicted categories cover no ground truth of their own" if unplaced else ""
    return Finding("category_mapping", f"predicted categories follow another class order: {n_moved} categories "
                   f"are consistently another ground-truth category ({example}{left}); map the model's class names "
                   "to the ground truth's category ids by name (a table from the model's classes to "
                   "categories[...]['id']) instead of writing the model's label order", remap={} if unplaced else remap)


def index_ids(pred_ids: Iterable[int], table: CategoryTable) -> Finding | None:
    """The ``category_index`` finding of a prediction refused for unknown category ids, when every id it uses is an
    index of the category list (0- or 1-based: not both 0 and its length) and two or more are no category's id."""
    used = set(pred_ids)
    n = len(table)
    unknown = used - set(table.ids)
    # one unknown id is a typo or a VOID segment written as category 0, not a list of indexes
    if len(unknown) < 2 or min(used) < 0 or max(used) > n or {0, n} <= used:
        return None
    base = 1 if max(used) == n else 0 if min(used) == 0 else None
    if base is None:  # 1..n-1 fits both: name both fixes
        fix = "categories[i]['id'] for a 0-based index i (categories[i - 1]['id'] if 1-based)"
    else:
        fix = "categories[i]['id']" if base == 0 else "categories[i - 1]['id']"
        fix += f" for a {base}-based index i"
    return Finding("category_index", f"the predicted category ids ({min(used)}..{max(used)}) are indexes of the "
                   f"ground truth's category list ({n} categories), not its category ids; write {fix}")


def swap_channels(seg_id: int) -> int:
    """A PNG segment id read with red and blue swapped (an RGB array written as BGR, as OpenCV's ``imwrite`` does)."""
    return (seg_id & 0xFF) << 16 | seg_id & 0xFF00 | seg_id >> 16


def channel_order(png_ids: Iterable[int], listed: Iterable[int]) -> Finding | None:
    """The ``channel_order`` finding of a prediction PNG whose ids are absent from its segments_info as written but
    all present with the channels swapped."""
    listed_set = set(listed)
    absent = [i for i in png_ids if i and i not in listed_set]
    if not absent or any(swap_channels(i) not in listed_set for i in absent):
        return None
    return Finding("channel_order", f"the PNG's red and blue channels are swapped (id {absent[0]} read is "
                   f"{swap_channels(absent[0])} of segments_info): it was written in OpenCV's BGR order; write "
                   "cv2.imwrite(path, rgb[:, :, ::-1]) or save the RGB array with PIL")


def id_encoding(png_ids: Iterable[int], listed: Iterable[int], table: CategoryTable) -> Finding | None:
    """The ``id_encoding`` finding of a prediction PNG whose absent ids encode a category and an instance
    (detectron2's ``category_id * 1000 + instance``, mmdet's ``label + instance * 1000``): every absent id decodes to
    a category (two ids or more for detectron2's; for mmdet's, whose test a random id passes one time in eight, three,
    one of them 1000 or more: small ids are segments left out of segments_info)."""
    listed_set = set(listed)
    absent = sorted({i for i in png_ids if i and i not in listed_set})
    cat_ids = set(table.ids)
    if len(absent) >= 2 and all(i >= 1000 and i // 1000 in cat_ids for i in absent):
        rule = "category_id * 1000 + instance (detectron2's label_divisor encoding)"
    elif len(absent) >= 3 and all(i % 1000 < len(table) for i in absent) and any(i >= 1000 for i in absent):
        rule = "label + instance * 1000 (mmdet's INSTANCE_OFFSET encoding of its sem_seg output)"
    else:
        return None
    return Finding("id_encoding", f"the PNG's ids ({', '.join(map(str, absent[:3]))}, ...) are {rule}, not segment "
                   "ids: write each segment's pixels with its segments_info id, as RGB (id = R + 256 G + 256^2 B)")


def input_size(pred_hw: tuple[int, int], image_hw: tuple[int, int]) -> Finding | None:
    """The ``input_size`` finding of a prediction the size of its image scaled (the network's input size: the aspect
    ratio kept within a pixel) or padded to a multiple of 32."""
    (ph, pw), (h, w) = pred_hw, image_hw
    if (ph, pw) == (-(-h // 32) * 32, -(-w // 32) * 32):
        return Finding("input_size", f"the prediction ({pw}x{ph}) is the image padded to a multiple of 32 (the "
                       f"network's batch padding): crop it to the image's {w}x{h} (top left) before writing it")
    scale = ph / h
    if scale != 1 and abs(pw - w * scale) <= 1 and abs(ph / pw - h / w) * w <= 2:
        return Finding("input_size", f"the prediction ({pw}x{ph}) is the image scaled by {scale:.3g} (the network's "
                       f"input size): resize it back to {w}x{h} with nearest-neighbour interpolation before writing "
                       "it (mmdet: predict with rescale=True)")
    return None
