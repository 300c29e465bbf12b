"""The transformers family's registered models: the COCO panoptic checkpoints of transformers' panoptic models on
the Hugging Face hub (``hf:<hub id>``), with the published numbers of the original release each was converted from
(docs/huggingface.md: the sources, and why a number is left out).  The registry
(:func:`panbench.models.registry.all_models`) reads them through ``Family.registered``."""

from __future__ import annotations

from pathlib import Path

from panbench.models.registry import ModelSpec

_M2F = "facebookresearch/Mask2Former MODEL_ZOO.md, COCO panoptic table"
_MF = "facebookresearch/MaskFormer MODEL_ZOO.md, COCO panoptic table"
_ONEFORMER = "SHI-Labs/OneFormer README.md, COCO table"
_DETR = "facebookresearch/detr README.md, COCO panoptic val5k models table"
_HF_TABLE: list[tuple[str, str, str, str, dict[str, float], str | None]] = [
    # name, hub id, architecture, backbone, published, source
    ("hf-mask2former_swin-t", "facebook/mask2former-swin-tiny-coco-panoptic", "Mask2Former", "Swin-T",
     {"PQ": 53.2}, _M2F),
    ("hf-mask2former_swin-s", "facebook/mask2former-swin-small-coco-panoptic", "Mask2Former", "Swin-S",
     {"PQ": 54.6}, _M2F),
    # the zoo has two Swin-B models (IN-1k: 55.1, IN-21k: 56.4); the model card does not say which one this is
    ("hf-mask2former_swin-b", "facebook/mask2former-swin-base-coco-panoptic", "Mask2Former", "Swin-B",
     {}, None),
    ("hf-mask2former_swin-l", "facebook/mask2former-swin-large-coco-panoptic", "Mask2Former", "Swin-L (IN-21k)",
     {"PQ": 57.8}, _M2F),
    ("hf-maskformer_swin-t", "facebook/maskformer-swin-tiny-coco", "MaskFormer", "Swin-T", {"PQ": 47.7}, _MF),
    ("hf-maskformer_swin-s", "facebook/maskformer-swin-small-coco", "MaskFormer", "Swin-S", {"PQ": 49.7}, _MF),
    ("hf-maskformer_swin-b", "facebook/maskformer-swin-base-coco", "MaskFormer", "Swin-B (IN-21k)", {"PQ": 51.8}, _MF),
    ("hf-maskformer_swin-l", "facebook/maskformer-swin-large-coco", "MaskFormer", "Swin-L (IN-21k)", {"PQ": 52.7}, _MF),
    ("hf-oneformer_swin-l", "shi-labs/oneformer_coco_swin_large", "OneFormer", "Swin-L (IN-21k)",
     {"PQ": 57.9, "PQ_th": 64.4, "PQ_st": 48.0}, _ONEFORMER),
    ("hf-detr_r50", "facebook/detr-resnet-50-panoptic", "DETR", "R-50", {"PQ": 43.4}, _DETR),
    ("hf-detr_r101", "facebook/detr-resnet-101-panoptic", "DETR", "R-101", {"PQ": 45.1}, _DETR),
]


# EoMT's COCO panoptic checkpoints (tue-mps/eomt model_zoo/dinov2.md at commit 7bd19dd: input size, FPS on an
# NVIDIA H100 with torch.compile, PQ; the zoo prints no PQ_th / PQ_st, so they are None)
_EOMT = "tue-mps/eomt model_zoo/dinov2.md, COCO panoptic tables (FPS: NVIDIA H100, torch.compile)"
_EOMT_TABLE: list[tuple[str, str, str, str, float, float]] = [
    # name, hub id, backbone, input size, published PQ, published FPS
    ("hf-eomt_s-2x-640", "tue-mps/coco_panoptic_eomt_small_640_2x", "ViT-S (DINOv2)", "640x640", 46.7, 330),
    ("hf-eomt_b-2x-640", "tue-mps/coco_panoptic_eomt_base_640_2x", "ViT-B (DINOv2)", "640x640", 51.6, 261),
    ("hf-eomt_l-640", "tue-mps/coco_panoptic_eomt_large_640", "ViT-L (DINOv2)", "640x640", 56.0, 128),
    ("hf-eomt_g-640", "tue-mps/coco_panoptic_eomt_giant_640", "ViT-g (DINOv2)", "640x640", 57.0, 55),
    ("hf-eomt_l-1280", "tue-mps/coco_panoptic_eomt_large_1280", "ViT-L (DINOv2)", "1280x1280", 58.3, 30),
    ("hf-eomt_g-1280", "tue-mps/coco_panoptic_eomt_giant_1280", "ViT-g (DINOv2)", "1280x1280", 59.2, 12),
]

# EoMT-DINOv3's COCO panoptic checkpoints (tue-mps/eomt model_zoo/dinov3.md at commit 7bd19dd). The zoo's FPS
# column holds two numbers, torch.compile default / torch.compile max-autotune, on an NVIDIA H100: the default
# one is recorded (the protocol of the DINOv2 zoo's FPS). The zoo's download repositories
# (tue-mps/coco_panoptic_eomt_<size>_<input>_dinov3) hold the original code's pytorch_model.bin, weights relative
# to DINOv3's; transformers' convert_eomt_dinov3_to_hf.py turns each into the transformers model and processor
# of the hub id below (tue-mps/eomt-dinov3-coco-panoptic-<size>-<input>), which is what hf: loads
_EOMT_DINOV3 = ("tue-mps/eomt model_zoo/dinov3.md, COCO panoptic table (FPS: NVIDIA H100, torch.compile default; "
                "the zoo's max-autotune FPS not recorded)")
_EOMT_DINOV3_TABLE: list[tuple[str, str, str, str, float, float]] = [
    # name, hub id, backbone, input size, published PQ, published FPS (torch.compile default)
    ("hf-eomt_dinov3_s-2x-640", "tue-mps/eomt-dinov3-coco-panoptic-small-640", "ViT-S (DINOv3)", "640x640", 47.2, 246),
    ("hf-eomt_dinov3_b-2x-640", "tue-mps/eomt-dinov3-coco-panoptic-base-640", "ViT-B (DINOv3)", "640x640", 53.1, 240),
    ("hf-eomt_dinov3_l-640", "tue-mps/eomt-dinov3-coco-panoptic-large-640", "ViT-L (DINOv3)", "640x640", 56.8, 137),
    ("hf-eomt_dinov3_l-1280", "tue-mps/eomt-dinov3-coco-panoptic-large-1280", "ViT-L (DINOv3)", "1280x1280", 58.9,
     33),
]


def models() -> list[ModelSpec]:
    """The registered transformers checkpoints (:data:`_HF_TABLE`, then :data:`_EOMT_TABLE` and
    :data:`_EOMT_DINOV3_TABLE`), in table order."""
    hf = "transformers"
    specs = [ModelSpec(name=name, config=Path(f"hf:{ref}"), architecture=arch, backbone=backbone, ref=ref,
                       published=dict(published), published_source=source, framework=hf)
             for name, ref, arch, backbone, published, source in _HF_TABLE]
    return specs + [ModelSpec(name=name, config=Path(f"hf:{ref}"), architecture="EoMT", backbone=backbone, ref=ref,
                              published={"PQ": pq, "PQ_th": None, "PQ_st": None}, published_source=source,
                              input_size=size, published_fps=fps, published_fps_device="NVIDIA H100",
                              framework=hf)
                    for table, source in ((_EOMT_TABLE, _EOMT), (_EOMT_DINOV3_TABLE, _EOMT_DINOV3))
                    for name, ref, backbone, size, pq, fps in table]
