"""Tiny random-init transformers panoptic models, saved the way the hub ships them (``save_pretrained`` of the
model and of its processor), with the label names of a dataset's categories.  Offline; CPU inference in
well under a second per image."""

from __future__ import annotations

from pathlib import Path

KINDS = ("mask2former", "maskformer", "detr", "oneformer", "eomt")
EOMT_KINDS = ("eomt", "eomt_dinov3")  # one processor (EomtImageProcessor) and one post-processing
BUILDS = (*KINDS, "eomt_dinov3")  # every model type build() makes


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
                                dim_feedforward=64, num_queries=4, id2label=id2label, label2id=label2id)
        model = Mask2FormerForUniversalSegmentation(cfg)
        proc = Mask2FormerImageProcessorPil(size={"shortest_edge": size, "longest_edge": 2 * size},
                                            size_divisor=32, ignore_index=255)
    elif kind == "maskformer":
        cfg = MaskFormerConfig(backbone_config=_swin(), decoder_config={
            "model_type": "detr", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
            "num_queries": 4}, fpn_feature_size=32, mask_feature_size=32, num_queries=4, id2label=id2label,
            label2id=label2id)
        model = MaskFormerForInstanceSegmentation(cfg)
        proc = MaskFormerImageProcessorPil(size={"shortest_edge": size, "longest_edge": 2 * size}, size_divisor=32,
                                           ignore_index=255)
    elif kind == "detr":
        cfg = DetrConfig(backbone_config=_resnet(), use_timm_backbone=False, d_model=32, encoder_layers=1,
                         decoder_layers=1, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=8,
                         decoder_attention_heads=8, num_queries=4, id2label=id2label, label2id=label2id)
        model = DetrForSegmentation(cfg)
        proc = DetrImageProcessorPil(format="coco_panoptic", size={"shortest_edge": size, "longest_edge": 2 * size})
    elif kind == "oneformer":
        return _oneformer(labels, id2label, label2id, out, size)
    elif kind == "eomt":
        return _eomt(id2label, label2id, out, size)
    elif kind == "eomt_dinov3":
        return _eomt_dinov3(id2label, label2id, out, size)
    else:
        raise ValueError(kind)
    _confident(model, kind)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def detr_hub_layout(labels: list[str], out: Path, backbone: str = "resnet10t", seed: int = 0, size: int = 64) -> Path:
    """A random-init ``DetrForSegmentation`` laid out as the hub's ``facebook/detr-resnet-50-panoptic`` is: a timm
    backbone named by ``config.json``'s ``use_timm_backbone``, ``backbone`` (``backbone``: a timm ResNet; the
    hub's is ``resnet50``), ``use_pretrained_backbone``, ``dilation`` and ``num_channels`` keys (no
    ``backbone_config``: transformers builds the timm backbone's from them), ``labels`` indexed by label id (the
    hub's: by COCO category id, ``N/A`` for the unused ids), and the hub's legacy ``preprocessor_config.json``
    (``DetrFeatureExtractor``, ``format`` ``coco_panoptic``, ``size`` and ``max_size``).  Needs timm (and
    torchvision, which timm imports)."""
    import json

    import torch
    from transformers import DetrConfig, DetrForSegmentation

    id2label = {i: n for i, n in enumerate(labels)}
    torch.manual_seed(seed)
    cfg = DetrConfig(use_timm_backbone=True, backbone=backbone, use_pretrained_backbone=False, dilation=False,
                     d_model=32, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=64, decoder_ffn_dim=64,
                     encoder_attention_heads=8, decoder_attention_heads=8, num_queries=4, id2label=id2label,
                     label2id={n: i for i, n in id2label.items()})
    model = DetrForSegmentation(cfg)
    _confident(model, "detr")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    path = out / "config.json"
    saved = json.loads(path.read_text())
    saved.pop("backbone_config")  # the hub's config names the timm backbone by these keys instead
    saved.update(use_timm_backbone=True, backbone=backbone, use_pretrained_backbone=False, dilation=False,
                 num_channels=3)
    path.write_text(json.dumps(saved, indent=2))
    # the hub's file is a feature extractor's, of transformers 4's first DETR: size and max_size as two numbers
    # (800 and 1333 there), which transformers 5 reads as shortest_edge and longest_edge
    (out / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "DetrFeatureExtractor",
        "format": "coco_panoptic", "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        "max_size": 2 * size, "size": size}, indent=2))
    return out


def _oneformer(labels: list[str], id2label: dict, label2id: dict, out: Path, size: int) -> Path:
    """OneFormer: its processor holds a CLIP tokenizer for the task prompt; a tiny one is written here (a
    vocabulary of single characters, no merges: ids are deterministic, which is all a random model needs)."""
    import json

    from transformers import (
        CLIPTokenizer,
        OneFormerConfig,
        OneFormerForUniversalSegmentation,
        OneFormerImageProcessorPil,
        OneFormerProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab: dict[str, int] = {}
    for t in ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]:
        vocab.setdefault(t, len(vocab))
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(vocab_file=str(out / "vocab.json"), merges_file=str(out / "merges.txt"))
    cfg = OneFormerConfig(backbone_config=_swin(), num_queries=20, conv_dim=32, mask_dim=32, hidden_dim=32,
                          encoder_feedforward_dim=64, encoder_layers=1, decoder_layers=2, num_attention_heads=2,
                          dim_feedforward=64, query_dec_layers=1, text_encoder_width=32, text_encoder_num_layers=1,
                          text_encoder_vocab_size=len(vocab), id2label=id2label, label2id=label2id)
    model = OneFormerForUniversalSegmentation(cfg)
    _confident(model, "oneformer")
    ip = OneFormerImageProcessorPil(size={"shortest_edge": size, "longest_edge": 2 * size},
                                    num_text=cfg.num_queries - cfg.text_encoder_n_ctx)
    model.save_pretrained(out)
    OneFormerProcessor(image_processor=ip, tokenizer=tok).save_pretrained(out)
    return out


def _eomt(id2label: dict, label2id: dict, out: Path, size: int) -> Path:
    """EoMT as tue-mps ships it: ``image_processor_type`` ``EomtImageProcessorFast`` with ``do_pad`` (images resized
    to fit a ``size`` square and padded to it); without torchvision transformers loads its PIL twin from it."""
    import json

    from transformers import EomtConfig, EomtForUniversalSegmentation, EomtImageProcessorPil

    cfg = EomtConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=size, patch_size=16,
                     num_blocks=1, num_queries=4, num_register_tokens=0, id2label=id2label, label2id=label2id)
    model = EomtForUniversalSegmentation(cfg)
    _confident(model, "eomt")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    EomtImageProcessorPil(size={"shortest_edge": size, "longest_edge": size}, do_pad=True).save_pretrained(out)
    pre = out / "preprocessor_config.json"
    cfg_json = json.loads(pre.read_text())
    cfg_json["image_processor_type"] = "EomtImageProcessorFast"
    pre.write_text(json.dumps(cfg_json, indent=2))
    return out


def _eomt_dinov3(id2label: dict, label2id: dict, out: Path, size: int) -> Path:
    """EoMT-DINOv3 as transformers' convert_eomt_dinov3_to_hf.py writes it for the hub: the model, and
    ``EomtImageProcessorFast(size={"shortest_edge": S, "longest_edge": S}, do_split_image=False, do_pad=True)``
    (its ``image_processor_type`` is the fast processor's; without torchvision transformers loads its PIL twin)."""
    import json

    from transformers import EomtDinov3Config, EomtDinov3ForUniversalSegmentation, EomtImageProcessorPil

    cfg = EomtDinov3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           image_size=size, patch_size=16, num_blocks=1, num_queries=4, num_register_tokens=1,
                           rope_parameters={"rope_theta": 100.0}, id2label=id2label, label2id=label2id)
    model = EomtDinov3ForUniversalSegmentation(cfg)
    _confident(model, "eomt_dinov3")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    EomtImageProcessorPil(size={"shortest_edge": size, "longest_edge": size}, do_split_image=False,
                          do_pad=True).save_pretrained(out)
    pre = out / "preprocessor_config.json"
    cfg_json = json.loads(pre.read_text())
    cfg_json["image_processor_type"] = "EomtImageProcessorFast"
    pre.write_text(json.dumps(cfg_json, indent=2))
    return out


def _confident(model, kind: str) -> None:
    """Random weights give near-uniform class scores, below the 0.8 threshold: large random classifier weights
    make each query confident in one label (a different one per query), and larger mask embeddings sharpen the
    masks, so that (with few queries) segments pass the overlap threshold and are predicted."""
    import torch

    if kind == "detr":
        head = model.detr.class_labels_classifier
    elif kind == "oneformer":
        head = model.model.transformer_module.decoder.class_embed
    else:
        head = model.class_predictor
    with torch.no_grad():
        head.weight.normal_(0, 3.0)
        head.bias.zero_()
        head.bias[-1] = -30.0  # never "no object" (DETR's near-identical queries all chose it)
        for i, name in model.config.id2label.items():  # nor a placeholder label, as in a trained model
            if name == "N/A":
                head.bias[int(i)] = -30.0
        for name, p in model.named_parameters():
            if ("mask_embed" in name or "mask_head" in name) and name.endswith("weight"):
                p.mul_(2.2)


# the original releases' settings (Mask2Former's COCO panoptic config: OBJECT_MASK_THRESHOLD 0.8,
# OVERLAP_THRESHOLD 0.8; DETR's PostProcessPanoptic threshold 0.85), written out independently of the
# descriptions of panbench/models/hf/types.py
PUBLISHED = {"mask2former": dict(threshold=0.8, mask_threshold=0.5, overlap_mask_area_threshold=0.8),
             "maskformer": dict(threshold=0.8, mask_threshold=0.5, overlap_mask_area_threshold=0.8),
             "oneformer": dict(threshold=0.8, mask_threshold=0.5, overlap_mask_area_threshold=0.8),
             "detr": dict(threshold=0.85, mask_threshold=0.5, overlap_mask_area_threshold=0.8),
             # tue-mps/eomt training/mask_classification_panoptic.py: mask_thresh=0.8 (class score), overlap_thresh=0.8
             "eomt": dict(threshold=0.8, mask_threshold=0.5, overlap_mask_area_threshold=0.8),
             "eomt_dinov3": dict(threshold=0.8, mask_threshold=0.5, overlap_mask_area_threshold=0.8)}


def predictions(d: Path, ds, kind: str, spelled: dict[str, str], backend: str | None = "pil"):
    """What a user of transformers computes by hand, per image of ``ds``: processor, model, post-processing with
    :data:`PUBLISHED` and stuff labels fused; labels to category ids through ``spelled`` (model label name ->
    dataset name), labels not in it (placeholders) left VOID.  Yields (sample, segment-id map, segments_info).
    ``backend``: the processor's, as transformers' ``from_pretrained(backend=...)`` takes it (``"pil"``,
    ``"torchvision"``; None: transformers' choice, torchvision's processor whenever torchvision is installed)."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForUniversalSegmentation, AutoProcessor

    from panbench.models.numerics import layout_free

    proc = (AutoProcessor if kind == "oneformer" else AutoImageProcessor).from_pretrained(
        d, **({} if backend is None else {"backend": backend}))
    task = {"task_inputs": ["panoptic"]} if kind == "oneformer" else {}
    model = AutoModelForUniversalSegmentation.from_pretrained(d).eval()
    # the forward's convolutions as panbench computes them on the CPU (panbench.models.numerics), so that the two sides
    # differ in their post-processing alone
    layout_free(model)
    cat = dict(zip(ds.categories.names, ds.categories.ids))
    thing = dict(zip(ds.categories.ids, ds.categories.isthing))
    label_cat = {i: cat[spelled[n]] for i, n in model.config.id2label.items() if n in spelled}
    stuff = {i for i, c in label_cat.items() if not thing[c]}
    for s in ds.samples:
        img = Image.open(s.image_path).convert("RGB")
        with torch.no_grad():
            out = model(**proc(images=img, return_tensors="pt", **task))
        fuse = {"stuff_classes": sorted(stuff)} if kind in EOMT_KINDS else {"label_ids_to_fuse": stuff}
        r = proc.post_process_panoptic_segmentation(out, target_sizes=[(s.height, s.width)], **fuse,
                                                    **PUBLISHED[kind])[0]
        shift = 1 if kind in EOMT_KINDS else 0  # EoMT numbers segments from 0 (-1: none), the others from 1 (0: none)
        seg = r["segmentation"].numpy().astype(np.int64) + shift
        seg[seg < 0] = 0
        segs = {}
        for info in r["segments_info"]:
            sid = info["id"] + shift
            if info["label_id"] in label_cat:
                segs[sid] = {"id": sid, "category_id": label_cat[info["label_id"]], "iscrowd": 0}
            else:
                seg[seg == sid] = 0
        yield s, seg.astype(np.uint32), list(segs.values())


def reference(d: Path, ds, kind: str, spelled: dict[str, str], backend: str | None = "pil") -> dict:
    """:func:`predictions` scored by panbench's evaluator (itself checked against panopticapi elsewhere)."""
    from panbench.pq.accumulator import PanopticAccumulator
    from panbench.pq.evaluator import score_pair
    from panbench.pq.png import read_ids

    ev = PanopticAccumulator(ds.categories)
    for s, seg, segs in predictions(d, ds, kind, spelled, backend):
        ev.add(score_pair(ev.categories, read_ids(s.gt_png, "gt"), s.gt_ann["segments_info"], seg, segs,
                          f"image {s.image_id}"))
    return ev.evaluate()


def write_predictions(d: Path, ds, kind: str, spelled: dict[str, str], out: Path) -> tuple[Path, Path]:
    """:func:`predictions` in the COCO panoptic format (PNG ids as R + 256 G + 256^2 B, one JSON)."""
    import json

    import numpy as np
    from PIL import Image

    png_dir = out / "pred"
    png_dir.mkdir(parents=True, exist_ok=True)
    anns = []
    for s, seg, segs in predictions(d, ds, kind, spelled):
        name = f"{s.image_id}.png"
        rgb = np.stack([seg % 256, seg // 256 % 256, seg // 65536], -1).astype(np.uint8)
        Image.fromarray(rgb).save(png_dir / name)
        anns.append({"image_id": s.image_id, "file_name": name, "segments_info": segs})
    (out / "pred.json").write_text(json.dumps({"annotations": anns}))
    return out / "pred.json", png_dir
