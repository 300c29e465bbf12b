"""Panoptic quality, numpy only: nothing here imports torch or mmdet.  Layering, bottom up (docs/architecture.md):
:mod:`~panbench.pq.matching` (the one matching rule, C in ``_match_core.h`` with a numpy reference of the same bits)
and :mod:`~panbench.pq.sums` (the additive per-category sums, :class:`PQStats`, and PQ/SQ/RQ);
:mod:`~panbench.pq.kernels` (the pixel loops, C in ``_native.c``, and their numpy twins) and
:mod:`~panbench.pq.native` (every C extension read in one place); :mod:`~panbench.pq.coco_format` and
:mod:`~panbench.pq.png` (the COCO panoptic format, validated); :mod:`~panbench.pq.evaluator` (``score_pair``, two id
maps to an image's :class:`~panbench.pq.result.ImageResult`) and :mod:`~panbench.pq.result` (the one columnar codec);
:mod:`~panbench.pq.accumulator` (:class:`PanopticAccumulator`, the one state of an evaluation);
:mod:`~panbench.pq.boundary` (boundary PQ through the one matcher); :mod:`~panbench.pq.score` and
:mod:`~panbench.pq.batch` (a whole prediction folder: chunks of images on threads)."""
