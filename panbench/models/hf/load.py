"""Hugging Face ``transformers`` panoptic models: ``panbench eval --model hf:<hub id or directory>``.

A model is loaded with ``AutoModelForUniversalSegmentation`` and its own processor (``AutoImageProcessor``;
OneFormer's ``AutoProcessor``, image processor and tokenizer), and its outputs go through the processor's
``post_process_panoptic_segmentation`` with the settings of the original release: what panbench knows of each
model type is its description, :data:`panbench.models.hf.types.TYPES` (a type without one is refused).
The loaded model is a :class:`panbench.models.hf.model.HFPanoptic`, the transformers family's
:class:`panbench.models.protocol.PanopticModel`: streaming scoring, the resume cache, timings, forked CPU
processes, torchrun, batches, AMP and the out-of-memory fallback run the same code for both families.

Where a model comes from: a local directory or a hub snapshot (downloaded into huggingface_hub's cache,
:func:`resolve_dir`), and the sha256 of its files that the run records (:func:`digest`); the model's ``id2label``
maps to the dataset's categories by name (:func:`map_labels`; the rule is written down in docs/huggingface.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from panbench.errors import PanbenchError
from panbench.models.checkpoints import on_local_rank0
from panbench.models.encoding import INSTANCE_OFFSET
from panbench.models.hf.model import HFPanoptic, _Fusion
from panbench.models.hf.types import TYPES, describe

WEIGHT_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.model"]  # what a model directory needs from the hub


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
    d = on_local_rank0(lambda: _snapshot(ref), any_rank,
                       f"hf:{ref}: the download on local rank 0 failed (its message is in its log)")
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


PLACEHOLDERS = ("n/a",)  # DETR's label name for the COCO ids no category uses: never predicted, never mapped


def _label_key(name: str) -> str:
    """Case, surrounding and repeated spaces, and ``_`` for a space do not count."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _stem(name: str) -> str:
    """:func:`_label_key` without COCO panoptic's ``-merged`` and then ``-other`` suffixes
    (``wall-other-merged``: wall)."""
    n = _label_key(name)
    for suffix in ("-merged", "-other"):
        n = n[: -len(suffix)] if n.endswith(suffix) else n
    return n


def _few(items: list[str], k: int = 5) -> str:
    return ", ".join(repr(x) for x in items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def map_labels(id2label: dict[int, str], categories: Any, where: str) -> tuple[list[int], list[int], list[int]]:
    """The model's labels -> the dataset's categories, by name: the exact name; else the one category whose
    :func:`_label_key` form is the label's; else the one category whose :func:`_stem` is the label's.  DETR's
    ``N/A`` placeholders are skipped.  Returns (the model label ids in panbench's label order: things first,
    then stuff, each by label id; the category id of each; the skipped label ids).  Refuses labels that map
    to no category (naming them) and two labels mapping to one category."""
    exact = dict(zip(categories.names, categories.ids))
    by: dict[str, dict[str, list[int]]] = {"norm": {}, "stem": {}}
    for n, cid in zip(categories.names, categories.ids):
        by["norm"].setdefault(_label_key(n), []).append(cid)
        by["stem"].setdefault(_stem(n), []).append(cid)
    mapping: dict[int, int] = {}
    unmapped, skipped = [], []
    for hid, name in sorted((int(k), v) for k, v in id2label.items()):
        if _label_key(name) in PLACEHOLDERS:
            skipped.append(hid)
            continue
        cid = exact.get(name)
        for kind, key in (("norm", _label_key(name)), ("stem", _stem(name))):
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
