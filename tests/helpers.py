"""Helpers for tests that need mmdet models: random-init checkpoints in the zoo's file format."""

from __future__ import annotations

import hashlib
from pathlib import Path

from panbench.models import mm
from panbench.models.registry import ModelSpec


def save_with_digest(obj: object, folder: Path, stem: str) -> Path:
    """``torch.save`` ``obj`` as ``<stem>-<first 8 hex of its sha256>.pth`` (the zoo's naming)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.pth"
    torch.save(obj, tmp)
    out = folder / f"{stem}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(out)
    return out


def save_zoo_style_checkpoint(spec: ModelSpec, folder: Path, stem: str | None = None, seed: int = 0) -> Path:
    """Build ``spec``'s model with random weights and save it as the zoo does
    (``{'meta': {...}, 'state_dict': ...}``), named ``<stem>-<first 8 hex of sha256>.pth``."""
    import torch

    torch.manual_seed(seed)
    cfg = mm.load_config(spec.config)
    model = mm.build_model(cfg, spec.config)
    ckpt = {"meta": {"dataset_meta": {"classes": tuple(mm.class_names(cfg))}, "mmengine_version": "0.10.7",
                     "epoch": 0, "iter": 0},
            "state_dict": model.state_dict()}
    return save_with_digest(ckpt, folder, f"{stem or spec.name}_random")
