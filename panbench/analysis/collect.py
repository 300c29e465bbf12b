"""Many images' matches (:class:`ImageMatch`) as columns (:class:`AnalysisSet`, those of :mod:`panbench.pq.result`,
saved to one exact ``.npz``), and the sums one analysis reads (:class:`Fold`; docs/analysis.md, "The sums of an
analysis"); :class:`AnalysisInputs` hands an analysis either.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from panbench.analyses import ANALYSES, Registry
from panbench.errors import InputError
from panbench.pq.matching import MATCH_FIELDS, ImageMatch
from panbench.pq.result import column_keys, to_columns

FORMAT = 2  # 2: fn_pair_other; format-1 files still load (that column as zeros)
F = TypeVar("F", bound="Fold")


@dataclass
class AnalysisSet:
    """Columns of all images; the category table's length, COCO ids and thing flags (when known)."""

    n_categories: int
    image_ids: list[Any]
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    category_ids: list[int] | None = None
    isthing: list[bool] | None = None

    @staticmethod
    def from_images(matches: list[ImageMatch], n_categories: int,
                    image_ids: list[Any] | None = None, category_ids: list[int] | None = None,
                    isthing: list[bool] | None = None) -> AnalysisSet:
        """Concatenate per-image matches (in dataset order)."""
        ids = list(range(len(matches))) if image_ids is None else list(image_ids)
        if len(ids) != len(matches):
            raise ValueError("one image id per match")
        return AnalysisSet(n_categories, ids, to_columns(matches, MATCH_FIELDS), _opt(category_ids, int),
                           _opt(isthing, bool))

    @staticmethod
    def from_columns(cols: Mapping[str, np.ndarray], n_categories: int, image_ids: list[Any],
                     category_ids: list[int] | None = None, isthing: list[bool] | None = None) -> AnalysisSet:
        """The set of the images whose results are ``cols``, as :meth:`from_images` of their matches gives it."""
        ids, keys = list(image_ids), column_keys(MATCH_FIELDS)
        if any(len(cols[k]) and int(cols[k][-1]) >= len(ids) for k in keys if k.endswith("_img")):
            raise ValueError("one image id per image of the columns")
        return AnalysisSet(n_categories, ids, {k: cols[k] for k in keys}, _opt(category_ids, int), _opt(isthing, bool))

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name]
        raise AttributeError(name)

    def per_image(self, lo: int = 0, hi: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Dense ``(hi - lo) x C`` float64 per-image per-category sums of images ``lo .. hi - 1`` (default: every
        image): IoU, TP, FP, FN; each row the same bits whatever the range."""
        hi = self.n_images if hi is None else hi
        n, c = hi - lo, self.n_categories

        def dense(group: str, weights: np.ndarray | None = None) -> np.ndarray:
            img, cats = self.cols[group + "_img"], self.cols[group + "_cats"]
            if (lo, hi) != (0, self.n_images):
                sel = (img >= lo) & (img < hi)
                img, cats, weights = img[sel] - lo, cats[sel], None if weights is None else weights[sel]
            return np.bincount(img * c + cats, weights, minlength=n * c).astype(np.float64, copy=False).reshape(n, c)

        return dense("tp", self.cols["tp_ious"]), dense("tp"), dense("fp"), dense("fn")

    def save(self, path: str | Path) -> None:
        from panbench.records.io import atomic_write  # the record's schema: not for score without --name

        buf = io.BytesIO()
        ids = np.array([str(i) for i in self.image_ids])
        cats = {} if self.category_ids is None or self.isthing is None else {
            "category_ids": np.array(self.category_ids, np.int64), "isthing": np.array(self.isthing, bool)}
        arrays: dict[str, Any] = {**cats, **self.cols}
        np.savez(buf, format=np.int64(FORMAT), n_categories=np.int64(self.n_categories), image_ids=ids, **arrays)
        atomic_write(Path(path), buf.getvalue())

    @staticmethod
    def load(path: str | Path, keys: Collection[str] | None = None) -> AnalysisSet:
        """The set saved in ``path``: of its columns only ``keys`` where given (the others are not read)."""
        try:
            z = np.load(path, allow_pickle=False)
            if int(z["format"]) not in (1, FORMAT):
                raise ValueError(f"format {int(z['format'])}")
            meta = ("format", "n_categories", "image_ids", "category_ids", "isthing")
            cols = {k: z[k] for k in z.files if k not in meta and (keys is None or k in keys)}
            # format 1 has no fn_pair_other: the oracle then keeps a classification FP partner
            if "fn_pair_other" not in cols and (keys is None or "fn_pair_other" in keys):
                cols["fn_pair_other"] = np.zeros(len(cols["fn_cats"]), np.float64)
            known = "category_ids" in z.files and "isthing" in z.files
            return AnalysisSet(int(z["n_categories"]), z["image_ids"].tolist(), cols,
                               z["category_ids"].tolist() if known else None, z["isthing"].tolist() if known else None)
        except (OSError, KeyError, IndexError, TypeError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            why = "it holds pickled objects" if "pickle" in str(e) else str(e) or type(e).__name__  # not numpy's hint
            raise InputError(f"{path}: not a panbench per-image analysis file ({why}); rerun the `panbench eval` "
                             "(or `score --name`) of its record to write it again") from None


class Fold:
    """Sums of an analysis, added one part of the images' columns at a time, in order (:meth:`add`).  A float sum
    goes on element after element (``np.add.at``), as one ``bincount`` adds them: any split gives the same bits."""

    def __init__(self, n_categories: int) -> None:
        self.n_categories, self.n_images = n_categories, 0

    def add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        """Fold in the columns of the next ``n_images`` images (their ``<group>_img`` counted from 0)."""
        self._add(cols, n_images)
        self.n_images += n_images

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        raise NotImplementedError

    @classmethod
    def of(cls: type[F], a: AnalysisSet) -> F:
        """The sums of every image of ``a``, folded in one part."""
        f = cls(a.n_categories)
        f.add(a.cols, a.n_images)
        return f


def counts(cats: np.ndarray, c: int) -> np.ndarray:
    """Occurrences of each of ``c`` categories (int64)."""
    return np.bincount(cats, minlength=c)


class Totals(Fold):
    """Per-category sums over all images: IoU (float64), TP, FP, FN (int64)."""

    def __init__(self, n_categories: int) -> None:
        super().__init__(n_categories)
        self.iou = np.zeros(n_categories, np.float64)
        self.tp, self.fp, self.fn = (np.zeros(n_categories, np.int64) for _ in range(3))

    def _add(self, cols: Mapping[str, np.ndarray], n_images: int) -> None:
        c = self.n_categories
        np.add.at(self.iou, cols["tp_cats"], cols["tp_ious"])
        self.tp += counts(cols["tp_cats"], c)
        self.fp += counts(cols["fp_cats"], c)
        self.fn += counts(cols["fn_cats"], c)

    def as_float(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """IoU, TP, FP, FN, each float64 (as the metrics read them)."""
        return self.iou, self.tp.astype(np.float64), self.fp.astype(np.float64), self.fn.astype(np.float64)


@dataclass(frozen=True)
class AnalysisInputs:
    """What an analysis of :data:`panbench.analyses.ANALYSES` computes its record fields from."""

    aset: AnalysisSet
    isthing: list[bool]
    n_resamples: int  # 0: no interval
    seed: int = 0
    category_ids: list[int] | None = None
    boundary: Any = None  # PQStats, or None
    own_threshold: float | None = None  # the model's own score threshold (score_threshold's "own"); None: unknown

    def sums(self, kind: type[F]) -> F:
        """The run's sums ``kind``, of every image of :attr:`aset`."""
        return kind.of(self.aset)


# ``@computes(key)``: the function that computes the record fields of the analysis of row ``key`` of ANALYSES
computes = Registry("compute", "panbench.analysis.collect.computes")


def compute_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """The record fields of every analysis of :data:`panbench.analyses.ANALYSES`, in the table's order."""
    return {k: v for a in ANALYSES for k, v in computes[a.key](inp).items()}


def _opt(values: list[Any] | None, kind: type) -> list[Any] | None:
    return None if values is None else [kind(v) for v in values]
