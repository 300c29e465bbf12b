"""The analyses wired to whole runs: :func:`run_fields` computes the record fields of every analysis of
:data:`panbench.analyses.ANALYSES` from the per-image results (boundary PQ's only when it was scored);
:func:`score_files_analysis` is ``panbench score`` with the analyses.  Label maps are never kept.  Numpy only.
"""

from __future__ import annotations

import os
from typing import Any

from panbench.analysis.bootstrap import N_RESAMPLES
from panbench.analysis.collect import AnalysisInputs, AnalysisSet, compute_fields, computes
from panbench.errors import PanbenchError
from panbench.pq.matching import METRIC_KEYS, CategoryTable
from panbench.pq.result import BOUNDARY_PREFIX
from panbench.pq.sums import PQStats, pq_summary


def run_fields(aset: AnalysisSet, cats: CategoryTable, boundary: PQStats | None = None,
               n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The record fields of every analysis; boundary PQ's only with ``boundary`` (its sums)."""
    return compute_fields(AnalysisInputs(aset, cats.isthing, n_resamples if aset.n_images else 0, seed, cats.ids,
                                         boundary))


@computes("boundary")
def boundary_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """``boundary``: the nine metrics of the boundary-PQ sums, 0-100 (none when boundary PQ was not scored)."""
    if inp.boundary is None:
        return {}
    ids = inp.category_ids if inp.category_ids is not None else list(range(len(inp.isthing)))  # only per_class's keys
    res = pq_summary(inp.boundary, ids, inp.isthing)
    return {"boundary": {k: res[k] for k in METRIC_KEYS}}


def score_files_analysis(gt_json: str | os.PathLike[str], gt_dir: str | os.PathLike[str],
                         pred_json: str | os.PathLike[str], pred_dir: str | os.PathLike[str],
                         workers: int | None = None,
                         boundary: bool = False,
                         strict: bool = False,
                         diagnose: bool = False) -> tuple[dict[str, Any], AnalysisSet, dict[str, Any]]:
    """``score`` with the analyses: the metrics (as :func:`panbench.pq.score.score_files`, bit for bit), the
    matches as an :class:`AnalysisSet` (the ground truth's image order) and :func:`run_fields`."""
    from panbench.pq.score import Scoring, metrics_with_diagnosis, score_stream

    ev, pairs, cols = score_stream(gt_json, gt_dir, pred_json, pred_dir, workers,
                                   Scoring(strict=strict, boundary=boundary, keep_images=True))
    cats = ev.categories
    aset = AnalysisSet.from_columns(cols, len(cats), [gt["image_id"] for gt, _ in pairs], cats.ids, cats.isthing)
    bstats = None
    if boundary:  # the boundary-PQ sums of the columns' ``b_`` fields
        if BOUNDARY_PREFIX + "tp_cats" not in cols:
            raise PanbenchError("internal: an image has no boundary-PQ contributions; please report")
        bstats = PQStats.zeros(len(cats))
        bstats.add_columns(cols, len(pairs), BOUNDARY_PREFIX)
    res = metrics_with_diagnosis(ev) if diagnose else ev.evaluate()
    return res, aset, run_fields(aset, cats, bstats)
