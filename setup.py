"""Builds panbench's C extensions (the per-pixel loops of PQ scoring, the per-image match, boundary
PQ; the MaskFormer fusion's argmax; the RLE encoding of AP's masks; mmcv's CPU nms and RoIAlign for
panbench.ops), copies the model configs and the demo weights into the package, and installs the ``mmcv._ext``
import hook.

Everything else is in pyproject.toml.  The extensions are required: an install without a C compiler or the
Python headers stops at the build with one line saying what to install (docs/setup.md, "What an install needs").

Package data: the top-level ``configs/`` and ``checkpoints/demo/`` stay the source; a wheel (and a
non-editable install) gets copies under ``panbench/_data/``, as MMDetection ships its configs as
``mmdet/.mim/configs``.  An editable install reads them from the clone (panbench/resources.py).
"""

import os
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGE_DATA = {"configs": "configs", "checkpoints/demo": "checkpoints/demo"}  # source -> panbench/_data/...
COMMON = "panbench/pq/_common.h"  # the id table and AVX2 switch that _native.c and _boundary.c include
MATCH_CORE = "panbench/pq/_match_core.h"  # the match that _match.c wraps and _native.c runs on its threads
BOUNDARY_CORE = "panbench/pq/_boundary_core.h"  # boundary PQ's pass: _boundary.c wraps it, _native.c runs it
HOOK = "panbench-mmcv-ext.pth"  # site-packages/<HOOK>: `import panbench.ops.hook` at start-up (cheap)


class BuildPyWithData(build_py):
    """build_py, plus the configs and demo weights copied into ``panbench/_data`` and the ``.pth`` hook
    beside the package (a non-editable build only: an editable install reads the clone)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "panbench" / "_data"
        for src, dst in PACKAGE_DATA.items():
            if (ROOT / src).is_dir():
                shutil.rmtree(target / dst, ignore_errors=True)
                shutil.copytree(ROOT / src, target / dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(ROOT / "panbench" / "ops" / HOOK, Path(self.build_lib) / HOOK)


NEEDS = ("panbench compiles its C extensions at install: install a C compiler and the Python headers "
         "(Debian/Ubuntu: apt-get install gcc python3-dev; conda: conda install gcc; macOS: xcode-select --install) "
         "and install again")


class ParallelBuildExt(build_ext):
    """build_ext compiling the extensions side by side, one per core (``--parallel N`` still rules); without a
    compiler or the Python headers, one line saying what to install (:data:`NEEDS`)."""

    def run(self) -> None:
        from setuptools.errors import CCompilerError, CompileError, PlatformError

        try:
            super().run()
        except (CCompilerError, CompileError, PlatformError) as e:
            first = str(e).splitlines()[0] if str(e) else ""
            raise SystemExit(f"error: {NEEDS}, or fix the compile error above ({type(e).__name__}: {first})") from None

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:
            self.parallel = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


setup(
    cmdclass={"build_py": BuildPyWithData, "build_ext": ParallelBuildExt},
    ext_modules=[
        Extension("panbench.pq._native", ["panbench/pq/_native.c"], depends=[COMMON, MATCH_CORE, BOUNDARY_CORE],
                  extra_compile_args=["-O3"]),
        Extension("panbench.pq._match", ["panbench/pq/_match.c"], depends=[MATCH_CORE, "panbench/pq/_json_scan.h"],
                  extra_compile_args=["-O3"]),
        # PQ under other implementations' rules, from the counted tables (pq.quirks)
        Extension("panbench.pq._rules", ["panbench/pq/_rules.c"], depends=[MATCH_CORE],
                  extra_compile_args=["-O3", "-ffp-contract=off"]),
        Extension("panbench.pq._boundary", ["panbench/pq/_boundary.c"], depends=[COMMON, BOUNDARY_CORE],
                  extra_compile_args=["-O3"]),
        # the MaskFormer fusion's per-pixel argmax over the queries
        Extension("panbench.models.mmdet._fusion", ["panbench/models/mmdet/_fusion.c"], extra_compile_args=["-O3"]),
        # mask-wise merging's passes over the pixels (--postprocess maskwise)
        Extension("panbench.models._merge", ["panbench/models/_merge.c"], extra_compile_args=["-O3"]),
        # the bootstrap's exact resampled sums
        Extension("panbench.analysis._resample", ["panbench/analysis/_resample.c"], depends=[COMMON],
                  include_dirs=["panbench/pq"], extra_compile_args=["-O3"]),
        # COCO RLE encoding of AP's masks and ground-truth segments
        Extension("panbench.analysis._rle", ["panbench/analysis/_rle.c"], depends=[COMMON],
                  include_dirs=["panbench/pq"], extra_compile_args=["-O3"]),
        # mmcv's CPU nms and RoIAlign (panbench.ops): no fused multiply-add, which would round differently
        Extension("panbench.ops._cpu", ["panbench/ops/_cpu.c"], extra_compile_args=["-O3", "-ffp-contract=off"]),
    ]
)
