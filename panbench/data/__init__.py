"""Datasets in the COCO panoptic layout: the table, loading and checking them, the COCO download, the converters, the
synthetic demo set.  numpy and :mod:`panbench.pq` only."""
