"""The compiled mmcv functions inference needs, without compiling mmcv.

MMDetection's PanopticFPN, MaskFormer and Mask2Former reach exactly three functions of mmcv's compiled
``mmcv._ext``: ``nms`` and ``roi_align_forward`` (PanopticFPN) and, on CUDA only,
``ms_deform_attn_forward`` (Mask2Former; on the CPU mmcv runs its own PyTorch function).  ``mmcv-lite``
(pure Python) has no ``mmcv._ext``, so ``import mmcv.ops`` fails there.  :func:`install` puts
panbench's stand-in (:mod:`panbench.ops.ext`) into ``sys.modules["mmcv._ext"]`` before ``mmcv.ops`` is
imported, and mmcv's own Python wrappers then run unchanged on top of it:

* CPU: mmcv 2.1.0's CPU kernels ported to C (``panbench.ops._cpu``, built by setup.py), or the same
  arithmetic in PyTorch when that extension is missing; both bit-identical to compiled mmcv.
* CUDA: torchvision's kernels (``nms`` in mmcv's order for tied scores, ``roi_align`` for average
  pooling) and mmcv's PyTorch multi-scale deformable attention.

A compiled ``mmcv._ext`` that imports is used as it is (backend "mmcv").  ``PANBENCH_OPS=mmcv`` or
``PANBENCH_OPS=panbench`` forces one.  This module imports nothing heavy: torch is imported by
:func:`install` only.
"""

from __future__ import annotations

import importlib
import os
import sys

from panbench.errors import PanbenchError
from panbench.ops.backends import BACKENDS, COMPILED_FIX, Bypass


def active() -> str | None:
    """The backend installed in this process ("mmcv" or "panbench"), or None when no mmcv op was reached
    (``hf:`` models, scoring): what result records store, without importing anything."""
    ext = sys.modules.get("mmcv._ext")
    if ext is None:
        return None
    return "panbench" if getattr(ext, "PANBENCH_STAND_IN", False) else "mmcv"


def install() -> str:
    """Make ``mmcv._ext`` importable (once per process) and return the backend that serves it: "mmcv" when a
    compiled ``mmcv._ext`` imports, else "panbench" (its stand-in is put into ``sys.modules``).  Call it before
    ``mmcv.ops`` (or mmdet's models) is imported.  ``PANBENCH_OPS`` forces a choice."""
    want = os.environ.get("PANBENCH_OPS", "").strip().lower()
    if want and want not in BACKENDS:
        raise PanbenchError(f"PANBENCH_OPS={want!r} is not a backend; set it to mmcv or panbench, or unset it")
    have = active()
    if have is not None:
        if want and want != have:
            raise PanbenchError(f"PANBENCH_OPS={want} but this process already runs the {have} ops (mmcv.ops was "
                                "imported first); set PANBENCH_OPS before anything imports mmcv.ops")
        return have
    if want != "panbench":
        try:
            with Bypass():  # the compiled one only, not panbench's import hook (panbench/ops/hook.py)
                importlib.import_module("mmcv._ext")
            return "mmcv"
        except ImportError as e:
            if want == "mmcv":
                why = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                raise PanbenchError(f"PANBENCH_OPS=mmcv but mmcv's compiled ops do not import ({why}); install "
                                    f"{COMPILED_FIX}, or unset PANBENCH_OPS to use panbench's ops") from None
    from panbench.ops import ext

    sys.modules["mmcv._ext"] = ext
    return "panbench"


def compiled_mmcv() -> bool:
    """Whether the installed mmcv ships a compiled ``mmcv._ext`` (found on disk; nothing is imported but
    ``mmcv`` itself)."""
    import importlib.machinery

    try:
        mmcv = importlib.import_module("mmcv")
    except ImportError:
        return False
    return importlib.machinery.PathFinder.find_spec("_ext", list(getattr(mmcv, "__path__", []))) is not None
