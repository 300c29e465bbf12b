"""Mask2Former Swin-B on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::mask2former/mask2former_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py"

panbench = dict(
    name="mask2former_swin-b",
    architecture="Mask2Former",
    backbone="Swin-B",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/mask2former/mask2former_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic/mask2former_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic_20220331_002244-8a651d82.pth",
    params=106917822,
    sha256_prefix="8a651d82",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=55.1, SQ=None, RQ=None, PQ_th=None, SQ_th=None, RQ_th=None, PQ_st=None, SQ_st=None, RQ_st=None),
)
