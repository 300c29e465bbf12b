"""Mask2Former R-50 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py"

panbench = dict(
    name="mask2former_r50",
    architecture="Mask2Former",
    backbone="R-50",
    aliases=['mask2former'],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic/mask2former_r50_8xb2-lsj-50e_coco-panoptic_20230118_125535-54df384a.pth",
    params=44036998,
    sha256_prefix="54df384a",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=52.0, SQ=None, RQ=None, PQ_th=None, SQ_th=None, RQ_th=None, PQ_st=None, SQ_st=None, RQ_st=None),
)
