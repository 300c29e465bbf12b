"""panbench inside training frameworks: MMEngine/MMDetection (mmdet.py: ``PanbenchPanopticMetric``, a drop-in for
MMDetection's ``CocoPanopticMetric``), torchmetrics/Lightning (torchmetrics.py) and detectron2 (detectron2.py:
``PanbenchPanopticEvaluator``, a drop-in for detectron2's ``COCOPanopticEvaluator``), on the PQ core of
:mod:`panbench.metrics`.  Nothing of panbench imports this package: a config's ``custom_imports``, a user's
``import`` or a test does (docs/api.md)."""
