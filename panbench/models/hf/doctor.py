"""The transformers family's lines of ``panbench doctor``: timm, which DETR's hub checkpoints build their backbone
with (a note when missing, with the extra that installs it); run with the doctor's probes
(:class:`panbench.cli.doctor.Probes`)."""

from __future__ import annotations

from typing import Any


def checks(probes: Any) -> list[Any]:
    """The family's checks (its packages' versions are the doctor's ``versions/transformers`` line)."""
    timm = probes.version("timm", required=False, fix=f"{probes.pip} install 'panbench[cuda]' (DETR's hub "
                          "checkpoints, hf-detr_*, build their backbone with timm; docs/huggingface.md)")
    if timm.ok:
        timm.detail += " (DETR's hub checkpoints)"
    return [timm]
