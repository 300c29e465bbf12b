"""Which torchvision a torch needs (panbench's CUDA ops run torchvision's kernels).  Standard library only:
``scripts/cuda_setup.py`` uses it before anything is installed, ``panbench doctor`` after."""

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
    """Why this torchvision (None: not installed) does not fit this torch; None: it fits, or torch is not 2.x."""
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


#: the packages that need the torchvision built for the installed torch (timm imports torchvision)
NEEDS_TORCHVISION = ("torchvision", "timm")
PYTORCH_INDEX = "https://download.pytorch.org/whl"


def installed_version(dist: str) -> str | None:
    """The installed version of the distribution ``dist`` from its metadata (no import: torch's costs seconds)."""
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def install_command(package: str, pip: str = "pip", torch_version: str | None = None,
                    torchvision_version: str | None = None) -> str:
    """The one command that installs ``package`` into this Python (``pip``: how to run its pip) and keeps it loading:
    for torchvision and timm the torchvision built for the installed torch (PyTorch's index for its builds)."""
    if package not in NEEDS_TORCHVISION:
        return f"{pip} install {package}"
    torch_version = torch_version or installed_version("torch")
    if torch_version is None:
        return (f"install torch first (https://pytorch.org/get-started/locally), then {pip} install torchvision "
                f"{'timm' if package == 'timm' else ''}".rstrip())
    try:
        want = torchvision_for(torch_version)
    except ValueError:
        return f"{pip} install {package} with the torchvision built for torch {torch_version} (pytorch.org)"
    have = torchvision_version or installed_version("torchvision")
    if package == "timm" and have is not None and pairing_problem(torch_version, have) is None:
        return f"{pip} install timm"
    local = want.partition("+")[2]
    index = f" --extra-index-url {PYTORCH_INDEX}/{local}" if local else ""
    extra = " timm" if package == "timm" else ""
    where = (" (torchvision's CPU build, from PyTorch's index: PyPI has none that loads beside a CPU torch)"
             if _build(local) == "cpu" else "")
    return f"{pip} install{index} 'torchvision=={want}'{extra}{where}"
