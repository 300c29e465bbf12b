"""MaskFormer R-50 on COCO panoptic: the MMDetection zoo model, evaluated by panbench."""

_base_ = "mmdet::maskformer/maskformer_r50_ms-16xb1-75e_coco.py"

panbench = dict(
    name="maskformer_r50",
    architecture="MaskFormer",
    backbone="R-50",
    aliases=['maskformer'],
    checkpoint="https://download.openmmlab.com/mmdetection/v3.0/maskformer/maskformer_r50_ms-16xb1-75e_coco/maskformer_r50_ms-16xb1-75e_coco_20230116_095226-baacd858.pth",
    params=45065158,
    sha256_prefix="baacd858",
    # as published by the MMDetection zoo (configs/*/README.md); None where the zoo gives no number
    published=dict(PQ=46.854, SQ=80.617, RQ=57.085, PQ_th=51.089, SQ_th=81.511, RQ_th=61.853, PQ_st=40.463, SQ_st=79.269, RQ_st=49.888),
)
