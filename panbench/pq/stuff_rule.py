"""COCO panoptic's rule for stuff: a stuff category has at most one segment per image (a model predicts one, so each
further ground-truth segment is a false negative whatever the model does).  :func:`repeated_stuff` finds the images
that break it; ``panbench data`` refuses such a dataset (:func:`stuff_rule_message`), ``panbench score`` warns
(:func:`stuff_rule_warning`).  Only numpy and :mod:`panbench.pq.coco_format`: ``score`` imports it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from panbench.pq.coco_format import GroundTruthJSON, PackedSegments


class Repeat(NamedTuple):
    """An image with ``segments`` (2 or more) segments of the stuff category ``category_id``."""

    image_id: Any
    category_id: int
    segments: int


def stuff_ids(categories: Iterable[Mapping[str, Any]]) -> list[int]:
    """The ids of the stuff categories (``isthing`` other than 1, as :class:`~panbench.pq.matching.CategoryTable`
    reads it)."""
    return sorted({c["id"] for c in categories if isinstance(c, Mapping) and type(c.get("id")) is int
                   and c.get("isthing", 0) != 1})


def repeated_stuff(annotations: list[Any], categories: Iterable[Mapping[str, Any]]) -> list[Repeat]:
    """Each (image, stuff category) with two or more segments, in the order of ``annotations`` (segments_info lists
    or :class:`PackedSegments`), then of the category ids: one numpy pass, a few milliseconds for COCO's 5000 images."""
    stuff = stuff_ids(categories)
    if not stuff or not annotations:
        return []
    stuff_set = set(stuff)
    parts: list[bytes] = []  # each image's category ids as int64 bytes
    for ann in annotations:
        segs = ann.get("segments_info") if type(ann) is dict else None
        if type(segs) is PackedSegments:  # columns of int64 ids, category ids, areas, then the crowd bytes
            parts.append(segs.fields[8 * segs.n:16 * segs.n])
        elif type(segs) is list:
            col = [c for s in segs if type(s) is dict and type(c := s.get("category_id")) is int and c in stuff_set]
            parts.append(np.array(col, np.int64).tobytes())
        else:
            parts.append(b"")
    counts = [len(p) // 8 for p in parts]
    cats = np.frombuffer(b"".join(parts), np.int64)
    if not len(cats):
        return []
    image = np.repeat(np.arange(len(annotations)), counts)
    table = np.array(stuff, np.int64)
    where = np.minimum(np.searchsorted(table, cats), len(table) - 1)
    is_stuff = table[where] == cats
    keys, seen = np.unique(image[is_stuff] * len(table) + where[is_stuff], return_counts=True)
    return [Repeat(annotations[int(key) // len(table)].get("image_id"), stuff[int(key) % len(table)], int(c))
            for key, c in zip(keys[seen > 1], seen[seen > 1])]


def _names(categories: Iterable[Mapping[str, Any]]) -> dict[Any, Any]:
    return {c["id"]: c.get("name") for c in categories if isinstance(c, Mapping) and "id" in c}


def _named(r: Repeat, names: Mapping[Any, Any]) -> str:
    name = names.get(r.category_id)
    return f"image {r.image_id} ({r.segments} segments of {r.category_id}{f' {name}' if name else ''})"


def stuff_rule_message(path: str | os.PathLike[str], repeats: list[Repeat], categories: Iterable[Mapping[str, Any]],
                       fix: str) -> str | None:
    """The line that says the annotation file ``path`` breaks the rule (None without ``repeats``): how many images,
    the first one and its category named, then ``fix``."""
    if not repeats:
        return None
    images = len({r.image_id for r in repeats})
    return (f"{path}: {images} image(s) break the COCO panoptic rule that a stuff category has at most one segment "
            f"per image (first: {_named(repeats[0], _names(categories))}); {fix}")


def stuff_rule_warning(truth: GroundTruthJSON, first: int = 3) -> str | None:
    """``panbench score``'s one-line warning when the ground truth it scored (``truth``, the document it read) breaks
    the rule (else None): how many images, the ``first`` ones named."""
    anns, cats = truth.data.get("annotations"), truth.data.get("categories")
    if type(anns) is not list or type(cats) is not list or not (repeats := repeated_stuff(anns, cats)):
        return None
    n_images, names, gt_json = len(anns), _names(cats), truth.path
    images = list(dict.fromkeys(r.image_id for r in repeats))
    shown = [_named(next(r for r in repeats if r.image_id == i), names) for i in images[:first]]
    more = ", ..." if len(images) > first else ""
    return (f"panbench: warning: {gt_json}: {len(images)} of {n_images} ground-truth images have two or more "
            f"segments of one stuff category ({', '.join(shown)}{more}); a prediction has one segment per stuff "
            "category, so each further one counts as a false negative (COCO panoptic keeps one per image)")
