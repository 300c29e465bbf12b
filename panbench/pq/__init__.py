"""Panoptic quality, numpy only: nothing here imports torch or mmdet.  Layering, bottom up:

* :mod:`~panbench.pq.matching`: the one matching rule (panopticapi's), :func:`match_image` of an image's
  intersection table to its :class:`ImageMatch`, in C (``_match_core.h``, wrapped by ``_match.c``) with a numpy
  reference of the same bits; :mod:`~panbench.pq.sums`: the additive per-category sums (:class:`PQStats`) and PQ/SQ/RQ.
* :mod:`~panbench.pq.kernels`: the pixel loops (ids from RGB, compact indices, intersection tables) in C
  (``_native.c``) and their numpy twins (the fallback without a compiler or with ``PANBENCH_NO_NATIVE=1``, and the
  tests' reference); :mod:`~panbench.pq.native` reads every C extension (they share ``_common.h``).
* :mod:`~panbench.pq.coco_format` and :mod:`~panbench.pq.png`: the COCO panoptic format (JSON; PNG to ids), validated.
* :mod:`~panbench.pq.evaluator`: ``score_pair``, two id maps to the image's checked
  :class:`~panbench.pq.result.ImageResult` (the one per-image function); :mod:`~panbench.pq.result`: that result and
  the one columnar codec of many images' results.
* :mod:`~panbench.pq.accumulator`: :class:`PanopticAccumulator`, the one state of an evaluation, combined one way.
* :mod:`~panbench.pq.boundary`: boundary PQ through the one matcher with its own pair IoU (C in ``_boundary.c``).
* :mod:`~panbench.pq.score` and :mod:`~panbench.pq.batch`: a whole prediction folder, one way: chunks of images on
  threads.
"""
