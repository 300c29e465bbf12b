"""The analyses wired to whole runs: :func:`run_fields` (every analysis of :data:`panbench.analyses.ANALYSES`) and
:func:`analyses_of` (from an accumulator's per-image columns: the analyses' evaluator, panbench.evaluators).  Numpy
only.
"""

from __future__ import annotations

from typing import Any

from panbench.analysis.bootstrap import N_RESAMPLES
from panbench.analysis.collect import AnalysisInputs, AnalysisSet, compute_fields, computes
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.matching import METRIC_KEYS, CategoryTable
from panbench.pq.sums import PQStats, pq_summary


def run_fields(aset: AnalysisSet, cats: CategoryTable, boundary: PQStats | None = None,
               n_resamples: int = N_RESAMPLES, seed: int = 0, own_threshold: float | None = None) -> dict[str, Any]:
    """The record fields of every analysis; boundary PQ's only with ``boundary`` (its sums); ``own_threshold``: the
    model's own score threshold (None: unknown)."""
    return compute_fields(AnalysisInputs(aset, cats.isthing, n_resamples if aset.n_images else 0, seed, cats.ids,
                                         boundary, own_threshold))


@computes("boundary")
def boundary_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """``boundary``: the nine metrics of the boundary-PQ sums, 0-100 (none when boundary PQ was not scored)."""
    if inp.boundary is None:
        return {}
    ids = inp.category_ids if inp.category_ids is not None else list(range(len(inp.isthing)))  # only per_class's keys
    res = pq_summary(inp.boundary, ids, inp.isthing)
    return {"boundary": {k: res[k] for k in METRIC_KEYS}}


def analyses_of(acc: PanopticAccumulator, image_ids: list[Any], n_resamples: int = N_RESAMPLES,
                seed: int = 0, own_threshold: float | None = None) -> tuple[AnalysisSet, dict[str, Any]]:
    """The :class:`AnalysisSet` (the per-image export) and :func:`run_fields` of the images ``acc`` kept, positions
    ``0 .. len(image_ids) - 1``."""
    cats, n = acc.categories, len(image_ids)
    aset = AnalysisSet.from_columns(acc.dense_columns(n), len(cats), image_ids, cats.ids, cats.isthing)
    return aset, run_fields(aset, cats, acc.boundary_stats(n), n_resamples, seed, own_threshold)

