"""Mask2Former Swin-L (IN-21k) on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::mask2former/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py"

panbench = dict(
    name="mask2former_swin-l-in21k",
    architecture="Mask2Former",
    backbone="Swin-L (IN-21k)",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/mask2former/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic_20220407_104949-82f8d28d.pth",
    params=215535610,
    sha256_prefix="82f8d28d",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=57.6, SQ=None, RQ=None, PQ_th=None, SQ_th=None, RQ_th=None, PQ_st=None, SQ_st=None, RQ_st=None),
)
