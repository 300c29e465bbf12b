"""panbench as a library: the Python API's streaming metrics (docs/api.md, :mod:`panbench.metrics.panoptic`).
:class:`PanopticQuality` scores a prediction and its ground truth image by image, :class:`CocoPanopticQuality` a
prediction against a COCO panoptic JSON + PNG folder it reads itself.  The training frameworks' metrics built on
them are in :mod:`panbench.integrations`."""

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
