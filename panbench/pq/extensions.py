"""panbench's optional C extensions, loaded by one rule.  Standard library only: what runs before numpy is
imported (:mod:`panbench.pq.ahead`) loads them by the same rule."""

from __future__ import annotations

import importlib
import os
from typing import Any


def load_extension(module: str) -> Any:
    """One of panbench's optional C extensions (setup.py builds them), or None when it was not built or
    ``PANBENCH_NO_NATIVE=1`` forces the numpy paths (benchmarks, debugging); they give the same numbers."""
    if os.environ.get("PANBENCH_NO_NATIVE") == "1":
        return None
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - no C compiler at install time
        return None
