"""PanopticFPN R-50 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py"

panbench = dict(
    name="panoptic-fpn_r50_1x",
    architecture="PanopticFPN",
    backbone="R-50",
    aliases=['panoptic-fpn'],
    checkpoint="https://download.openmmlab.com/mmdetection/v2.0/panoptic_fpn/panoptic_fpn_r50_fpn_1x_coco/panoptic_fpn_r50_fpn_1x_coco_20210821_101153-9668fd13.pth",
    params=46027110,
    sha256_prefix="9668fd13",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=40.2, SQ=77.8, RQ=49.3, PQ_th=47.8, SQ_th=80.9, RQ_th=57.5, PQ_st=28.9, SQ_st=73.1, RQ_st=37.0),
)
