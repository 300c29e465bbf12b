"""panbench inside training frameworks: MMEngine/MMDetection (mmdet.py: ``PanbenchPanopticMetric``, a drop-in for
MMDetection's ``CocoPanopticMetric``) and torchmetrics/Lightning (torchmetrics.py), on the PQ core of
:mod:`panbench.metrics`.  Nothing of panbench imports this package: a config's ``custom_imports``, a user's
``import`` or a test does (docs/api.md)."""
