"""Panoptic quality, numpy only: nothing here imports torch or mmdet.

Layering, bottom up (torchmetrics' ``functional/`` beneath its classes is the model):

* :mod:`~panbench.pq.matching`: the one matching rule (panopticapi's), a pure function of an image's
  intersection table: :func:`match_image` gives the :class:`ImageMatch` (matched pairs and the per-segment
  facts the analyses read), in C (``_match.c``) with a numpy reference that gives the same bits.
* :mod:`~panbench.pq.sums`: the additive per-category sums (:class:`PQStats`, fixed point) derived from
  matches, and their summary (PQ/SQ/RQ).
* :mod:`~panbench.pq.kernels`: the pixel loops (ids from RGB, compact indices, intersection
  tables) in C (``_native.c``) with a numpy path that gives the same numbers.
* :mod:`~panbench.pq.coco_format` and :mod:`~panbench.pq.png`: reading the COCO panoptic format
  (JSON; PNG to ids), validated.
* :mod:`~panbench.pq.evaluator`: ``match_ids`` (two id maps to the checked :class:`ImageMatch`),
  ``score_image`` (one image to its statistics) and the streaming
  :class:`PanopticEvaluator` (``reset / process / evaluate``), the one writer of its sums.
* :mod:`~panbench.pq.score`: a whole prediction folder against the ground truth, in parallel.
"""
