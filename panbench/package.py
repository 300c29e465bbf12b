"""What the package knows of itself: its version, the checkout it runs from, and ``"module:function"`` references
imported on use.  A leaf: it imports nothing of panbench, and every layer may import it (the package root re-exports
``__version__`` as the public API's)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__version__ = "0.3.1"

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout: configs/, checkpoints/, results/


def named(ref: str) -> Any:
    """What a table's row names as ``"module:function"``, imported now.  Not part of the Python API."""
    module, sep, name = ref.partition(":")
    if not sep or not name:
        raise ValueError(f"{ref!r} is no \"module:function\" reference")
    return getattr(importlib.import_module(module), name)
