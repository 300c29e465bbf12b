"""Per-image PQ/SQ/RQ and TP/FP/FN of one run, from its per-image matches (:class:`AnalysisSet`).

Each image is scored as a run of that image alone (PQ averaged over the categories present in it,
as panopticapi averages over a dataset); the TP/FP/FN columns add up to the run's counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis.collect import AnalysisSet
from panbench.analysis.metrics import nine_metrics
from panbench.errors import InputError

COLUMNS = ("image_id", "PQ", "SQ", "RQ", "PQ_th", "PQ_st", "TP", "FP", "FN")


def per_image_columns(aset: AnalysisSet) -> dict[str, Any]:
    """One entry per column of :data:`COLUMNS`, each a list or array in the run's image order."""
    iou, tp, fp, fn = aset.per_image()
    isthing = aset.isthing if aset.isthing is not None else [True] * aset.n_categories
    m = nine_metrics(iou, tp, fp, fn, isthing)
    out: dict[str, Any] = {"image_id": [str(i) for i in aset.image_ids]}
    out.update({k: m[k] for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")})
    out.update({"TP": tp.sum(1).astype(np.int64), "FP": fp.sum(1).astype(np.int64),
                "FN": fn.sum(1).astype(np.int64)})
    return out


def write_per_image(aset: AnalysisSet, path: str | Path) -> Path:
    """Write the per-image table as CSV or Parquet (by the file's suffix) with pandas."""
    import pandas as pd

    path = Path(path)
    frame = pd.DataFrame(per_image_columns(aset), columns=list(COLUMNS))
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        try:
            frame.to_parquet(path, index=False)
        except ImportError:
            raise InputError(f"{path}: Parquet needs pyarrow, which is not installed; `pip install pyarrow` "
                             "or write a .csv") from None
    else:
        raise InputError(f"{path}: per-image table must end in .csv or .parquet")
    return path
