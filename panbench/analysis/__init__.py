"""Analyses beyond one PQ number, from the per-image matches of :mod:`panbench.pq.matching` (numpy only; the entry
points and rules: docs/analysis.md).  The modules imported here register each analysis's compute function
(``@computes(key)``, :mod:`.collect`) as they load: a new analysis's module is imported here too.
"""

from __future__ import annotations

from typing import Any

from panbench.analysis import scoring  # noqa: F401  (registers boundary PQ's compute function)
from panbench.analysis.bootstrap import N_RESAMPLES, RunSums, bootstrap_ci, check_paired, paired_bootstrap
from panbench.analysis.breakdown import error_breakdown
from panbench.analysis.collect import AnalysisInputs, AnalysisSet, compute_fields
from panbench.analysis.metrics import pq_by_size, pq_dagger
from panbench.analysis.scores import ScoreSums, calibration, score_threshold

__all__ = ["AnalysisInputs", "AnalysisSet", "RunSums", "analyze", "bootstrap_ci", "compute_fields",
           "calibration", "check_paired", "error_breakdown", "paired_bootstrap", "pq_by_size", "pq_dagger",
           "score_threshold", "ScoreSums"]


def analyze(a: AnalysisSet, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The default analyses as the keys ``score --json`` adds (all but boundary PQ, its own pass over the pixels);
    ``n_resamples=0`` or :func:`~panbench.analysis.bootstrap.too_few` leaves the intervals out."""
    return compute_fields(AnalysisInputs(a, isthing, n_resamples, seed, a.category_ids))
