"""panbench inside training frameworks (docs/api.md), on :mod:`panbench.metrics`: drop-ins for MMDetection's
``CocoPanopticMetric`` (mmdet.py) and detectron2's ``COCOPanopticEvaluator`` (detectron2.py), and torchmetrics'
``PanopticQuality`` for Lightning (torchmetrics.py).  Nothing of panbench imports this package: a config's
``custom_imports``, a user's ``import`` or a test does."""
