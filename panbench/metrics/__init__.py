"""panbench as a library: the Python API's streaming metrics (docs/api.md, :mod:`panbench.metrics.panoptic`)."""

from panbench.metrics.panoptic import (
    BasePanopticQuality,
    ClassPQ,
    CocoPanopticQuality,
    PanopticQuality,
    PQResult,
    PQValues,
    category_table,
)
from panbench.pq.diagnosis import DiagnosisWarning, Finding

__all__ = ["BasePanopticQuality", "ClassPQ", "CocoPanopticQuality", "DiagnosisWarning", "Finding", "PQResult",
           "PQValues", "PanopticQuality", "category_table"]
