"""Mask2Former R-101 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::mask2former/mask2former_r101_8xb2-lsj-50e_coco-panoptic.py"

panbench = dict(
    name="mask2former_r101",
    architecture="Mask2Former",
    backbone="R-101",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/mask2former/mask2former_r101_8xb2-lsj-50e_coco-panoptic/mask2former_r101_8xb2-lsj-50e_coco-panoptic_20220329_225104-c74d4d71.pth",
    params=63029126,
    sha256_prefix="c74d4d71",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=52.4, SQ=None, RQ=None, PQ_th=None, SQ_th=None, RQ_th=None, PQ_st=None, SQ_st=None, RQ_st=None),
)
