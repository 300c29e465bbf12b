"""The C extension's portable build (what CPUs other than x86-64, or compilers other than GCC and clang,
get): compiled here from the same source with the x86 and SSE2 branches switched off, it must give the
ids and the pair counts of the SIMD build bit for bit."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_native import _filter_row

from panbench.pq import kernels

PQ = Path(__file__).resolve().parents[2] / "panbench" / "pq"
SOURCES = [PQ / "_native.c", *sorted(PQ.glob("*.h"))]  # the extension and every header it may include


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("portable")
    off = 0
    for source in SOURCES:  # the extension and the headers it includes (the AVX2 switch, the match)
        src = source.read_text().replace("defined(__x86_64__)", "defined(__PB_NO_X86__)")
        src = src.replace("__SSE2__", "__PB_NO_SSE2__")
        off += src.count("__PB_NO")
        (d / source.name).write_text(src)
    assert off >= 4  # the switches this test turns off are still in the sources
    setup = ("from setuptools import setup, Extension; setup(name='p', script_args=['build_ext', '--inplace', '-q'], "
             "ext_modules=[Extension('_native', ['_native.c'], extra_compile_args=['-O3'])])")
    r = subprocess.run([sys.executable, "-c", setup], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-600:]  # panbench's install compiles: so does the portable build
    so = next(d.glob("_native*.so"), None) or next(d.glob("_native*.pyd"))
    loader = importlib.machinery.ExtensionFileLoader("_native", str(so))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_native", so, loader=loader))
    loader.exec_module(mod)
    assert mod.use_avx2(True) is False
    return mod


def _scanlines(img: np.ndarray, ft: int) -> bytes:
    """The filtered scanlines of an HxWxC uint8 image, every row with filter type ``ft``."""
    h, w, ch = img.shape
    prev, out = bytes(w * ch), b""
    for y in range(h):
        row = img[y].tobytes()
        out += _filter_row(ft, row, prev, ch)
        prev = row
    return zlib.decompress(zlib.compress(out))


@pytest.mark.parametrize("ch", [3, 4])
def test_portable_build_unfilters_every_filter_type_like_the_simd_build(portable, ch: int) -> None:
    rng = np.random.default_rng(ch)
    for ft in range(5):
        for w in (1, 3, 5, 8, 17, 33):
            img = rng.integers(0, 256, (6, w, ch), dtype=np.uint8)
            img[1::2] = img[1::2, :1]  # flat rows beside noise
            raw = _scanlines(img, ft)
            outs = [np.empty((6, w), np.uint32) for _ in range(2)]
            portable.unfilter_ids(raw, w, 6, ch, outs[0])
            kernels._native.unfilter_ids(raw, w, 6, ch, outs[1])
            assert np.array_equal(outs[0], outs[1]), (ft, w)


def test_portable_build_counts_pairs_like_the_simd_build(portable) -> None:
    rng = np.random.default_rng(5)
    keys = rng.choice(np.arange(1, 2**24), 8, replace=False).astype(np.int64)
    for n in (1, 4, 9, 100, 1000):
        runs = rng.integers(1, 9, n)
        gt = np.repeat(rng.choice(np.concatenate([[0], keys[:4]]), n), runs)[:n].astype(np.uint32)
        pred = np.repeat(rng.choice(np.concatenate([[0], keys[4:]]), n), runs[::-1])[:n].astype(np.uint32)
        counts = [np.empty((6, 5), np.int64) for _ in range(2)]
        for mod, c in zip((portable, kernels._native), counts):
            assert mod.pair_counts(gt, pred, keys[:4], keys[4:], c, True) is None
        assert np.array_equal(counts[0], counts[1]) and counts[0].sum() == n
