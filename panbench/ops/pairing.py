"""Which torchvision a torch needs: panbench's CUDA ops run nms and RoIAlign with torchvision's kernels
(:mod:`panbench.ops.kernels`), and a torchvision built for another torch (or another CUDA) does not load them.
Standard library only: ``scripts/cuda_setup.py`` uses it before anything is installed, ``panbench doctor`` after."""

from __future__ import annotations

import re


def torchvision_for(torch_version: str) -> str:
    """The torchvision release built against ``torch_version`` (``2.13.0+cu130`` -> ``0.28.0+cu130``): torch 2.m.p
    pairs with torchvision 0.(m+15).p since torch 2.0 (2.0 -> 0.15, 2.11 -> 0.26, 2.13 -> 0.28)."""
    base, _, local = torch_version.partition("+")
    parts = base.split(".")
    if len(parts) < 2 or parts[0] != "2" or not parts[1].isdigit():
        raise ValueError(f"torch {torch_version}: no known torchvision pairing (torch 2.x only)")
    m = re.match(r"\d+", parts[2]) if len(parts) > 2 else None
    return f"0.{int(parts[1]) + 15}.{m.group(0) if m else '0'}" + (f"+{local}" if local else "")


def pairing_problem(torch_version: str, torchvision_version: str | None) -> str | None:
    """Why this torchvision does not fit this torch (None: it fits, or torch is not 2.x).  A missing torchvision
    is a problem too: panbench's CUDA ops run nms and RoIAlign with torchvision's kernels."""
    try:
        want = torchvision_for(torch_version)
    except ValueError:
        return None
    if torchvision_version is None:
        return f"torchvision is not installed; torch {torch_version} needs torchvision {want}"
    have_base, _, have_local = torchvision_version.partition("+")
    want_base, _, want_local = want.partition("+")
    if have_base.split(".")[:2] != want_base.split(".")[:2]:
        return f"torchvision {torchvision_version} is not built for torch {torch_version} (needs {want})"
    if _build(want_local) != _build(have_local):
        return (f"torchvision {torchvision_version} is a {_build(have_local)} build, torch {torch_version} a "
                f"{_build(want_local)} one (needs {want})")
    return None


def _build(local: str) -> str:
    """``cpu`` or ``CUDA`` from a version's local part (none: PyPI's Linux wheels of torch and torchvision are CUDA)."""
    return "cpu" if local.startswith("cpu") else "CUDA"
