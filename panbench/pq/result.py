"""One image's scored result (:class:`ImageResult`, what :func:`panbench.pq.evaluator.score_pair` gives), and the
one columnar form of many images' results: every field of many images concatenated (dtype by
:func:`~panbench.pq.matching.column_dtype`) plus, per group of fields (the part of the name before its first ``_``:
``tp``, ``fn``, ``fp``, ``gt``, ``sem``, ``unlisted``), the image of each row (``<group>_img``): the accumulator's,
the resume cache's, ``score``'s results' and the analyses' ``.npz`` files' (docs/architecture.md, "columns")."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panbench.pq.matching import MATCH_FIELDS, ImageMatch, ImageStats, column_dtype, empty_column


@dataclass
class ImageResult:
    """One image scored (module docstring); 1-D arrays, small."""

    match: ImageMatch
    sem_gt: np.ndarray = field(default_factory=empty_column)  # semantic confusion: ground-truth category, -1 VOID
    sem_pred: np.ndarray = field(default_factory=empty_column)  # predicted category, -1 VOID
    sem_px: np.ndarray = field(default_factory=empty_column)  # pixels of each (sem_gt, sem_pred)
    unlisted_px: np.ndarray = field(default_factory=empty_column)  # [pixels] whose gt id segments_info lacks, or empty
    boundary: ImageStats | None = None  # boundary-PQ contributions (TP/FN/FP), with boundary PQ on

    @property
    def stats(self) -> ImageStats:
        """The PQ contributions that :class:`~panbench.pq.sums.PQStats` adds up."""
        m = self.match
        return ImageStats(m.tp_cats, m.tp_ious, m.fn_cats, m.fp_cats, self.sem_gt, self.sem_pred, self.sem_px,
                          self.unlisted_px)


SEMANTIC_FIELDS = ("sem_gt", "sem_pred", "sem_px", "unlisted_px")
BOUNDARY_FIELDS = ("tp_cats", "tp_ious", "fn_cats", "fp_cats")
BOUNDARY_PREFIX = "b_"
_SUMMED = ("sem", "unlisted")  # the groups of SEMANTIC_FIELDS: summed as images enter, never kept per image


def _group(name: str) -> str:
    return name.split("_", 1)[0]


def to_columns(items: Sequence[Any], names: Sequence[str], prefix: str = "") -> dict[str, np.ndarray]:
    """The fields ``names`` of ``items`` (one per image) as columns (module docstring), keys ``prefix + name``."""
    cols: dict[str, np.ndarray] = {}
    for name in names:
        dtype = column_dtype(name)
        parts = [getattr(it, name) for it in items]
        cols[prefix + name] = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
    for g in dict.fromkeys(_group(n) for n in names):
        first = next(n for n in names if _group(n) == g)
        lens = np.array([len(getattr(it, first)) for it in items], np.int64)
        cols[prefix + g + "_img"] = np.repeat(np.arange(len(items), dtype=np.int64), lens)
    return cols


def column_keys(names: Sequence[str], prefix: str = "") -> list[str]:
    """The keys :func:`to_columns` gives for the fields ``names``: each field, then each group's ``<group>_img``."""
    return [prefix + n for n in names] + [prefix + g + "_img" for g in dict.fromkeys(_group(n) for n in names)]


def from_columns(cols: Any, names: Sequence[str], n_images: int, prefix: str = "") -> list[dict[str, np.ndarray]]:
    """:func:`to_columns` inverted: per image, its fields by name (``cols``: a dict or an ``np.load`` file)."""
    if n_images == 0:
        return []
    cuts = {g: np.searchsorted(cols[prefix + g + "_img"], np.arange(1, n_images))
            for g in dict.fromkeys(_group(n) for n in names)}
    split: dict[str, list[np.ndarray]] = {
        name: np.split(np.asarray(cols[prefix + name], column_dtype(name)), cuts[_group(name)]) for name in names}
    return [{name: split[name][k] for name in names} for k in range(n_images)]


def join_columns(parts: Sequence[tuple[int, MutableMapping[str, np.ndarray]]],
                 consume: bool = False) -> dict[str, np.ndarray]:
    """Columns of consecutive runs of images, each ``(images, columns)``, as :func:`to_columns` gives them for all
    the images at once; with ``consume`` each part's column is taken from its dict once joined (the parts' and the
    whole's memory are held together for one column at a time), and put back as it was where the join raises (a
    MemoryError in a large run leaves the parts whole)."""
    if len(parts) == 1:
        return dict(parts[0][1])
    out: dict[str, np.ndarray] = {}
    rows: dict[str, list[int]] = {}  # each joined column's length in each part
    key: str | None = None
    pieces: list[np.ndarray] = []
    try:
        for key in list(parts[0][1]) if parts else ():
            pieces, before = [], 0
            for n, cols in parts:
                pieces.append(cols[key] + before if key.endswith("_img") and before else cols[key])
                if consume:
                    del cols[key]
                before += n
            out[key] = np.concatenate(pieces)
            rows[key], pieces = [len(p) for p in pieces], []
    except BaseException:
        if consume:
            for k, whole in out.items():
                _cut(parts, k, np.split(whole, np.cumsum(rows[k])[:-1]))
            if key is not None and key not in out:
                _cut(parts, key, pieces)  # the column being joined: the parts taken so far
        raise
    return out


def _cut(parts: Sequence[tuple[int, MutableMapping[str, np.ndarray]]], key: str, pieces: Sequence[np.ndarray]) -> None:
    """Each piece back into its part as ``key``, an image column's offset taken off in place (nothing allocated)."""
    before = 0
    for (n, cols), piece in zip(parts, pieces):
        if key.endswith("_img") and before:
            piece -= before
        cols[key] = piece
        before += n


def kept_columns(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Of whole results' columns, those an accumulator keeps per image: the match's and the boundary contributions'
    (the semantic ones are summed into the confusion matrix as the images enter, and only it is read); a view is
    copied, so that the buffer it was cut from is not kept for it."""
    return {k: v.copy() if v.base is not None else v for k, v in cols.items() if _group(k) not in _SUMMED}


def results_to_columns(results: Sequence[ImageResult]) -> dict[str, np.ndarray]:
    """Whole results as columns: the match's, the semantic ones and, when every image has them, the boundary
    contributions' (prefixed ``b_``)."""
    cols = {**to_columns([r.match for r in results], MATCH_FIELDS), **to_columns(results, SEMANTIC_FIELDS)}
    bounds = [r.boundary for r in results]
    if bounds and all(b is not None for b in bounds):
        cols.update(to_columns(bounds, BOUNDARY_FIELDS, BOUNDARY_PREFIX))
    return cols


def column_groups(cols: Mapping[str, np.ndarray]) -> dict[str, str | None]:
    """Each field of ``cols`` -> its group: the longest ``<group>`` of an image column that prefixes it (``b_tp``
    for ``b_tp_cats``), None for a field without one."""
    groups = [k[: -len("_img")] for k in cols if k.endswith("_img")]
    return {k: max((g for g in groups if k.startswith(g + "_")), key=len, default=None)
            for k in cols if not k.endswith("_img")}


def reorder_columns(cols: Mapping[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of some images in a new order: image ``k`` of the result is image ``order[k]`` of ``cols`` (rows
    kept in order within their image); images that ``order`` does not name are left out."""
    order = np.asarray(order, np.int64)
    if len(order) and (int(order.min()) < 0 or len(np.unique(order)) != len(order)):
        raise ValueError("reorder_columns: the order names each image once, by its position (>= 0)")
    groups = [k[: -len("_img")] for k in cols if k.endswith("_img")]
    n = max([int(cols[g + "_img"].max()) + 1 for g in groups if len(cols[g + "_img"])]
            + [int(order.max(initial=-1)) + 1])
    rank = np.full(n, -1, np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    owner = column_groups(cols)
    out: dict[str, np.ndarray] = {}
    for g in groups:
        img = rank[cols[g + "_img"]]
        kept = np.flatnonzero(img >= 0)
        perm = kept[np.argsort(img[kept], kind="stable")]
        out[g + "_img"] = img[perm]
        out.update((k, np.asarray(cols[k])[perm]) for k, h in owner.items() if h == g)
    if len(out) != len(cols):
        raise ValueError(f"columns without their group's image column: {sorted(set(cols) - set(out))}")
    return {k: out[k] for k in cols}
