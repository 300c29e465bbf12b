"""Analyses beyond one PQ number: bootstrap confidence intervals, PQ by object size, PQ-dagger and a panoptic error
breakdown, from the per-image matches of :mod:`panbench.pq.matching`.  Numpy only.  Entry points: :class:`AnalysisSet`
(every image's matches as columns; save/load), :func:`analyze` (the rows of :data:`panbench.analyses.ANALYSES`, which
:func:`compute_fields` runs, as one JSON-ready dict), :func:`bootstrap_ci`, :func:`paired_bootstrap`,
:func:`pq_by_size`, :func:`pq_dagger`, :func:`error_breakdown`.  The rules: docs/analysis.md.

The modules imported here register each analysis's compute function (``@computes(key)``, :mod:`.collect`) as they
load: a new analysis's module is imported here too.
"""

from __future__ import annotations

from typing import Any

from panbench.analysis import scoring  # noqa: F401  (registers boundary PQ's compute function)
from panbench.analysis.bootstrap import (
    N_RESAMPLES,
    RunSums,
    bootstrap_ci,
    check_paired,
    paired_bootstrap,
)
from panbench.analysis.breakdown import error_breakdown
from panbench.analysis.collect import AnalysisInputs, AnalysisSet, compute_fields
from panbench.analysis.metrics import pq_by_size, pq_dagger

__all__ = ["AnalysisInputs", "AnalysisSet", "RunSums", "analyze", "bootstrap_ci", "compute_fields",
           "check_paired", "error_breakdown", "paired_bootstrap", "pq_by_size", "pq_dagger"]


def analyze(a: AnalysisSet, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The default analyses as the keys ``score --json`` adds (all but boundary PQ, its own pass over the pixels);
    ``n_resamples=0`` or :func:`~panbench.analysis.bootstrap.too_few` leaves the intervals out."""
    return compute_fields(AnalysisInputs(a, isthing, n_resamples, seed, a.category_ids))
