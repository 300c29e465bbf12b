"""MaskFormer Swin-L on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::maskformer/maskformer_swin-l-p4-w12_64xb1-ms-300e_coco.py"

panbench = dict(
    name="maskformer_swin-l",
    architecture="MaskFormer",
    backbone="Swin-L",
    aliases=[],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/maskformer/maskformer_swin-l-p4-w12_64xb1-ms-300e_coco/maskformer_swin-l-p4-w12_64xb1-ms-300e_coco_20220326_221612-c63ab967.pth",
    params=211571258,
    sha256_prefix="c63ab967",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=53.249, SQ=81.704, RQ=64.231, PQ_th=58.798, SQ_th=82.923, RQ_th=70.282, PQ_st=44.874, SQ_st=79.863, RQ_st=55.097),
)
