"""The compiled mmcv functions inference needs, without compiling mmcv (docs/ops.md): :func:`install` puts
panbench's stand-in (:mod:`panbench.ops.ext`) in ``sys.modules["mmcv._ext"]`` unless a compiled one imports.  Imports
nothing heavy: the import hook (:mod:`panbench.ops.hook`) runs it at every interpreter's start."""

from __future__ import annotations

import importlib
import os
import sys

from panbench.errors import PanbenchError

BACKENDS = ("mmcv", "panbench")  # PANBENCH_OPS's values


class Bypass:
    """While ``Bypass.on``, the import hook (:mod:`panbench.ops.hook`) stands aside for a compiled ``mmcv._ext``."""

    on = False

    def __enter__(self) -> None:
        self.before, Bypass.on = Bypass.on, True

    def __exit__(self, *exc: object) -> None:
        Bypass.on = self.before


def active() -> str | None:
    """The backend installed in this process ("mmcv", "panbench"; None: no mmcv op reached), importing nothing."""
    ext = sys.modules.get("mmcv._ext")
    if ext is None:
        return None
    return "panbench" if getattr(ext, "PANBENCH_STAND_IN", False) else "mmcv"


def install() -> str:
    """Make ``mmcv._ext`` importable before ``mmcv.ops`` is imported; returns the backend that serves it."""
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
                from panbench.ops.kernels import COMPILED_FIX

                why = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                raise PanbenchError(f"PANBENCH_OPS=mmcv but mmcv's compiled ops do not import ({why}); install "
                                    f"{COMPILED_FIX}, or unset PANBENCH_OPS to use panbench's ops") from None
    from panbench.ops import ext

    sys.modules["mmcv._ext"] = ext
    return "panbench"


def compiled_mmcv() -> bool:
    """Whether the installed mmcv ships a compiled ``mmcv._ext`` (found on disk; only ``mmcv`` is imported)."""
    import importlib.machinery

    try:
        mmcv = importlib.import_module("mmcv")
    except ImportError:
        return False
    return importlib.machinery.PathFinder.find_spec("_ext", list(getattr(mmcv, "__path__", []))) is not None


def kernels_path(device_type: str = "cpu") -> str:
    """Which kernels serve ``device_type``'s tensors, in a few words (``panbench doctor``)."""
    if device_type == "cuda":
        return "torchvision nms/roi_align, PyTorch deformable attention"
    return "C extension (panbench.ops._cpu)" if device_type == "cpu" else "PyTorch"
