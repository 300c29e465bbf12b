"""PanopticFPN R-101 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::panoptic_fpn/panoptic-fpn_r101_fpn_ms-3x_coco.py"

panbench = dict(
    name="panoptic-fpn_r101_3x",
    architecture="PanopticFPN",
    backbone="R-101",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v2.0/panoptic_fpn/panoptic_fpn_r101_fpn_mstrain_3x_coco/panoptic_fpn_r101_fpn_mstrain_3x_coco_20210823_114712-9c99acc4.pth",
    params=65019238,
    sha256_prefix="9c99acc4",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=44.1, SQ=78.9, RQ=53.6, PQ_th=52.1, SQ_th=81.7, RQ_th=62.3, PQ_st=32.0, SQ_st=74.6, RQ_st=40.3),
)
