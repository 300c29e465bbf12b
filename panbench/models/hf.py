"""Hugging Face ``transformers`` panoptic models: ``panbench eval --model hf:<hub id or directory>``.

A model is loaded with ``AutoModelForUniversalSegmentation`` and its own processor (``AutoImageProcessor``;
OneFormer's ``AutoProcessor``, image processor and tokenizer), and its outputs go through the processor's
``post_process_panoptic_segmentation`` with the settings of the original release (:data:`SETTINGS`).
:class:`HFPanoptic` wraps model and processor in the interface the eval loop already drives for mmdet
models (``test_step``, ``panoptic_fusion_head.predict``, ``.to``, ``.parameters``, and mmdet's panoptic
encoding ``label + instance * 1000`` with VOID ``num_classes``), so that streaming scoring, the resume
cache, timings, forked CPU processes, torchrun, batches, AMP and the out-of-memory fallback run the same
code for both frameworks.

The model's ``id2label`` maps to the dataset's categories by name (:func:`map_labels`); the rule is
written down in docs/huggingface.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F

from panbench.errors import PanbenchError
from panbench.models.fusion import INSTANCE_OFFSET

# post_process_panoptic_segmentation's settings per model type: those of the original releases' COCO panoptic
# inference (Mask2Former/MaskFormer/OneFormer configs: OBJECT_MASK_THRESHOLD 0.8, OVERLAP_THRESHOLD 0.8, one
# segment per stuff class; DETR's PostProcessPanoptic: threshold 0.85, stuff of a class merged). The mask
# threshold is transformers' 0.5 (the binarisation the originals use for a mask's area). Stuff labels are fused.
SETTINGS: dict[str, dict[str, float]] = {
    "mask2former": {"threshold": 0.8, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
    "maskformer": {"threshold": 0.8, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
    "oneformer": {"threshold": 0.8, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
    "detr": {"threshold": 0.85, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
}
ARCHITECTURES = {"mask2former": "Mask2Former", "maskformer": "MaskFormer", "oneformer": "OneFormer", "detr": "DETR"}
MASK_CLASSIFICATION = ("mask2former", "maskformer", "oneformer")  # class logits + mask logits per query
MASK_FIELDS = ("masks_queries_logits", "pred_masks")  # per-query mask logits, at a fraction of the padded input
# what post_process_panoptic_segmentation reads (transformers 4.4x-5.x): the rest (hidden states, pixel-decoder
# features) is never copied to float32 per image
POST_FIELDS = ("class_queries_logits", "logits", "pred_boxes", *MASK_FIELDS)
PLACEHOLDERS = ("n/a",)  # DETR's label name for the COCO ids no category uses: never predicted, never mapped
WEIGHT_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.model"]  # what a model directory needs from the hub


def _norm(name: str) -> str:
    """Case, surrounding and repeated spaces, and ``_`` for a space do not count."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _stem(name: str) -> str:
    """:func:`_norm` without COCO panoptic's ``-merged`` and then ``-other`` suffixes (``wall-other-merged``: wall)."""
    n = _norm(name)
    for suffix in ("-merged", "-other"):
        n = n[: -len(suffix)] if n.endswith(suffix) else n
    return n


def _few(items: list[str], k: int = 5) -> str:
    return ", ".join(repr(x) for x in items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def map_labels(id2label: dict[int, str], categories: Any, where: str) -> tuple[list[int], list[int], list[int]]:
    """The model's labels -> the dataset's categories, by name: the exact name; else the one category whose
    :func:`_norm` form is the label's; else the one category whose :func:`_stem` is the label's.  DETR's
    ``N/A`` placeholders are skipped.  Returns (the model label ids in panbench's label order: things first,
    then stuff, each by label id; the category id of each; the skipped label ids).  Refuses labels that map
    to no category (naming them) and two labels mapping to one category."""
    exact = dict(zip(categories.names, categories.ids))
    by: dict[str, dict[str, list[int]]] = {"norm": {}, "stem": {}}
    for n, cid in zip(categories.names, categories.ids):
        by["norm"].setdefault(_norm(n), []).append(cid)
        by["stem"].setdefault(_stem(n), []).append(cid)
    mapping: dict[int, int] = {}
    unmapped, skipped = [], []
    for hid, name in sorted((int(k), v) for k, v in id2label.items()):
        if _norm(name) in PLACEHOLDERS:
            skipped.append(hid)
            continue
        cid = exact.get(name)
        for kind, key in (("norm", _norm(name)), ("stem", _stem(name))):
            if cid is None and len(by[kind].get(key, [])) == 1:
                cid = by[kind][key][0]
        if cid is None:
            unmapped.append(name)
        else:
            mapping[hid] = cid
    if unmapped:
        raise PanbenchError(f"{where}: {len(unmapped)} of the model's {len(id2label)} labels are not categories of "
                            f"the dataset: {_few(unmapped)}; evaluate on the dataset the model was trained for "
                            "(--dataset) (label mapping rule: docs/huggingface.md)")
    owner: dict[int, int] = {}
    for hid, cid in mapping.items():
        if cid in owner:
            raise PanbenchError(f"{where}: the model's labels {id2label[owner[cid]]!r} and {id2label[hid]!r} both map "
                                f"to category {cid}; the model's labels must name distinct categories")
        owner[cid] = hid
    isthing = dict(zip(categories.ids, categories.isthing))
    order = sorted(mapping, key=lambda h: (not isthing[mapping[h]], h))
    return order, [mapping[h] for h in order], skipped


def resolve_dir(ref: str, any_rank: Callable[[bool], bool] | None = None) -> tuple[Path, str | None]:
    """A local model directory, or the hub snapshot of ``ref`` (downloaded into huggingface_hub's cache when
    online; under torchrun by local rank 0 first).  Returns (directory, hub id or None)."""
    p = Path(ref).expanduser()
    if p.is_dir():
        return p, None
    if p.exists() or ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise PanbenchError(f"{ref}: model directory not found; pass a directory written by save_pretrained "
                            "(config.json, weights, preprocessor_config.json) or a hub id such as "
                            "facebook/mask2former-swin-tiny-coco-panoptic")
    error: PanbenchError | None = None
    d: Path | None = None
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        try:
            d = _snapshot(ref)
        except PanbenchError as e:
            error = e
    if any_rank is not None and any_rank(error is not None) and error is None:
        raise PanbenchError(f"hf:{ref}: the download on local rank 0 failed (its message is in its log)")
    if error is not None:
        raise error
    return (d or _snapshot(ref)), ref


def _snapshot(ref: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise PanbenchError("hf: models need huggingface_hub and transformers: .venv/bin/pip install transformers "
                            "(make setup installs them)") from e
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported: read it again here
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    try:
        d = Path(snapshot_download(ref, allow_patterns=WEIGHT_PATTERNS, local_files_only=offline))
        if not any(d.glob("*.safetensors")):  # an older repository: PyTorch's pickle format only
            d = Path(snapshot_download(ref, allow_patterns=[*WEIGHT_PATTERNS, "*.bin"], local_files_only=offline))
    except Exception as e:  # offline and not cached, unknown id, gated repository, network errors
        msg = "HF_HUB_OFFLINE is set" if offline else \
            f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:100]}"
        raise PanbenchError(f"hf:{ref}: not in the Hugging Face cache and not downloadable here ({msg}); download it "
                            f"where the hub is reachable (hf download {ref}) or pass a local directory") from e
    return d


def digest(d: Path) -> str:
    """sha256 over the directory's files (names and contents; README and dot files left out)."""
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.name.lower() != "readme.md":
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


class _Fusion:
    """The post-processing stage the eval loop times (``panoptic_fusion_head.predict``): the processor's
    ``post_process_panoptic_segmentation`` per image, its segments re-encoded in panbench's label order.
    Mask-classification models also take ``--postprocess maskwise|argmax``
    (:func:`panbench.models.fusion.install_postprocess` sets ``panoptic_postprocess``)."""

    def __init__(self, kind: str, post: Callable, settings: dict, order: list[int], n_things: int,
                 fuse: set[int], n_hf: int) -> None:
        self.post, self.settings, self.fuse = post, settings, fuse
        self.label_of = {hid: k for k, hid in enumerate(order)}  # model label id -> panbench label
        self.num_classes, self.num_things_classes = len(order), n_things
        if kind in MASK_CLASSIFICATION and len(order) == n_hf:
            self.panoptic_postprocess: Callable | None = None  # replaced by --postprocess maskwise|argmax
            self.columns = [*order, n_hf]  # class logits in panbench's label order, "no object" last

    def predict(self, outputs: Any, sizes: list[tuple[int, int]], padded: tuple[int, int],
                targets: list[tuple[int, int]]) -> list[Any]:
        out = []
        for i, (size, target) in enumerate(zip(sizes, targets)):
            one = _one_image(outputs, i, size, padded)
            if getattr(self, "panoptic_postprocess", None) is not None:
                masks = F.interpolate(one.masks_queries_logits, size=target, mode="bilinear", align_corners=False)
                pan = self.panoptic_postprocess(one.class_queries_logits[0][:, self.columns], masks[0]).sem_seg[0]
            else:
                r = self.post(one, target_sizes=[target], label_ids_to_fuse=self.fuse, **self.settings)[0]
                pan = self.encode(r["segmentation"], r["segments_info"])
            out.append(SimpleNamespace(pred_panoptic_seg=SimpleNamespace(sem_seg=pan[None])))
        return out

    def encode(self, seg: torch.Tensor, segments: list[dict]) -> torch.Tensor:
        """transformers' segment-id map (0 or -1: no segment) -> ``label + k * 1000`` per segment, VOID elsewhere."""
        seg = seg.to(torch.int64)
        pan = torch.full(seg.shape, self.num_classes, dtype=torch.int32, device=seg.device)
        seen: set[int] = set()
        for s in segments:  # a fused stuff class lists one entry per query, all with one id
            if s["id"] in seen:
                continue
            seen.add(s["id"])
            label = self.label_of.get(int(s["label_id"]))
            if label is not None:  # a placeholder label (DETR's N/A) stays VOID
                pan.masked_fill_(seg == s["id"], label + len(seen) * INSTANCE_OFFSET)
        return pan


def _one_image(outputs: Any, i: int, size: tuple[int, int], padded: tuple[int, int]) -> SimpleNamespace:
    """Image ``i`` of a batch's outputs (:data:`POST_FIELDS`, float32), its mask logits cropped to the image's own
    processed size when the batch padded it further (a batch of one is passed on as transformers made it)."""
    fields = {}
    for k, v in outputs.items():
        if k in POST_FIELDS and isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] > i:
            v = v[i:i + 1].float() if v.is_floating_point() else v[i:i + 1]
            if k in MASK_FIELDS and tuple(size) != tuple(padded):
                mh, mw = v.shape[-2:]
                v = v[..., : math.ceil(size[0] * mh / padded[0]), : math.ceil(size[1] * mw / padded[1])]
            fields[k] = v
    return SimpleNamespace(**fields)


class HFPanoptic(torch.nn.Module):
    """A transformers panoptic model and its processor behind mmdet's inference interface."""

    def __init__(self, model: Any, processor: Any, kind: str, fusion: _Fusion) -> None:
        super().__init__()
        self.model, self.processor, self.kind = model, processor, kind
        self.panoptic_fusion_head = fusion

    def pipeline(self, item: dict[str, Any]) -> dict[str, Any]:
        """Image file -> the processor's tensors for it (run in the DataLoader workers) and its size."""
        from PIL import Image

        if "img" in item:  # an RGB array decoded (and corrupted) before the pipeline (panbench.robustness)
            img = Image.fromarray(item["img"])
        else:
            with Image.open(item["img_path"]) as im:
                img = im.convert("RGB")
        kw = {"task_inputs": ["panoptic"]} if self.kind == "oneformer" else {}
        enc = self.processor(images=img, return_tensors="pt", **kw)
        out: dict[str, Any] = {k: v[0] for k, v in enc.items() if isinstance(v, torch.Tensor)}
        out["height"], out["width"] = img.height, img.width
        return out

    def test_step(self, data: dict[str, list]) -> list[Any]:
        """A collated batch (mmengine's ``pseudo_collate``: lists per key): pad, forward, post-process."""
        pv = data["pixel_values"]
        sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in pv]
        h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        dev = next(self.model.parameters()).device
        pixels = pv[0].new_zeros((len(pv), pv[0].shape[0], h, w))
        mask = torch.zeros((len(pv), h, w), dtype=torch.int64)
        for k, (t, (th, tw)) in enumerate(zip(pv, sizes)):
            pixels[k, :, :th, :tw] = t
            mask[k, :th, :tw] = data["pixel_mask"][k] if "pixel_mask" in data else 1
        inputs = {"pixel_values": pixels.to(dev), "pixel_mask": mask.to(dev)}
        if "task_inputs" in data:
            inputs["task_inputs"] = torch.stack(data["task_inputs"]).to(dev)
        outputs = self.model(**inputs)
        targets = list(zip((int(x) for x in data["height"]), (int(x) for x in data["width"])))
        return self.panoptic_fusion_head.predict(outputs, sizes, (h, w), targets)


@dataclass
class HFModel:
    """What :func:`load` gives the evaluation: the wrapped model and what the run records about it."""

    module: HFPanoptic
    label2cat: list[int]
    names: list[str]  # the model's label names in panbench's label order
    directory: Path
    hub_id: str | None
    sha256: str
    cfg_text: str
    cfg_hash: str
    architecture: str
    backbone: str


def load(ref: str, categories: Any, device: str, any_rank: Callable[[bool], bool] | None = None) -> HFModel:
    """``hf:<ref>`` -> the model on ``device`` with its processor, label mapping and post-processing settings."""
    d, hub_id = resolve_dir(ref, any_rank)
    where = f"hf:{ref}"
    try:
        import transformers
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForUniversalSegmentation, AutoProcessor
    except ImportError as e:
        raise PanbenchError("hf: models need the transformers package: .venv/bin/pip install transformers "
                            "(make setup installs it)") from e
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its weight-loading bars and warnings would cover panbench's output
    transformers_logging.set_verbosity_error()
    cfg = _step(lambda: AutoConfig.from_pretrained(d), d, "config.json does not load")
    kind = cfg.model_type
    from transformers.models.auto.modeling_auto import MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES as PANOPTIC

    if kind not in PANOPTIC:
        raise PanbenchError(f"{where}: model type '{kind}' is not a panoptic segmentation model (transformers' "
                            "AutoModelForUniversalSegmentation: Mask2Former, MaskFormer, OneFormer, DETR, ...)")
    if kind == "oneformer" and importlib.util.find_spec("torchvision") is None:
        _oneformer_resize_without_torchvision()
    auto = AutoProcessor if kind == "oneformer" else AutoImageProcessor
    processor = _step(lambda: auto.from_pretrained(d), d, "its processor does not load (preprocessor_config.json)")
    # float32 whatever dtype the weights were saved in (transformers 5 loads them as saved, "auto"): --amp is
    # the one way to run reduced precision, and the record's "amp" says which
    dtype_kw = "dtype" if _version(transformers.__version__) >= (4, 56) else "torch_dtype"
    model = _step(lambda: AutoModelForUniversalSegmentation.from_pretrained(d, **{dtype_kw: torch.float32}), d,
                  "the model does not load")
    model.eval()
    order, label2cat, skipped = map_labels(cfg.id2label, categories, where)
    if len(order) >= INSTANCE_OFFSET:  # labels are carried in mmdet's encoding, label + instance * 1000
        raise PanbenchError(f"{where}: {len(order)} labels; panbench's panoptic encoding takes at most 999")
    isthing = dict(zip(categories.ids, categories.isthing))
    fuse = {h for h, c in zip(order, label2cat) if not isthing[c]}
    settings = SETTINGS.get(kind, {})
    image_processor = getattr(processor, "image_processor", processor)
    fusion = _Fusion(kind, image_processor.post_process_panoptic_segmentation, settings, order,
                     sum(bool(isthing[c]) for c in label2cat), fuse, len(cfg.id2label))
    module = HFPanoptic(model, processor, kind, fusion).to(device)
    meta = {k: v for k, v in cfg.to_dict().items() if k not in ("_name_or_path", "transformers_version")}
    text = json.dumps({"framework": "transformers", "model_type": kind, "model_class": type(model).__name__,
                       "processor_class": type(image_processor).__name__, "config": meta,
                       "processor": image_processor.to_dict(), "postprocess": settings,
                       "label_ids_to_fuse": sorted(fuse), "skipped_labels": skipped,
                       "transformers": transformers.__version__}, sort_keys=True, indent=1, default=str)
    backbone = getattr(getattr(cfg, "backbone_config", None), "model_type", None) or "?"
    return HFModel(module, label2cat, [cfg.id2label[h] for h in order], d, hub_id, digest(d), text,
                   hashlib.sha256(text.encode()).hexdigest()[:16], ARCHITECTURES.get(kind, kind), backbone)


def _version(v: str) -> tuple[int, ...]:
    """``"4.56.0.dev0"`` -> ``(4, 56)``: major and minor."""
    return tuple(int(x) for x in (v.split(".") + ["0"])[:2] if x.isdigit())


def _step(fn: Callable[[], Any], d: Path, what: str) -> Any:
    """One loading step; its failure in one line (timm missing for DETR's hub checkpoints, a bad file ...)."""
    try:
        return fn()
    except Exception as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        hint = "pip install timm (DETR's hub checkpoints use a timm backbone)" if "timm" in msg.lower() else \
            "check the directory (save_pretrained writes config.json, the weights and preprocessor_config.json)"
        raise PanbenchError(f"{d}: {what} ({type(e).__name__}: {msg}); {hint}") from e


def _oneformer_resize_without_torchvision() -> None:
    """transformers' OneFormer post-processing (PIL backend, ``compute_segments``) resizes the mask
    probabilities with torchvision's ``tvF.resize`` even when torchvision is absent (a NameError, transformers
    5.23).  On a float tensor, torchvision's bilinear resize is ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False, antialias=True)``; give the module exactly that under the name it calls."""
    import types

    import torch.nn.functional as F
    from transformers.models.oneformer import image_processing_pil_oneformer as pil

    if hasattr(pil, "tvF"):
        return

    def resize(x, size, interpolation="bilinear", antialias=True):
        return F.interpolate(x, size=list(size), mode="bilinear", align_corners=False, antialias=antialias)

    pil.tvF = types.SimpleNamespace(resize=resize, InterpolationMode=types.SimpleNamespace(BILINEAR="bilinear"))

