"""Analyses beyond one PQ number: bootstrap confidence intervals, PQ by object size, PQ-dagger and a
panoptic error breakdown, from the per-image matches of :mod:`panbench.pq.matching`.  Numpy only
(never torch or mmdet).

Entry points: :class:`AnalysisSet` (the :class:`~panbench.pq.matching.ImageMatch` of every image, as
columns; save/load), :func:`analyze` (every default analysis
of a set as one JSON-ready dict; the analyses are the rows of :data:`panbench.analyses.ANALYSES`,
:func:`compute_fields` runs them), :func:`bootstrap_ci`, :func:`paired_bootstrap`,
:func:`pq_by_size`, :func:`pq_dagger`, :func:`error_breakdown`.  The rules: docs/analysis.md.
"""

from __future__ import annotations

from typing import Any

from panbench.analyses import ANALYSES, function
from panbench.analysis.bootstrap import (
    N_RESAMPLES,
    RunSums,
    bootstrap_ci,
    check_paired,
    paired_bootstrap,
)
from panbench.analysis.breakdown import error_breakdown
from panbench.analysis.collect import AnalysisInputs, AnalysisSet
from panbench.analysis.metrics import pq_by_size, pq_dagger

__all__ = ["AnalysisInputs", "AnalysisSet", "RunSums", "analyze", "bootstrap_ci", "compute_fields",
           "check_paired", "error_breakdown", "paired_bootstrap", "pq_by_size", "pq_dagger"]


def compute_fields(inp: AnalysisInputs) -> dict[str, Any]:
    """The record fields of every analysis of :data:`panbench.analyses.ANALYSES`, in the table's order."""
    return {k: v for a in ANALYSES for k, v in function(a.compute)(inp).items()}


def analyze(a: AnalysisSet, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The default (cheap) analyses as the keys ``score --json`` adds (every row of
    :data:`panbench.analyses.ANALYSES` but boundary PQ, which needs its own pass over the pixels);
    ``n_resamples=0``, or fewer images or resamples than an interval needs
    (:func:`~panbench.analysis.bootstrap.too_few`), leaves the intervals out."""
    return compute_fields(AnalysisInputs(a, isthing, n_resamples, seed, a.category_ids))
