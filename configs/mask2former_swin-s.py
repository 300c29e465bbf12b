"""Mask2Former Swin-S on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::mask2former/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py"

panbench = dict(
    name="mask2former_swin-s",
    architecture="Mask2Former",
    backbone="Swin-S",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/mask2former/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco-panoptic/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco-panoptic_20220329_225200-4a16ded7.pth",
    params=68753168,
    sha256_prefix="4a16ded7",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=54.5, SQ=None, RQ=None, PQ_th=None, SQ_th=None, RQ_th=None, PQ_st=None, SQ_st=None, RQ_st=None),
)
