"""The one state of a panoptic evaluation, :class:`PanopticAccumulator`: the per-category integer sums
(:class:`~panbench.pq.sums.PQStats`, the semantic confusion added to them as each image enters) and, with
``keep_images``, each image's match (and boundary PQ's) columns of :mod:`panbench.pq.result` (``kept_columns``: what the
analyses read), keyed by the image's position (its dataset index for ``eval``, the order of ``update`` calls for the
Python API); images enter one way, :meth:`~PanopticAccumulator.add`, and states combine one way,
:meth:`~PanopticAccumulator.merge` (docs/pq-evaluator.md, "What it computes"). With ``rules``, the sums under other
rules' quirk states too (:class:`~panbench.pq.quirks.RuleStates`), which ``score``'s scoring counts from the tables it
counts (``rule_states``).  numpy only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from panbench.errors import PanbenchError
from panbench.pq.diagnosis import Finding, diagnose
from panbench.pq.matching import CategoryTable
from panbench.pq.quirks import RuleStates
from panbench.pq.result import (
    BOUNDARY_PREFIX,
    ImageResult,
    join_columns,
    kept_columns,
    reorder_columns,
    results_to_columns,
)
from panbench.pq.sums import PQStats, pq_summary

_CHUNK = 256  # kept results turned into columns this many images at a time


class PanopticAccumulator:
    """PQ sums and, with ``keep_images``, the per-image results as columns (module docstring); with ``boundary`` the
    results carry boundary-PQ contributions; ``rules`` (rule names, :data:`panbench.pq.rule_names.RULES`): the sums
    under their quirk states are kept in ``rule_states`` (what the scoring counts from each image's table)."""

    def __init__(self, categories: CategoryTable, keep_images: bool = False, boundary: bool = False,
                 rules: Sequence[str] = ()) -> None:
        self.categories, self.keep_images, self.boundary, self.rules = categories, keep_images, boundary, tuple(rules)
        self.reset()

    def reset(self) -> None:
        """Forget every image."""
        self._stats = PQStats.zeros(len(self.categories))
        self._pending: list[tuple[int, ImageResult]] = []  # kept results not yet in columns
        self._chunks: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []  # (positions, their columns)
        self.rule_states = RuleStates(self.categories, self.rules)

    @property
    def stats(self) -> PQStats:
        """The per-category sums so far (read them; change them through the methods)."""
        return self._stats

    @property
    def n_images(self) -> int:
        return self._stats.n_images

    def add(self, images: ImageResult | Sequence[ImageResult] | Mapping[str, np.ndarray],
            at: int | np.ndarray | None = None) -> None:
        """Add scored images, the one way in: one :class:`~panbench.pq.result.ImageResult` at position ``at``
        (default: after the images kept so far), a sequence of them (after the images kept so far, the sums added at
        once), or many as columns (:mod:`panbench.pq.result`) with ``at`` their positions, one per image (their
        ``<group>_img`` counted from 0 in that order).  Bad input raises before anything changes."""
        if isinstance(images, ImageResult):
            self._add_one(images, at)
        elif isinstance(images, Mapping):
            if at is None or np.ndim(at) != 1:
                raise PanbenchError("internal: columns added without their positions; please report")
            self._add_columns(np.asarray(at, np.int64), images)
        elif self.keep_images:
            first = self.n_kept()
            self._add_columns(np.arange(first, first + len(images), dtype=np.int64), results_to_columns(images))
        else:
            part = PQStats.zeros(len(self.categories))
            part.add_images([r.stats for r in images])  # first: a bad result raises before anything changes
            self._stats = self._stats + part

    def _add_one(self, result: ImageResult, index: int | np.ndarray | None) -> None:
        n = len(self.categories)
        m = result.match
        if any(len(c) and (int(c.min()) < 0 or int(c.max()) >= n) for c in (m.tp_cats, m.fn_cats, m.fp_cats)):
            raise PanbenchError(f"internal: an image result of other categories added to an accumulator of {n}; "
                                "please report")  # checked first: the sums are added in place
        self._stats.add_image(result.stats)
        if self.keep_images:
            self._pending.append((self.n_kept() if index is None else int(index), result))
            if len(self._pending) >= _CHUNK:
                self._flush()

    def _add_columns(self, indices: np.ndarray, cols: Mapping[str, np.ndarray]) -> None:
        part = PQStats.zeros(len(self.categories))
        part.add_columns(cols, len(indices))  # first: bad columns raise before anything changes
        self._stats = self._stats + part
        if self.keep_images and len(indices):
            self._flush()
            self._chunks.append((indices, kept_columns(cols)))

    def merge(self, other: PanopticAccumulator | PQStats, offset: int = 0) -> None:
        """Add another accumulator's images (disjoint from these), their positions moved on by ``offset``, or sums
        made elsewhere without their images' results (:class:`~panbench.pq.sums.PQStats`: refused when results are
        kept): the one way to combine states. The other's sums under the rules' states are added where this one
        counts rules (one that counts none takes PQ's part alone)."""
        if isinstance(other, PQStats):
            if self.keep_images and other.n_images:
                raise PanbenchError("internal: sums without their per-image results added to an accumulator that "
                                    "keeps them; please report")
            self._stats = self._stats + other
            return
        if other is self or other.categories.ids != self.categories.ids or \
                (self.keep_images and other.boundary != self.boundary):
            raise PanbenchError("internal: an accumulator merged with itself, or with one of other categories or "
                                "other results; please report")
        if self.keep_images and other.n_kept() != other.n_images:
            raise PanbenchError("internal: an accumulator without per-image results merged into one that keeps "
                                "them; please report")
        if self.rule_states.rules:
            self.rule_states.merge(other.rule_states)
        if self.keep_images:
            self._flush()
            self._chunks.extend((idx + offset, dict(cols)) for idx, cols in other._parts())  # joined here
        self._stats = self._stats + other._stats

    def n_kept(self) -> int:
        """How many images' results are kept."""
        return len(self._pending) + sum(len(idx) for idx, _ in self._chunks)

    def _flush(self) -> None:
        if self._pending:
            self._pending.sort(key=lambda p: p[0])
            idx = np.array([i for i, _ in self._pending], np.int64)
            self._chunks.append((idx, kept_columns(results_to_columns([r for _, r in self._pending]))))
            self._pending = []

    def _parts(self) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        self._flush()
        return self._chunks

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The kept images' positions, ascending, and their match (and boundary PQ's) columns in that order."""
        if not (parts := self._parts()):
            return np.zeros(0, np.int64), kept_columns(results_to_columns([]))
        idx = np.concatenate([i for i, _ in parts])
        cols = join_columns([(len(i), c) for i, c in parts], consume=True)  # the chunks' dicts are this object's
        if len(parts) > 1:
            self._chunks = [(idx, cols)]  # joined once (handed out as copies of the dict: read, never changed)
        if len(idx) > 1 and not (idx[1:] > idx[:-1]).all():
            order = np.argsort(idx, kind="stable")
            if (idx[order][1:] == idx[order][:-1]).any():
                raise PanbenchError("internal: an image was added twice to one accumulator; please report")
            idx, cols = idx[order], reorder_columns(cols, order)
            self._chunks = [(idx, cols)]
        return idx, dict(cols)

    def dense_columns(self, n_images: int) -> dict[str, np.ndarray]:
        """:meth:`columns` of images at positions ``0 .. n_images - 1``, each once (the whole of a run)."""
        idx, cols = self.columns()
        if len(idx) != n_images or (n_images and (idx[0] != 0 or idx[-1] != n_images - 1)):
            if not (missing := sorted(set(range(n_images)) - set(idx.tolist()))):
                raise PanbenchError(f"internal: per-image results at positions beyond {n_images} images (first: "
                                    f"{int(idx[idx >= n_images][0])}); please report")
            raise PanbenchError(f"internal: no per-image result for {len(missing)} of {n_images} images "
                                f"(first: index {missing[0]}); please report")
        return cols

    def boundary_stats(self, n_images: int) -> PQStats | None:
        """The boundary-PQ sums of images ``0 .. n_images - 1`` (None without boundary PQ)."""
        if not self.boundary:
            return None
        cols = self.dense_columns(n_images)
        if BOUNDARY_PREFIX + "tp_cats" not in cols:
            raise PanbenchError("internal: an image has no boundary-PQ contributions; please report")
        stats = PQStats.zeros(len(self.categories))
        stats.add_columns(cols, n_images, BOUNDARY_PREFIX)
        return stats

    def evaluate(self) -> dict[str, Any]:
        """:func:`~panbench.pq.sums.pq_summary` and ``unlisted_gt`` (ground-truth pixels whose id segments_info does
        not list, and their images)."""
        return {**pq_summary(self._stats, self.categories.ids, self.categories.isthing),
                "unlisted_gt": {"pixels": int(self._stats.unlisted[0]), "images": int(self._stats.unlisted[1])}}

    def diagnosis(self) -> list[Finding]:
        """The format mistakes the sums show (:func:`panbench.pq.diagnosis.diagnose`)."""
        return diagnose(self._stats, self.categories)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the kept results as columns (one array per field: what crosses processes and ranks)."""
        self._flush()
        return dict(self.__dict__)

