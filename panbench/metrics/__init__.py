"""panbench as a library: the streaming panoptic-quality metrics of the Python API (docs/api.md).

* :class:`PanopticQuality`: ``update(pred_ids, pred_segments, gt_ids, gt_segments)`` image by image (numpy
  arrays or torch tensors), ``compute()`` -> :class:`PQResult`; ``merge``, ``sums``/``add_sums``, ``sync``
  (torch.distributed), ``reset``; picklable.
* :class:`CocoPanopticQuality`: the same against a COCO panoptic JSON + PNG folder it reads itself:
  ``update(image_id, pred_ids, pred_segments)``, the ground truth decoded once (``keep_ground_truth``).

numpy and the PQ core; torch only inside :meth:`BasePanopticQuality.sync`.  The training frameworks' metrics
built on them are in :mod:`panbench.integrations`.
"""

from panbench.metrics.panoptic import BasePanopticQuality, CocoPanopticQuality, PanopticQuality, category_table
from panbench.metrics.result import ClassPQ, PQResult, PQValues
from panbench.pq.diagnosis import DiagnosisWarning, Finding

__all__ = ["BasePanopticQuality", "ClassPQ", "CocoPanopticQuality", "DiagnosisWarning", "Finding", "PQResult",
           "PQValues", "PanopticQuality", "category_table"]
