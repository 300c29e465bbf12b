"""panbench inside training frameworks (docs/api.md), on :mod:`panbench.metrics`: mmdet.py, detectron2.py and
torchmetrics.py.  Nothing of panbench imports this package."""
