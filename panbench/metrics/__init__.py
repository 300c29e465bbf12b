"""panbench as a library: the Python API's streaming metrics (docs/api.md, :mod:`panbench.metrics.panoptic`)."""

from panbench.metrics.panoptic import (
    BasePanopticQuality,
    ClassPQ,
    CocoPanopticQuality,
    MetricPart,
    PanopticQuality,
    PQResult,
    PQValues,
    category_table,
    load_evaluators,
)
from panbench.metrics.panopticapi import pq_compute
from panbench.pq.diagnosis import DiagnosisWarning, Finding

__all__ = ["BasePanopticQuality", "ClassPQ", "CocoPanopticQuality", "DiagnosisWarning", "Finding", "MetricPart",
           "PQResult", "PQValues", "PanopticQuality", "category_table",
           "load_evaluators", "pq_compute"]
