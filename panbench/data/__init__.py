"""Datasets in the COCO panoptic layout: loading and checking them (:mod:`.datasets`), the COCO
download (:mod:`.coco`), the synthetic demo set (:mod:`.demo`, drawn by :mod:`.synth`).
numpy and :mod:`panbench.pq` only."""
