"""Per-image PQ/SQ/RQ and TP/FP/FN of one run, from its per-image matches (:class:`AnalysisSet`; docs/analysis.md,
"Per image"); :func:`ranked` orders the images by PQ, or by the loss to another run.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis.collect import AnalysisSet
from panbench.analysis.metrics import nine_metrics
from panbench.errors import InputError, PanbenchError

COUNTS = ("TP", "FP", "FN")
COLUMNS = ("image_id", "file_name", "PQ", "SQ", "RQ", "PQ_th", "PQ_st", *COUNTS,
           *(k + "_th" for k in COUNTS), *(k + "_st" for k in COUNTS), "IoU_sum")


BLOCK = 4096  # the images whose dense per-category sums (BLOCK x C each) are made at a time


def per_image_columns(aset: AnalysisSet, file_names: Sequence[str] | None = None) -> dict[str, Any]:
    """One list or array per column of :data:`COLUMNS`, in the run's image order (``file_name``: ``file_names``);
    the images :data:`BLOCK` at a time (each row's numbers are its own)."""
    isthing = np.asarray(aset.isthing if aset.isthing is not None else [True] * aset.n_categories, bool)
    names = list(file_names) if file_names is not None else [""] * aset.n_images
    if len(names) != aset.n_images:
        raise ValueError(f"per_image_columns: {len(names)} file names for {aset.n_images} images")
    n = aset.n_images
    blocks = [_block_columns(aset, lo, min(lo + BLOCK, n), isthing) for lo in range(0, max(n, 1), BLOCK)]
    out: dict[str, Any] = {"image_id": [str(i) for i in aset.image_ids], "file_name": names}
    for key in COLUMNS[2:]:
        out[key] = np.concatenate([b[key] for b in blocks]) if len(blocks) > 1 else blocks[0][key]
    return out


def _block_columns(aset: AnalysisSet, lo: int, hi: int, isthing: np.ndarray) -> dict[str, np.ndarray]:
    """The numeric columns of :data:`COLUMNS` for images ``lo .. hi - 1``."""
    iou, tp, fp, fn = aset.per_image(lo, hi)
    m = nine_metrics(iou, tp, fp, fn, isthing)
    out: dict[str, np.ndarray] = {}
    present = (tp + fp + fn) > 0  # the categories an image's PQ averages over; none: PQ undefined (NaN)
    for k, mask in (("PQ", None), ("SQ", None), ("RQ", None), ("PQ_th", isthing), ("PQ_st", ~isthing)):
        n = present.sum(1) if mask is None else present[:, mask].sum(1)
        out[k] = np.where(n > 0, m[k], np.nan)
    for key, arr in zip(COUNTS, (tp, fp, fn)):
        out[key] = arr.sum(1).astype(np.int64)
        out[key + "_th"] = arr[:, isthing].sum(1).astype(np.int64)
        out[key + "_st"] = arr[:, ~isthing].sum(1).astype(np.int64)
    out["IoU_sum"] = iou.sum(1)
    return out


def file_names_of(ann_file: str | Path | None, image_ids: Sequence[Any]) -> list[str]:
    """Each image id's ``file_name`` in the panoptic JSON ``ann_file`` ("" where the file or the id is missing); its
    segments_info arrays are kept packed as it is read (:func:`~panbench.pq.coco_format.read_json`), not parsed."""
    from panbench.pq.coco_format import read_json  # here, not at the top: it brings deflate (pq.kernels)

    doc = None
    if ann_file is not None and Path(ann_file).is_file():
        with suppress(OSError, ValueError, PanbenchError):
            doc = read_json(ann_file, "panoptic JSON", scan=True)
    return file_names(doc, image_ids)


def file_names(doc: Any, image_ids: Sequence[Any]) -> list[str]:
    """Each image id's ``file_name`` in the ``images`` of a panoptic JSON's document ("" where it has none)."""
    try:
        names = {str(im["id"]): str(im.get("file_name", "")) for im in doc.get("images", [])}
    except (KeyError, AttributeError, TypeError):
        names = {}
    return [names.get(str(i), "") for i in image_ids]


def write_per_image(aset: AnalysisSet, path: str | Path, file_names: Sequence[str] | None = None) -> Path:
    """Write the per-image table as CSV or Parquet (by the file's suffix) with pandas."""
    path = check_table(path)
    import pandas as pd

    frame = pd.DataFrame(per_image_columns(aset, file_names), columns=list(COLUMNS))
    path.parent.mkdir(parents=True, exist_ok=True)
    (frame.to_csv if path.suffix == ".csv" else frame.to_parquet)(path, index=False)
    return path


def check_table(path: str | Path) -> Path:
    """A ``--per-image`` path: a ``.csv``, or a ``.parquet`` with pyarrow, in a writable folder (else refused)."""
    from panbench.records.io import unwritable  # the record's schema: not for score without --name

    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise InputError(f"{path}: per-image table must end in .csv or .parquet")
    if why := f"{path} is a folder" if path.is_dir() else unwritable(path.parent):
        raise InputError(f"{path}: cannot be written ({why}); pass another --per-image (nothing was run)")
    import importlib.util

    if path.suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InputError(f"{path}: Parquet needs pyarrow, which is not installed; `pip install pyarrow` "
                         "(or panbench[report]) or write a .csv")
    return path


def write_record_per_image(rec: Any, root: str | Path, path: str | Path) -> Path:
    """The per-image table of a stored run (its analysis file under ``root``), file names from its ground truth."""
    if not rec.analysis_file:
        raise InputError(f"{rec.model}: the run has no per-image analysis file; leave out --no-analysis to get "
                         "the per-image table")
    aset = AnalysisSet.load(Path(root) / rec.analysis_file)
    ann = ((rec.provenance or {}).get("dataset") or {}).get("ann_file")
    return write_per_image(aset, path, file_names_of(ann, aset.image_ids))


def ranked(a: dict[str, Any], b: dict[str, Any] | None = None, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` images where run A (its :func:`per_image_columns`) has the lowest PQ, or with B the largest loss
    (docs/analysis.md, "Per image"); ``key`` is the order's, ``PQ_vs`` B's PQ."""
    pq = np.asarray(a["PQ"], np.float64)
    other = np.full(len(pq), np.nan)
    if b is not None:
        where = {i: k for k, i in enumerate(b["image_id"])}
        if not (rows := [k for k, i in enumerate(a["image_id"]) if i in where]):
            raise InputError("the two runs share no image; pick two runs of the same dataset (--dataset)")
        other[rows] = np.asarray(b["PQ"], np.float64)[[where[a["image_id"][k]] for k in rows]]
        key = pq - other
    else:
        rows, key = list(range(len(pq))), pq
    order = sorted(rows, key=lambda k: (bool(np.isnan(key[k])), key[k] if not np.isnan(key[k]) else 0.0, k))[:n]
    return [{"image_id": a["image_id"][k], "file_name": a["file_name"][k], "PQ": _num(pq[k]),
             "PQ_vs": _num(other[k]) if b is not None else None, "key": _num(key[k]),
             **{c: int(a[c][k]) for c in COUNTS}} for k in order]


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
