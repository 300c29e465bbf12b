"""Analyses beyond one PQ number: bootstrap confidence intervals, PQ by object size, PQ-dagger and a
panoptic error breakdown, from the per-image matches of :mod:`panbench.pq.matching`.  Numpy only
(never torch or mmdet).

Entry points: :class:`AnalysisSet` (the :class:`~panbench.pq.matching.ImageMatch` of every image, as
columns; save/load), :func:`analyze` (every default analysis
of a set as one JSON-ready dict), :func:`bootstrap_ci`, :func:`paired_bootstrap`,
:func:`pq_by_size`, :func:`pq_dagger`, :func:`error_breakdown`.  The rules: docs/analysis.md.
"""

from __future__ import annotations

from typing import Any

from panbench.analysis.bootstrap import (
    N_RESAMPLES,
    RunSums,
    bootstrap_ci,
    check_paired,
    paired_bootstrap,
    too_few,
)
from panbench.analysis.breakdown import error_breakdown
from panbench.analysis.collect import AnalysisSet
from panbench.analysis.metrics import pq_by_size, pq_dagger

__all__ = ["AnalysisSet", "RunSums", "analyze", "bootstrap_ci",
           "check_paired", "error_breakdown", "paired_bootstrap", "pq_by_size", "pq_dagger"]


def analyze(a: AnalysisSet, isthing: list[bool], n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The default (cheap) analyses as the keys ``score --json`` adds: ``ci``, ``by_size``,
    ``pq_dagger``, ``errors`` (and ``mask_quality``); ``n_resamples=0``, or fewer images or resamples than an
    interval needs (:func:`~panbench.analysis.bootstrap.too_few`), leaves ``ci`` out."""
    out: dict[str, Any] = {}
    if n_resamples and too_few(a.n_images, n_resamples) is None:
        out["ci"] = bootstrap_ci(RunSums.from_analysis(a), isthing, n_resamples=n_resamples, seed=seed)
    out["by_size"] = pq_by_size(a, isthing)
    out["pq_dagger"] = pq_dagger(a, isthing)["PQ_dagger"]
    eb = error_breakdown(a, isthing)
    out["errors"] = {k: {"count": v["count"], "fp": v["fp"], "fn": v["fn"], "delta_PQ": v["delta_PQ"]}
                     for k, v in eb["errors"].items()}
    out["mask_quality"] = eb["mask_quality"]
    return out
