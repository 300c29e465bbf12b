"""Why is my PQ low?  The format mistakes that score a good model near zero, found from what scoring keeps: each
rule a pure function returning a :class:`Finding` or None, silent unless it can explain a low number
(docs/pq-evaluator.md, "Why is my PQ low?", states each rule and its thresholds, the constants below).  A finding's
fix (``remap``, ``images``, ``files``, ``decode``) is what ``score`` applies to give ``pq_if_fixed``."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats, group_average

MIN_MAPPED_IMAGES = 2  # images the confusion must sum (one image's mislabelled regions are no class order)
MIN_MOVED = 3  # predicted categories that must map elsewhere
FOLLOW_SHARE = 0.8  # share of the pixels (both sides a category) the mapping must explain
MOVED_SHARE = 0.5  # share of those pixels the moved categories must hold
LOW_GROUP_PQ = 0.1  # a group (things or stuff) is looked at alone when its PQ is below this (near zero)
GROUP_SHARE = 0.9  # a group alone: share of its mapped rows' and columns' pixels the mapping must explain
ENCODING_IMAGES = 64  # prediction PNGs an id encoding is judged over (all of them when fewer)
RESIZE_IDS = 3  # unlisted ids a resized map has at least (fewer: segments left out of segments_info)
RESIZE_SHARE = 0.5  # share of the unlisted pixels that must be blends of their neighbours (resized: 0.87-1.0)
RESIZE_SLACK = 0.25  # a blend's overshoot past its neighbours (bicubic's ringing), a share of their difference
RESIZE_PIXELS = 1 << 16  # unlisted pixels a resize is judged on (spread evenly over the map), at most
LOSSY_PIXELS = 0.5  # share of the non-VOID pixels a lossy codec or a palette leaves unlisted, at least (JPEG: 89-100%)
LOSSY_IDS = 64  # unlisted ids a lossy codec leaves at least (JPEG, WebP: thousands)
LOSSY_LEVELS = 8  # levels per RGB channel by which a lossy codec moves most pixels' colour (JPEG quality 15-95, WebP)
LOSSY_SHARE = 0.6  # share of the unlisted pixels looked at that must lie that near a listed colour (JPEG: 0.71-0.98)
WEB_STEP = 51  # the web palette's step (its levels 0, 51, ..., 255): PIL's Image.convert('P'), dithered or not
PALETTE_LEVELS = 64  # levels per RGB channel by which the web palette moves a colour, at most (its step, dithered)
PALETTE_KEPT = 0.5  # share of the listed ids a map snapped to the web palette holds, below
LOSSY_WORK = 1 << 24  # colour comparisons (looked-at colours x listed ids) the lossy check makes, at most


class DiagnosisWarning(UserWarning):
    """What the Python API's ``compute()`` and ``pq_compute`` warn with when they find a format mistake: once per
    call, on every call (:func:`warn_findings`)."""


@dataclass(frozen=True)
class Finding:
    """One diagnosed mistake: ``kind``, ``message`` (what is wrong and the fix, one line) and ``pq_if_fixed`` (the
    PQ of the prediction with the fix applied where the caller scored it, else None).  The fix, not serialized:
    ``remap`` (predicted category id -> its replacement), ``images`` (prediction file_name -> its new image_id),
    ``files`` (image_id -> the ground truth's file_name) or ``decode`` (the PNGs' id encoding: ``mmdet``,
    ``detectron2``, or ``shift:D``, every id D more than its segments_info's)."""

    kind: str
    message: str
    pq_if_fixed: float | None = None
    remap: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    images: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    files: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    decode: str | None = field(default=None, compare=False, repr=False)

    @property
    def fixable(self) -> bool:
        """Whether the finding carries a fix that can be applied and scored."""
        return bool(self.remap or self.images or self.files or self.decode)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "pq_if_fixed": self.pq_if_fixed}


def diagnose(stats: PQStats, table: CategoryTable) -> list[Finding]:
    """The findings an accepted input's sums show, without ``pq_if_fixed`` (scoring the fix needs the files).  The
    groups' PQ (0-1; things True, stuff False) as panopticapi averages it; a group without a category: 1.0."""
    thing = np.asarray(table.isthing, bool)
    groups = {}
    for kind in (True, False):
        pq, _, _, n = group_average(stats.iou_sum, stats.tp, stats.fp, stats.fn, thing == kind, scale=1.0)
        groups[kind] = float(pq) if n else 1.0
    found = category_mapping(stats.conf, table, stats.n_images, groups)
    return [found] if found else []


def category_mapping(conf: np.ndarray, table: CategoryTable, n_images: int,
                     groups: Mapping[bool, float] | None = None) -> Finding | None:
    """The ``category_mapping`` (or ``category_index``) finding of a confusion matrix (``PQStats.conf``: rows ground
    truth, columns prediction, VOID last) summed over ``n_images``, or None.  ``groups``: each group's PQ, looked at
    alone when below :data:`LOW_GROUP_PQ` (without ``groups``: neither is)."""
    if n_images < MIN_MAPPED_IMAGES:
        return None
    c = np.asarray(conf, np.int64)
    thing = np.asarray(table.isthing, bool)
    for g, group in ((np.arange(len(table)), None), (np.flatnonzero(thing), "thing"),
                     (np.flatnonzero(~thing), "stuff")):
        if group is not None and (groups is None or groups.get(group == "thing", 1.0) >= LOW_GROUP_PQ):
            continue
        if (found := _mapped(c[np.ix_(g, g)], c[:, g], table, g, group)) is not None:
            return found
    return None


def _lead(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each predicted column of ``k`` (ground-truth rows) that has pixels mapped to the row it covers most, one
    column per row (the one covering it most; the others are left out): (columns, rows, pixels)."""
    seen = np.flatnonzero(k.sum(axis=0))
    if not len(seen):
        return seen, seen, seen
    to = k[:, seen].argmax(axis=0)
    follow = k[to, seen]
    # one predicted category per ground-truth one: the one that covers it most (others, e.g. a category seen
    # only where a model mislabelled, keep their ids and count as not following)
    order = np.lexsort((-follow, to))
    lead = order[np.r_[True, to[order][1:] != to[order][:-1]]]
    return seen[lead], to[lead], follow[lead]


def _mapped(k: np.ndarray, columns: np.ndarray, table: CategoryTable, idx: np.ndarray,
            group: str | None) -> Finding | None:
    """The mapping rule on ``k`` (the categories ``idx`` of ``table`` on both sides); ``columns``: every pixel of
    those predicted categories (VOID and the other group's ground truth included), for the unplaced ones."""
    total = int(k.sum())
    seen, to, follow = _lead(k)
    if total == 0 or len(seen) < MIN_MOVED:
        return None
    moved = to != seen
    if moved.sum() < MIN_MOVED or follow.sum() < FOLLOW_SHARE * total or follow[moved].sum() < MOVED_SHARE * total:
        return None
    if group is not None and follow.sum() < GROUP_SHARE * (k[to].sum() + k[:, seen].sum() - follow.sum()):
        return None  # the masks do not match: the mapped categories' pixels spread over others
    ids = np.asarray(table.ids, np.int64)[idx]
    unplaced = len(np.setdiff1d(np.flatnonzero(columns.sum(axis=0)), seen))
    return _named(ids[seen], ids[to], follow, table, unplaced, group)


def _rules(table: CategoryTable) -> list[tuple[str, str, dict[int, int]]]:
    """The index rules a prediction's category ids may follow: (what the ids are, the fix, predicted id -> category
    id), the category list's order first, then the ids in ascending order (where that order differs)."""
    ids, asc = list(table.ids), sorted(table.ids)
    orders = [(ids, "the ground truth's category list", "categories[{}]['id']")]
    if asc != ids:
        orders.append((asc, "the ground truth's category ids in ascending order",
                       "sorted(c['id'] for c in categories)[{}]"))
    return [(f"{base}-based indexes of {name}", f"write {pick.format('i - 1' if base else 'i')} for index i",
             {k + base: cid for k, cid in enumerate(order)}) for order, name, pick in orders for base in (0, 1)]


def _named(pred_ids: np.ndarray, gt_ids: np.ndarray, weight: np.ndarray, table: CategoryTable, unplaced: int,
           group: str | None = None) -> Finding:
    """The finding of a mapping from ``pred_ids`` to ``gt_ids`` (what the masks show): the simplest rule all of it
    follows (:func:`_rules`, then a constant offset) and its fix.  Another class order places only what the masks
    show: with ``unplaced`` predicted categories left over its fix has no ``remap``.  ``group``: thing or stuff."""
    pairs = dict(zip(pred_ids.tolist(), gt_ids.tolist(), strict=True))
    moved = np.flatnonzero(pred_ids != gt_ids)
    k = moved[np.argmax(weight[moved])]  # the moved category with most pixels
    gid = int(gt_ids[k])
    example = f"e.g. predicted {int(pred_ids[k])} covers '{table.names[table.index[gid]]}' (id {gid})"
    for what, fix, rule in _rules(table):
        if all(rule.get(p) == g for p, g in pairs.items()):
            return Finding("category_index", f"predicted category ids are {what} ({example}); {fix}", remap=rule)
    offsets = np.unique(pred_ids - gt_ids)
    if len(offsets) == 1:
        d = int(offsets[0])
        fix = f"subtract {d} from" if d > 0 else f"add {-d} to"
        return Finding("category_mapping", f"predicted category ids are the ground truth's {d:+d} ({example}); "
                       f"{fix} each category_id", remap={cid + d: cid for cid in table.ids})
    left = f"; {unplaced} more predicted categories cover no ground truth of their own" if unplaced else ""
    which, kinds = (f"the {group} classes' ", f"{group} categories") if group else ("", "categories")
    other = {"thing": "; the stuff classes are right", "stuff": "; the thing classes are right"}.get(group or "", "")
    return Finding("category_mapping", f"{which}predicted categories follow another class order: {len(moved)} "
                   f"{kinds} are consistently another ground-truth category ({example}{left}{other}); map the "
                   "model's class names to the ground truth's category ids by name (a table from the model's classes "
                   "to categories[...]['id']) instead of writing the model's label order",
                   remap={} if unplaced else pairs)


def unknown_categories(k: np.ndarray, columns: np.ndarray, table: CategoryTable,
                       pred_ids: Sequence[int]) -> Finding | None:
    """The finding of a prediction refused for unknown category ids, from its masks: ``k`` the pixels of each
    ground-truth category (rows) under each predicted id (columns: ``pred_ids``), ``columns`` every pixel of each
    predicted id.  None unless the masks map two ids or more elsewhere (:data:`FOLLOW_SHARE`, or :func:`_best_rule`)."""
    total = int(k.sum())
    seen, to, follow = _lead(k)
    if total == 0:
        return None
    if follow.sum() < FOLLOW_SHARE * total:  # a poorer model's masks: the rule of the ids that they follow most
        return _best_rule(k, table, pred_ids)
    pred = np.asarray(pred_ids, np.int64)[seen]
    gt = np.asarray(table.ids, np.int64)[to]
    if int((pred != gt).sum()) < 2:
        return None
    return _named(pred, gt, follow, table, len(np.setdiff1d(np.flatnonzero(columns.sum(axis=0)), seen)))


def _best_rule(k: np.ndarray, table: CategoryTable, pred_ids: Sequence[int]) -> Finding | None:
    """The rule (:func:`_rules`, a constant offset) that places every predicted id with pixels and explains most of
    ``k``'s pixels (at least :data:`MOVED_SHARE`), moving two ids or more; else None."""
    cols = np.flatnonzero(k.sum(axis=0))
    used = [int(pred_ids[j]) for j in cols.tolist()]
    rules = [rule for _, _, rule in _rules(table)]
    top = used[int(np.argmax(k[:, cols].sum(axis=0)))]
    for d in sorted({top - c for c in table.ids} - {0}):
        if all(p - d in table.index for p in used):
            rules.append({c + d: c for c in table.ids})
    best, share = None, 0
    for rule in rules:
        if all(p in rule for p in used):
            got = sum(int(k[table.index[rule[p]], j]) for p, j in zip(used, cols, strict=True))
            if got > share:
                best, share = rule, got
    if best is None or share < MOVED_SHARE * k.sum() or sum(best[p] != p for p in used) < 2:
        return None
    gt = np.array([best[p] for p in used], np.int64)
    return _named(np.array(used, np.int64), gt, k[:, cols].sum(axis=0), table, 0)


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


def unlisted_png_ids(png_ids: Iterable[int], listed: Iterable[int], table: CategoryTable | None = None,
                     ids: np.ndarray | None = None) -> Finding | None:
    """The finding that explains one prediction PNG's ids absent from its segments_info (``png_ids``; ``listed``:
    segments_info's ids), or None: red and blue swapped (:func:`channel_order`), an id encoding (with ``table``,
    :func:`id_encoding`), a resize or filter that blended the ids or a lossy codec or palette that changed their
    colours (with ``ids``, the PNG's id map: :func:`resized_ids`, :func:`lossy_colors`)."""
    png_ids, listed = list(png_ids), list(listed)
    return (channel_order(png_ids, listed) or (id_encoding(png_ids, listed, table) if table is not None else None)
            or (resized_ids(ids, listed) or lossy_colors(ids, listed) if ids is not None else None))


def resized_ids(ids: np.ndarray, listed: Iterable[int]) -> Finding | None:
    """The ``resized`` finding of an id map (``ids``, HxW) resized with bilinear or bicubic interpolation, or blurred
    (a Gaussian or box filter, which blends the ids as an interpolation does): at least
    :data:`RESIZE_IDS` ids absent from ``listed`` (and from VOID, 0), :data:`RESIZE_SHARE` of whose pixels (up to
    :data:`RESIZE_PIXELS` of them looked at) are blends, in the bands where one segment turns into the next: a pixel
    between two neighbours on a line through it (left and right, above and below, or a diagonal), both of another
    id, whose value lies between theirs, in each RGB channel or as a number (a map resized as numbers), within
    :data:`RESIZE_SLACK` of their difference and a level of rounding (bicubic's ringing).  Pixels of a segment left
    out of segments_info are not: inside it both neighbours are the pixel's own id, on its edge one is."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        return None
    ids = ids.astype(np.int64, copy=False)
    unlisted = ~np.isin(ids, np.append(np.fromiter(listed, np.int64), 0))
    values = ids[unlisted]
    if len(kinds := np.unique(values)) < RESIZE_IDS:
        return None
    ys, xs = np.nonzero(unlisted)
    step = -(-len(ys) // RESIZE_PIXELS)  # every step-th pixel in raster order: the cost stays that of a small map
    if _blends(ids, ys[::step], xs[::step]).mean() < RESIZE_SHARE:
        return None
    share = 100 * len(values) / ids.size
    return Finding("resized", f"the map's {len(kinds)} ids absent from segments_info ({share:.1f}% of its pixels) are "
                   "blends of the ids beside them, on the borders between its segments: it was interpolated or "
                   "blurred (resized with bilinear or bicubic interpolation, or filtered); never filter an id map, and "
                   "resize segment ids with nearest-neighbour interpolation (PIL Image.NEAREST, cv2.INTER_NEAREST, "
                   "torch interpolate mode=\"nearest\")")


def _blends(ids: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Whether each pixel (``ys``, ``xs``) of ``ids`` lies between two neighbours on a line through it, both of
    another id, in each RGB channel or as a number (:func:`resized_ids`)."""
    padded = np.pad(ids, 1, constant_values=-1)  # -1: no neighbour past the map's edge
    v = ids[ys, xs]
    out = np.zeros(len(ys), bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, b = padded[ys + 1 - dy, xs + 1 - dx], padded[ys + 1 + dy, xs + 1 + dx]
        other = (a >= 0) & (b >= 0) & (a != v) & (b != v)
        out |= other & (_between(v, a, b, _channels) | _between(v, a, b, lambda x: x[:, None]))
    return out


def _channels(v: np.ndarray) -> np.ndarray:
    """The red, green and blue levels of ids (R + 256 G + 256^2 B), on a last axis."""
    return np.stack([v & 0xFF, (v >> 8) & 0xFF, v >> 16], axis=-1)


def _between(v: np.ndarray, a: np.ndarray, b: np.ndarray, parts: Any) -> np.ndarray:
    """Whether ``v`` lies between ``a`` and ``b`` in every one of its ``parts`` (channels, or the id), widened by
    :data:`RESIZE_SLACK` of their difference and a level of rounding."""
    v, a, b = parts(v), parts(a), parts(b)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    slack = 1 + (hi - lo) * RESIZE_SLACK
    return ((v >= lo - slack) & (v <= hi + slack)).all(axis=-1)


def lossy_colors(ids: np.ndarray, listed: Iterable[int]) -> Finding | None:
    """The ``lossy`` finding of an id map (``ids``, HxW) whose colours a lossy codec (JPEG, lossy WebP) or a palette
    changed, or None.  Either leaves at least :data:`LOSSY_PIXELS` of the non-VOID pixels unlisted (the segments'
    insides, not only the borders a resize blends), in more colours than ``listed`` holds ids (a relabelled map, ids
    offset or segments_info renumbered, has one colour a segment) or in the web palette's (:data:`WEB_STEP`).
    Compressed: :data:`LOSSY_IDS` unlisted ids at least, :data:`LOSSY_SHARE` of whose pixels (those among
    :data:`RESIZE_PIXELS` spread over the map, fewer where ``listed`` is long: :data:`LOSSY_WORK`) lie within
    :data:`LOSSY_LEVELS` per RGB channel of a listed colour.  Snapped to the web palette (PIL's ``convert('P')``):
    every unlisted id its colour, :data:`LOSSY_SHARE` of their pixels within :data:`PALETTE_LEVELS` of a listed
    colour, under :data:`PALETTE_KEPT` of the listed ids left in the map.  Segments left out of segments_info, noise
    and resized maps are neither: few ids, ids far from the listed colours, or a small share of the map."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        return None
    ids = ids.astype(np.int64, copy=False)
    keys = np.unique(np.append(np.fromiter(listed, np.int64), 0))
    held, counts = np.unique(ids, return_counts=True)
    absent = ~np.isin(held, keys, assume_unique=True)
    kinds, n = held[absent], int(counts[absent].sum())
    web = len(kinds) >= 2 and bool((_channels(kinds) % WEB_STEP == 0).all())
    if (len(kinds) <= len(keys) and not web) or n < LOSSY_PIXELS * np.count_nonzero(ids):
        return None
    most = max(min(RESIZE_PIXELS, LOSSY_WORK // len(keys)), 1)  # pixels looked at, spread evenly over the map
    looked = ids.ravel()[::max(ids.size // most, 1)]
    if not len(looked := looked[~np.isin(looked, keys)]):
        return None
    near = _levels_off(looked, keys)
    kept = len(held) - len(kinds) - int(held[0] == 0), len(keys) - 1  # listed ids in the map, listed ids
    if len(kinds) >= LOSSY_IDS and (close := (near <= LOSSY_LEVELS).mean()) >= LOSSY_SHARE:
        how = f"lie within {LOSSY_LEVELS} levels per RGB channel of a listed id's colour ({100 * close:.0f}% of them)"
    elif web and kept[0] < PALETTE_KEPT * kept[1] and (near <= PALETTE_LEVELS).mean() >= LOSSY_SHARE:
        how = f"are web-palette colours near listed ids' colours, and the map holds {kept[0]} of the {kept[1]} ids " \
              "segments_info lists"
    else:
        return None
    share = 100 * n / ids.size
    return Finding("lossy", f"the map's {len(kinds)} ids absent from segments_info ({share:.1f}% of its pixels) "
                   f"{how}: the PNG's colours were changed by lossy compression or a palette (JPEG, lossy WebP, a "
                   "'P'-mode or quantised PNG); save the id map as a lossless RGB PNG (PIL: Image.fromarray(rgb, "
                   "'RGB').save('x.png'), with no quantize() or convert('P'))")


def _levels_off(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each of ``values``' distance to the nearest of ``keys`` (ids), in levels: the most by which one RGB channel
    differs (:func:`lossy_colors`)."""
    kinds, inverse = np.unique(values, return_inverse=True)
    listed = _channels(keys).astype(np.int32)
    out = np.empty(len(kinds), np.int32)
    rows = max(LOSSY_WORK // (8 * len(keys)), 1)  # colours compared at a time: LOSSY_WORK / 8 pairs in memory
    for start in range(0, len(kinds), rows):
        v = _channels(kinds[start:start + rows]).astype(np.int32)
        out[start:start + rows] = np.abs(v[:, None, :] - listed[None, :, :]).max(axis=-1).min(axis=1)
    return out[inverse]


def id_encoding(png_ids: Iterable[int], listed: Iterable[int], table: CategoryTable) -> Finding | None:
    """The ``id_encoding`` finding of one prediction PNG (:func:`encoded_ids` of that image alone)."""
    return encoded_ids([(png_ids, listed)], table)


def encoded_ids(images: Iterable[tuple[Iterable[int], Iterable[int]]], table: CategoryTable) -> Finding | None:
    """The ``id_encoding`` finding of prediction PNGs (each image's PNG ids and listed ids) whose ids absent from
    their segments_info all encode a category and an instance (detectron2's ``category_id * 1000 + instance``: two
    ids or more; mmdet's ``label + instance * 1000``, its VOID the label after the last, which a random id passes one
    time in eight: three, one of them 1000 or more)."""
    absent_set: set[int] = set()
    n_images = 0
    for png_ids, listed in images:
        listed_set = set(listed)
        absent_set.update(int(i) for i in png_ids if i and i not in listed_set)
        n_images += 1
    absent = sorted(absent_set)
    cat_ids = set(table.ids)
    if len(absent) >= 2 and all(i >= 1000 and i // 1000 in cat_ids for i in absent):
        rule, decode = "category_id * 1000 + instance (detectron2's label_divisor encoding)", "detectron2"
    elif len(absent) >= 3 and all(i % 1000 <= len(table) for i in absent) and any(i >= 1000 for i in absent):
        rule, decode = "label + instance * 1000 (mmdet's INSTANCE_OFFSET encoding of its sem_seg output)", "mmdet"
    else:
        return None
    over = f" over {n_images} images" if n_images > 1 else ""
    return Finding("id_encoding", f"the PNG's ids ({', '.join(map(str, absent[:3]))}, ...{over}) are {rule}, not "
                   "segment ids: write each segment's pixels with its segments_info id, as RGB (id = R + 256 G + "
                   "256^2 B)", decode=decode)


def unlisted_ids(images: Sequence[tuple[Iterable[int], Iterable[int], Iterable[int]]], table: CategoryTable,
                 colors: Mapping[int, int] | None = None) -> Finding | None:
    """The finding behind prediction PNGs whose ids are not their segments_info's (each image's PNG ids, listed ids
    and listed category ids): an id encoding (:func:`encoded_ids`), the categories' colours (``colors``: a colour's
    id, R + 256 G + 256^2 B, -> its category id) saved instead of the ids, every id shifted by one constant, or
    segments_info renumbered 1..n over a PNG that kept its ids."""
    if found := encoded_ids([(png, listed) for png, listed, _ in images], table):
        return found
    sides = [({int(i) for i in png} - {0}, {int(i) for i in listed}, {c for c in cats if type(c) is int})
             for png, listed, cats in images]
    bad = [side for side in sides if side[0] != side[1]]
    if not bad or not all(png and listed for png, listed, _ in bad):
        return None
    if colors and all(png == {c for c, cat in colors.items() if cat in cats} for png, _, cats in bad):
        ex = min(bad[0][0])
        return Finding("category_colors", f"the PNG holds the categories' colours (a visualisation: id {ex} is the "
                       f"colour of category {colors[ex]}), not segment ids: write each segment's pixels with its "
                       "segments_info id, as RGB (id = R + 256 G + 256^2 B), not the coloured picture")
    d = min(bad[0][0]) - min(bad[0][1])
    if d and all(png == {i + d for i in listed} for png, listed, _ in bad):
        ex = min(bad[0][1])
        return Finding("id_offset", f"the PNG's ids are segments_info's {d:+d} (id {ex + d} in the PNG for {ex}): "
                       f"write each segment's pixels with its segments_info id (or subtract {d} from the PNG's ids)",
                       decode=f"shift:{d}")
    if all(len(png) == len(listed) and listed == set(range(1, len(listed) + 1)) for png, listed, _ in bad):
        n, shown = len(bad[0][1]), ", ".join(map(str, sorted(bad[0][0])[:2]))
        return Finding("renumbered", f"segments_info's ids are 1..{n} but the PNG keeps its own ({shown}, ...): "
                       "segments_info was renumbered and the PNG was not; give each segment the id its pixels hold "
                       "in the PNG")
    return None


def overlapped_categories(gt_ids: np.ndarray, gt_segments: Sequence[Mapping[str, Any]], pred_ids: np.ndarray,
                          pred_segments: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Each predicted segment's category id and that of the ground-truth segment under most of its pixels (where
    one lies under more than half of them)."""
    gt_cat = {int(s["id"]): s.get("category_id") for s in gt_segments}
    out = []
    for s in pred_segments:
        under = gt_ids[pred_ids == s["id"]]
        if under.size == 0:
            continue
        values, counts = np.unique(under, return_counts=True)
        top = int(np.argmax(counts))
        if 2 * counts[top] > under.size and int(values[top]) in gt_cat:
            out.append((s.get("category_id"), gt_cat[int(values[top])]))
    return [(p, g) for p, g in out if type(p) is int and type(g) is int]


def category_offset(images: Sequence[tuple[Any, list[tuple[int, int]]]], n_images: int) -> Finding | None:
    """The ``category_offset`` finding of images (each its id and :func:`overlapped_categories`) whose predicted
    category ids are all the ground truth's moved by one constant, unlike the other images of ``n_images``."""
    shifts = set()
    for _, cats in images:
        moved = {p - g for p, g in cats}
        if len(cats) < 2 or len(moved) != 1 or 0 in moved:
            return None
        shifts |= moved
    if len(shifts) != 1:
        return None
    d, (first, cats) = shifts.pop(), images[0]
    which = f"image {first}" + (f" and {len(images) - 1} more" if len(images) > 1 else "")
    (p, g), others = cats[0], n_images - len(images)
    return Finding("category_offset", f"the predicted category ids of {which} are the ground truth's {d:+d} ({p} "
                   f"where the ground truth has {g}), unlike the other {others} image{'s' * (others != 1)}: "
                   f"subtract {d} from those images' category ids")


def decoded(ids: np.ndarray, how: str, table: CategoryTable) -> tuple[np.ndarray, list[dict[str, int]]]:
    """An id map in an id encoding (``how``: ``mmdet``, ``detectron2``; :func:`encoded_ids`) as segment ids 1..n
    with its segments_info: one segment per encoded id, its category decoded (ids of no category: VOID)."""
    values, inverse = np.unique(ids, return_inverse=True)
    seg = np.zeros(len(values), np.uint32)
    segments: list[dict[str, int]] = []
    for k, v in enumerate(values.tolist()):
        if v == 0:
            continue
        if how == "mmdet":
            cid = table.ids[v % 1000] if v % 1000 < len(table) else None
        else:
            cid = v // 1000 if v // 1000 in table.index else None
        if cid is not None:
            segments.append({"id": len(segments) + 1, "category_id": cid, "iscrowd": 0})
            seg[k] = len(segments)
    return seg[inverse.reshape(ids.shape)], segments


def _stem(file_name: Any) -> str:
    return os.path.splitext(os.path.basename(str(file_name)))[0]


def image_pairing(gt: Mapping[Any, Mapping[str, Any]],
                  pred: Mapping[Any, Mapping[str, Any]] | Iterable[Any]) -> Finding | None:
    """The ``image_ids`` finding of predictions of ground-truth images whose ``file_name`` is another ground-truth
    image's file (without folder and extension), or None; ``gt``, ``pred``: the annotations by image id (``pred`` also
    the raw list).  It carries both fixes, which :func:`pairing_fixes` splits; its message names neither."""
    if isinstance(pred, Mapping):
        preds = list(pred.items())
    else:  # the raw list: annotations of an unusable image id or file name are named by the format's checks
        preds = [(a["image_id"], a) for a in pred if isinstance(a, dict) and type(a.get("image_id")) in (int, str)
                 and type(a.get("file_name")) is str]
    if all(ann.get("file_name") == gt[i].get("file_name") for i, ann in preds if i in gt):
        return None  # the usual case, one look-up a prediction: each scored prediction names its image's file
    by_stem: dict[str, Any] = {}
    for image_id, ann in gt.items():
        by_stem.setdefault(_stem(ann.get("file_name", "")), image_id)
    wrong, pairing, files = [], {}, {}
    for image_id, ann in preds:
        other = by_stem.get(_stem(ann.get("file_name", "")))
        if other is not None and other != image_id and str(other) != str(image_id):  # "1" for 1: the id's type
            pairing[ann["file_name"]] = other  # every prediction re-paired, the ones of no ground-truth image too
            if image_id in gt:  # scored with another image's ground truth (else: a prediction left out)
                wrong.append((image_id, ann["file_name"], other))
                files[image_id] = gt[image_id].get("file_name")
    if not wrong:
        return None
    image_id, name, other = wrong[0]
    scored = sum(1 for i, _ in preds if i in gt)
    more = f" ({len(wrong)} of the {scored} predictions name another image's file)" if len(wrong) > 1 else ""
    return Finding("image_ids", f"the prediction for image {image_id} names file {name}, which is image {other}"
                   f"{more}; pair each prediction's image_id and file_name as the ground-truth JSON does",
                   images=pairing, files=files)


def pairing_fixes(finding: Finding) -> list[Finding]:
    """The two fixes of an ``image_ids`` finding, each a finding of its own to score: the image ids re-paired with
    their files (``images``) and the file names re-paired with their image ids (``files``)."""
    head = finding.message.split("; ", 1)[0]
    return [Finding("image_ids", f"{head}; write each prediction's image_id as the ground-truth JSON pairs it with its "
                    "file_name (the ids are shifted or taken from another list)", images=finding.images),
            Finding("image_ids", f"{head}; write each prediction's file_name as the ground truth's file of its "
                    "image_id (the file names are shifted or taken from another list)", files=finding.files)]


def pairing_unfixed(finding: Finding) -> Finding:
    """An ``image_ids`` finding neither of whose fixes (:func:`pairing_fixes`) is accepted: no fix given."""
    head = finding.message.split("; ", 1)[0]
    return Finding("image_ids", f"{head}; neither re-pairing the image_ids with the file names nor the file names "
                   "with the image_ids gives a prediction that scores: write each prediction's image_id, file_name, "
                   "PNG and segments_info for one image")


def with_pq(message: str, pq: float | None) -> str:
    """A finding's one line with the PQ its fix gives (none when it could not be scored)."""
    return message if pq is None else f"{message} (this prediction gives PQ {pq:.2f} once fixed)"


def findings_text(findings: Sequence[Finding]) -> str:
    """The findings on one line, as the warning and the integrations' logs give them."""
    return "panbench: " + " | ".join(f"{f.kind}: {with_pq(f.message, f.pq_if_fixed)}" for f in findings)


def warn_findings(findings: Sequence[Finding], stacklevel: int = 2) -> None:
    """One :class:`DiagnosisWarning` naming every finding, attributed to the caller ``stacklevel`` frames up, shown
    on every call: issued without the module's registry, through the user's filters (docs/pq-evaluator.md)."""
    if not findings:
        return
    text = findings_text(findings)
    try:
        frame = sys._getframe(stacklevel)
    except ValueError:  # pragma: no cover - called from the top of the stack
        warnings.warn(text, DiagnosisWarning, stacklevel=2)
        return
    where = (DiagnosisWarning(text), DiagnosisWarning, frame.f_code.co_filename, frame.f_lineno)
    try:
        warnings.warn_explicit(*where, module=frame.f_globals.get("__name__"), registry=None,
                               module_globals=frame.f_globals)
    except ImportError:  # code that is no file (python -c, stdin): its loader has no source to show
        warnings.warn_explicit(*where, module=frame.f_globals.get("__name__"), registry=None)


def input_size(pred_hw: tuple[int, int], image_hw: tuple[int, int]) -> Finding | None:
    """The ``input_size`` finding of a prediction the size of its image transposed, scaled (the network's input
    size: the aspect ratio kept within a pixel) or padded to a multiple of 32."""
    (ph, pw), (h, w) = pred_hw, image_hw
    if (ph, pw) == (w, h) and h != w:
        return Finding("input_size", f"the prediction ({pw}x{ph}) has the image's height and width swapped (the map "
                       f"transposed): write its transpose (ids.T), {w}x{h} as the image")
    if (ph, pw) == (-(-h // 32) * 32, -(-w // 32) * 32):
        return Finding("input_size", f"the prediction ({pw}x{ph}) is the image padded to a multiple of 32 (the "
                       f"network's batch padding): crop it to the image's {w}x{h} (top left) before writing it")
    scale = ph / h
    if scale != 1 and abs(pw - w * scale) <= 1 and abs(ph / pw - h / w) * w <= 2:
        return Finding("input_size", f"the prediction ({pw}x{ph}) is the image scaled by {scale:.3g} (the network's "
                       f"input size): resize it back to {w}x{h} with nearest-neighbour interpolation before writing "
                       "it (mmdet: predict with rescale=True)")
    return None
