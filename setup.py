"""Builds panbench's optional C extensions (the per-pixel loops of PQ scoring, the per-image match, boundary
PQ; mmcv's CPU nms and RoIAlign for panbench.ops).

Everything else is in pyproject.toml.  ``optional=True``: without a C compiler panbench installs
anyway and scores with its numpy path (``panbench doctor`` says which one is active).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("panbench.pq._native", ["panbench/pq/_native.c"], extra_compile_args=["-O3"], optional=True),
        Extension("panbench.pq._match", ["panbench/pq/_match.c"], extra_compile_args=["-O3"], optional=True),
        Extension("panbench.analysis._boundary", ["panbench/analysis/_boundary.c"], extra_compile_args=["-O3"],
                  optional=True),
        # mmcv's CPU nms and RoIAlign (panbench.ops): no fused multiply-add, which would round differently
        Extension("panbench.ops._cpu", ["panbench/ops/_cpu.c"], extra_compile_args=["-O3", "-ffp-contract=off"],
                  optional=True),
    ]
)
