"""The C extensions of :mod:`panbench.pq`, read through one public place (every install builds them; an import
without them stops with one line saying how to build them, :func:`panbench.pq.extensions.load_extension`).  The
accessors read the module attribute at each call, so a test that sets ``kernels._native``, ``matching._native`` or
``boundary._native`` to a stand-in (tests/kernel_references.py) sends every caller to it."""

from __future__ import annotations

from typing import Any

from panbench.pq import boundary, kernels, matching


def pixels() -> Any:
    """``panbench.pq._native`` (intersection counts, PNG unfiltering)."""
    return kernels._native


def match() -> Any:
    """``panbench.pq._match`` (the per-image match, the segments_info checks)."""
    return matching._native


def boundary_pq() -> Any:
    """``panbench.pq._boundary`` (boundary PQ's pixel counts)."""
    return boundary._native


def deflate() -> Any:
    """The ``deflate`` module (libdeflate), or None."""
    return kernels._deflate


# libdeflate's functions that _native.pair_tables calls, in use_libdeflate's order
LIBDEFLATE_ENTRY_POINTS = ("libdeflate_alloc_decompressor", "libdeflate_free_decompressor",
                           "libdeflate_zlib_decompress", "libdeflate_crc32")


def libdeflate_entry_points() -> tuple[int, int, int, int] | None:
    """The addresses of :data:`LIBDEFLATE_ENTRY_POINTS` in the ``deflate`` package's own libdeflate, or None."""
    if (d := deflate()) is None:
        return None
    try:
        import ctypes

        lib = ctypes.CDLL(d._deflate.__file__)  # already loaded: the same handle, no second copy
        out = tuple(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in LIBDEFLATE_ENTRY_POINTS)
    except (OSError, AttributeError):  # a deflate build that hides libdeflate's symbols
        return None
    return out if all(out) else None  # type: ignore[return-value]

