"""panbench's C extensions, loaded by one rule.  Standard library only: what runs before numpy is imported
(:mod:`panbench.pq.ahead`) loads them by the same rule."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError

#: Every C extension setup.py builds (tests/test_setup_stack.py checks the two lists agree).
EXTENSIONS = ("panbench.pq._native", "panbench.pq._match", "panbench.pq._rules", "panbench.pq._boundary",
              "panbench.models.mmdet._fusion", "panbench.models._merge", "panbench.analysis._resample",
              "panbench.analysis._rle", "panbench.ops._cpu")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the panbench package these extensions belong in
BUILD_FIX = ("build them: `make setup`, or `pip install -e .` with a C compiler and the Python headers "
             "(apt-get install gcc python3-dev; docs/setup.md)")


def load_extension(module: str) -> Any:
    """One of panbench's C extensions (setup.py builds them with the package; every install compiles them)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise PanbenchError(f"panbench's C extension {module} is not built in {PACKAGE_DIR} ({e}); {BUILD_FIX}") from e
