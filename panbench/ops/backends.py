"""The names of the two backends of mmcv's compiled functions (``PANBENCH_OPS``) and how to get mmcv's own:
what :mod:`panbench.ops` and its stand-in :mod:`panbench.ops.ext` both say, in a module that imports nothing."""

from __future__ import annotations

BACKENDS = ("mmcv", "panbench")
COMPILED_FIX = "compiled mmcv (PANBENCH_MMCV=compiled make setup, docs/setup.md)"
