"""PanopticFPN R-101 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::panoptic_fpn/panoptic-fpn_r101_fpn_1x_coco.py"

panbench = dict(
    name="panoptic-fpn_r101_1x",
    architecture="PanopticFPN",
    backbone="R-101",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v2.0/panoptic_fpn/panoptic_fpn_r101_fpn_1x_coco/panoptic_fpn_r101_fpn_1x_coco_20210820_193950-ab9157a2.pth",
    params=65019238,
    sha256_prefix="ab9157a2",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=42.2, SQ=78.3, RQ=51.4, PQ_th=50.1, SQ_th=81.4, RQ_th=59.9, PQ_st=30.3, SQ_st=73.6, RQ_st=38.5),
)
