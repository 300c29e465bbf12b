"""panbench inside training frameworks: MMEngine/MMDetection (mmdet.py) and torchmetrics/Lightning (torchmetrics.py)."""
