"""Hugging Face ``transformers`` panoptic models: ``panbench eval --model hf:<hub id or directory>``.

A model is loaded with ``AutoModelForUniversalSegmentation`` and its own processor (``AutoImageProcessor``;
OneFormer's ``AutoProcessor``, image processor and tokenizer), and its outputs go through the processor's
``post_process_panoptic_segmentation`` with the settings of the original release: what panbench knows of each
model type is its description, :data:`panbench.models.hf.types.TYPES` (a type without one is refused).
The loaded model is a :class:`panbench.models.hf.model.HFPanoptic`, the transformers family's
:class:`panbench.models.protocol.PanopticModel`: streaming scoring, the resume cache, timings, forked CPU
processes, torchrun, batches, AMP and the out-of-memory fallback run the same code for both families.

Where a model comes from: :mod:`panbench.models.hf.hub`; the model's ``id2label`` maps to the dataset's
categories by name (:func:`panbench.models.hf.labels.map_labels`; the rule is written down in docs/huggingface.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from panbench.errors import PanbenchError
from panbench.models.encoding import INSTANCE_OFFSET
from panbench.models.hf.hub import digest, resolve_dir
from panbench.models.hf.labels import map_labels
from panbench.models.hf.model import HFPanoptic, _Fusion
from panbench.models.hf.types import TYPES, describe

# the record's architecture per model type (panbench/models/hf/types.py's descriptions)
ARCHITECTURES = {kind: t.architecture for kind, t in TYPES.items()}


@dataclass
class HFModel:
    """What :func:`load_hf_model` gives the evaluation: the wrapped model and what the run records about it."""

    module: HFPanoptic  # the model as a PanopticModel (its label names and category ids included)
    directory: Path
    hub_id: str | None
    sha256: str
    cfg_text: str
    cfg_hash: str
    architecture: str
    backbone: str
    packages: tuple[str, ...] = ()  # what it runs on beyond transformers and torch (backbone_packages)


def backbone_packages(cfg: Any) -> tuple[str, ...]:
    """The packages a model's backbone is built with beyond transformers: ``timm`` when its config builds a timm
    backbone (DETR's hub checkpoints: ``use_timm_backbone``, a ``timm_backbone`` backbone config)."""
    kind = str(getattr(getattr(cfg, "backbone_config", None), "model_type", None) or "")
    return ("timm",) if getattr(cfg, "use_timm_backbone", False) or kind.startswith("timm") else ()


def backbone_name(cfg: Any) -> str | None:
    """The record's backbone, from the model's config: the timm model a timm backbone builds (``resnet50`` for
    DETR's hub checkpoints), else the backbone config's model type (``swin``), else the config's ``backbone``."""
    bc = getattr(cfg, "backbone_config", None)
    timm_name = getattr(bc, "backbone", None) if backbone_packages(cfg) else None
    return timm_name or getattr(bc, "model_type", None) or getattr(cfg, "backbone", None)


def processor_backend(version: str) -> dict[str, Any]:
    """How ``from_pretrained`` is asked for the processor: its PIL backend whatever is installed, so that a
    model's pre-processing, and with it its numbers, are the same with and without torchvision (transformers 5
    otherwise picks the torchvision processor whenever torchvision is installed, and the two resize images
    differently: docs/huggingface.md, "Which processor").  transformers 5.4 and later say it ``backend="pil"``
    (``use_fast`` is deprecated there), earlier ones ``use_fast=False`` (5.0-5.3 have no ``backend``); a model
    type with no PIL processor gets transformers' other one (the record's ``processor_class`` names the class
    that ran)."""
    return {"backend": "pil"} if _version(version) >= (5, 4) else {"use_fast": False}


def load_hf_model(ref: str, categories: Any, device: str,
                  any_rank: Callable[[bool], bool] | None = None) -> HFModel:
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
    cfg = _config(AutoConfig, d)
    mtype = describe(cfg.model_type, where)
    if mtype.resize_shim and importlib.util.find_spec("torchvision") is None:
        _oneformer_resize_without_torchvision()
    auto = AutoProcessor if mtype.task_prompt else AutoImageProcessor
    backend = processor_backend(transformers.__version__)
    processor = _step(lambda: auto.from_pretrained(d, **backend), d,
                      "its processor does not load (preprocessor_config.json)")
    # float32 whatever dtype the weights were saved in (transformers 5 loads them as saved, "auto"): --amp is
    # the one way to run reduced precision, and the record's "amp" says which
    dtype_kw = "dtype" if _version(transformers.__version__) >= (4, 56) else "torch_dtype"
    model = _step(lambda: AutoModelForUniversalSegmentation.from_pretrained(d, **{dtype_kw: torch.float32}), d,
                  "the model does not load")
    model.eval()
    order, label2cat, skipped = map_labels(cfg.id2label, categories, where)
    if len(order) >= INSTANCE_OFFSET:  # --postprocess's panoptic map carries label + instance * 1000
        raise PanbenchError(f"{where}: {len(order)} labels; panbench's panoptic encoding takes at most 999")
    isthing = dict(zip(categories.ids, categories.isthing))
    fuse = {h for h, c in zip(order, label2cat) if not isthing[c]}
    settings = dict(mtype.settings)
    image_processor = getattr(processor, "image_processor", processor)
    fusion = _Fusion(mtype, image_processor.post_process_panoptic_segmentation, settings, order,
                     sum(bool(isthing[c]) for c in label2cat), fuse, len(cfg.id2label))
    names = [cfg.id2label[h] for h in order]
    module = HFPanoptic(model, processor, mtype, fusion, names, label2cat, where).to(device)
    text = _record_text(cfg, model, image_processor, settings, sorted(fuse), skipped, transformers.__version__)
    backbone = backbone_name(cfg) or mtype.backbone
    return HFModel(module, d, hub_id, digest(d), text,
                   hashlib.sha256(text.encode()).hexdigest()[:16], mtype.architecture, backbone, backbone_packages(cfg))


def _record_text(cfg: Any, model: Any, image_processor: Any, settings: dict, fuse: list[int], skipped: list[int],
                 version: str) -> str:
    """What the run records as the model's resolved configuration (JSON; its sha256 is the config hash)."""
    meta = {k: v for k, v in cfg.to_dict().items() if k not in ("_name_or_path", "transformers_version")}
    return json.dumps({"framework": "transformers", "model_type": cfg.model_type, "model_class": type(model).__name__,
                       "processor_class": type(image_processor).__name__, "config": meta,
                       "processor": image_processor.to_dict(), "postprocess": settings,
                       "label_ids_to_fuse": fuse, "skipped_labels": skipped,
                       "transformers": version}, sort_keys=True, indent=1, default=str)


def _version(v: str) -> tuple[int, ...]:
    """``"4.56.0.dev0"`` -> ``(4, 56)``: major and minor."""
    return tuple(int(x) for x in (v.split(".") + ["0"])[:2] if x.isdigit())


def _config(auto: Any, d: Path) -> Any:
    """The model's ``config.json``; a folder without one refused in one line."""
    if not (d / "config.json").is_file():
        raise PanbenchError(f"{d}: no config.json in this folder; pass a directory written by save_pretrained "
                            "(config.json, the weights, preprocessor_config.json) or a hub id")
    return _step(lambda: auto.from_pretrained(d), d, "config.json does not load")


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
    5.23, 5.24): give the module :func:`torchvision_resize_stand_in` under the name it calls."""
    from transformers.models.oneformer import image_processing_pil_oneformer as pil

    if not hasattr(pil, "tvF"):
        pil.tvF = torchvision_resize_stand_in()


def torchvision_resize_stand_in() -> Any:
    """What ``compute_segments`` calls of ``torchvision.transforms.v2.functional`` (``resize`` with
    ``InterpolationMode.BILINEAR``), without torchvision.  On a float tensor and a size of two numbers,
    torchvision's bilinear ``resize_image`` is ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False, antialias=True)`` (its default ``antialias``), and the input itself when the size is
    unchanged; this is that.  Compared with torchvision's own call, bit for bit, in
    tests/models/test_hf_vision.py."""
    import types

    import torch.nn.functional as F

    def resize(x: torch.Tensor, size: Any, interpolation: str = "bilinear", antialias: bool = True) -> torch.Tensor:
        size = [int(v) for v in size]
        if list(x.shape[-2:]) == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)

    return types.SimpleNamespace(resize=resize, InterpolationMode=types.SimpleNamespace(BILINEAR="bilinear"))
