"""PanopticFPN R-50 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_ms-3x_coco.py"

panbench = dict(
    name="panoptic-fpn_r50_3x",
    architecture="PanopticFPN",
    backbone="R-50",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v2.0/panoptic_fpn/panoptic_fpn_r50_fpn_mstrain_3x_coco/panoptic_fpn_r50_fpn_mstrain_3x_coco_20210824_171155-5650f98b.pth",
    params=46027110,
    sha256_prefix="5650f98b",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=42.5, SQ=78.1, RQ=51.7, PQ_th=50.3, SQ_th=81.5, RQ_th=60.3, PQ_st=30.7, SQ_st=73.0, RQ_st=38.8),
)
