"""Panoptic quality, numpy only: nothing here imports torch or mmdet.  Its modules and their layering, bottom up
(:mod:`~panbench.pq.matching` and :mod:`~panbench.pq.sums` first, :mod:`~panbench.pq.score` and
:mod:`~panbench.pq.batch` last): docs/architecture.md, "The packages and what each may import"."""
