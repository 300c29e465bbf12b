"""Tiny random-init transformers panoptic models, saved the way the hub ships them (``save_pretrained`` of the
model and of its processor), with the label names of a dataset's categories.  Offline; CPU inference in
well under a second per image."""

from __future__ import annotations

from pathlib import Path

KINDS = ("mask2former", "maskformer", "detr")


def _swin():
    from transformers import SwinConfig

    return SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                      window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])


def _resnet():
    from transformers import ResNetConfig

    return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic",
                        out_features=["stage1", "stage2", "stage3", "stage4"])


def build(kind: str, names: list[str], out: Path, seed: int = 0, size: int = 64,
          labels: list[str] | None = None) -> Path:
    """A random-init ``kind`` model whose labels are ``names`` (or ``labels``, label id = list index, e.g. DETR's
    hub layout with ``N/A`` placeholders), saved with its processor (images resized to ``size`` on the short
    side) under ``out``."""
    import torch
    from transformers import (
        DetrConfig,
        DetrForSegmentation,
        DetrImageProcessorPil,
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessorPil,
        MaskFormerConfig,
        MaskFormerForInstanceSegmentation,
        MaskFormerImageProcessorPil,
    )

    labels = list(names) if labels is None else list(labels)
    id2label = {i: n for i, n in enumerate(labels)}
    label2id = {n: i for i, n in id2label.items()}
    torch.manual_seed(seed)
    if kind == "mask2former":
        cfg = Mask2FormerConfig(backbone_config=_swin(), feature_size=32, mask_feature_size=32, hidden_dim=32,
                                encoder_feedforward_dim=64, encoder_layers=1, decoder_layers=2, num_attention_heads=2,
                                dim_feedforward=64, num_queries=12, id2label=id2label, label2id=label2id)
        model = Mask2FormerForUniversalSegmentation(cfg)
        proc = Mask2FormerImageProcessorPil(size={"shortest_edge": size, "longest_edge": 2 * size},
                                            size_divisor=32, ignore_index=255)
    elif kind == "maskformer":
        cfg = MaskFormerConfig(backbone_config=_swin(), decoder_config={
            "model_type": "detr", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
            "num_queries": 12}, fpn_feature_size=32, mask_feature_size=32, num_queries=12, id2label=id2label,
            label2id=label2id)
        model = MaskFormerForInstanceSegmentation(cfg)
        proc = MaskFormerImageProcessorPil(size={"shortest_edge": size, "longest_edge": 2 * size}, size_divisor=32,
                                           ignore_index=255)
    elif kind == "detr":
        cfg = DetrConfig(backbone_config=_resnet(), use_timm_backbone=False, d_model=32, encoder_layers=1,
                         decoder_layers=1, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=8,
                         decoder_attention_heads=8, num_queries=12, id2label=id2label, label2id=label2id)
        model = DetrForSegmentation(cfg)
        proc = DetrImageProcessorPil(format="coco_panoptic", size={"shortest_edge": size, "longest_edge": 2 * size})
    else:
        raise ValueError(kind)
    _confident(model, kind)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def _confident(model, kind: str) -> None:
    """Random weights give near-uniform class scores, below the 0.8 threshold: large random classifier weights
    make each query confident in one label (a different one per query), so that segments are predicted."""
    import torch

    head = model.detr.class_labels_classifier if kind == "detr" else model.class_predictor
    with torch.no_grad():
        head.weight.normal_(0, 3.0)
        head.bias.zero_()
