"""Mask2Former Swin-T on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py"

panbench = dict(
    name="mask2former_swin-t",
    architecture="Mask2Former",
    backbone="Swin-T",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic_20220326_224553-3ec9e0ae.pth",
    params=47435264,
    sha256_prefix="3ec9e0ae",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=53.4, SQ=None, RQ=None, PQ_th=None, SQ_th=None, RQ_th=None, PQ_st=None, SQ_st=None, RQ_st=None),
)
