"""Panoptic quality, numpy only: nothing here imports torch or mmdet.

Layering, bottom up (torchmetrics' ``functional/`` beneath its classes is the model):

* :mod:`~panbench.pq.matching`: the one matching rule (panopticapi's), a pure function of an image's
  intersection table: :func:`match_image` gives the :class:`ImageMatch` (matched pairs and the per-segment
  facts the analyses read), in C (``_match_core.h``, wrapped by ``_match.c``) with a numpy reference that gives
  the same bits.
* :mod:`~panbench.pq.sums`: the additive per-category sums (:class:`PQStats`, fixed point) derived from
  matches, and their summary (PQ/SQ/RQ).
* :mod:`~panbench.pq.kernels`: the pixel loops (ids from RGB, compact indices, intersection
  tables) in C (``_native.c``); :mod:`~panbench.pq.reference` holds the numpy twins of the C kernels (the same
  functions and results: the fallback without a compiler, ``PANBENCH_NO_NATIVE=1``, and the tests' reference).
* :mod:`~panbench.pq.coco_format` and :mod:`~panbench.pq.png`: reading the COCO panoptic format
  (JSON; PNG to ids), validated.
* :mod:`~panbench.pq.evaluator`: ``score_pair`` (two id maps to the image's checked
  :class:`~panbench.pq.result.ImageResult`: the one per-image function).
* :mod:`~panbench.pq.result`: :class:`ImageResult` and the one columnar codec of many images' results.
* :mod:`~panbench.pq.accumulator`: :class:`PanopticAccumulator`, the one state of an evaluation (the sums and,
  when asked, the per-image results as columns), combined one way (``merge``).
* :mod:`~panbench.pq.boundary`: boundary PQ, through the one matcher with its own pair IoU (C in
  ``_boundary.c``).  :mod:`~panbench.pq.native` reads every C extension (they share ``_common.h``).
* :mod:`~panbench.pq.score` and :mod:`~panbench.pq.batch`: a whole prediction folder against the ground truth, one
  way: chunks of images on threads.
"""
