"""Panoptic quality, numpy only: nothing here imports torch or mmdet.

Layering, bottom up (torchmetrics' ``functional/`` beneath its classes is the model):

* :mod:`~panbench.pq.matching`: pure functions: per-image matching (panopticapi's rules), the
  additive per-category sums (:class:`PQStats`, fixed point) and their summary (PQ/SQ/RQ).
* :mod:`~panbench.pq.kernels`: the pixel loops (ids from RGB, compact indices, intersection
  tables) in C (``_native.c``) with a numpy path that gives the same numbers.
* :mod:`~panbench.pq.coco_format` and :mod:`~panbench.pq.png`: reading the COCO panoptic format
  (JSON; PNG to ids), validated.
* :mod:`~panbench.pq.evaluator`: ``score_image`` (one image to its statistics) and the streaming
  :class:`PanopticEvaluator` (``reset / process / evaluate``), the one writer of its sums.
* :mod:`~panbench.pq.score`: a whole prediction folder against the ground truth, in parallel.
"""
