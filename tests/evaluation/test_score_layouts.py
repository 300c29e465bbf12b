"""Segment scores, and the maps, bit for bit the same whatever the process layout: thread count and batch
composition (panbench.models.numerics; forked processes, torchrun ranks and a resume in test_eval_analysis.py).
On an AVX-512 CPU torch's own choices gave scores that differed in their last bits by thread count and batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from panbench.models.numerics import layout_free

MODELS = "demo-maskformer,demo-mask2former,demo-panoptic-fpn"
# 4 images: two batches of two in the batched layout, and over 200 scored segments of the three models (131 distinct
# scores), twice the floor the test asserts: more images add segments of the same two layouts, not another layout
IMAGES = 4


def _predict(demo_root: Path, out: Path, threads: int, batch: int) -> dict[str, bytes]:
    """The three demo models' saved predictions (the JSONs with their scores, the PNGs) of one layout, by file name,
    from a fresh process with ``threads`` torch threads and MKL left as the process finds it."""
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}  # panbench itself sets MKL's mode
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", MODELS, "--dataset", "demo", "--data-root",
           str(demo_root), "--limit", str(IMAGES), "--batch-size", str(batch), "--cpu-procs", "1", "--workers", "0",
           "--results", str(out / "results"), "--save-predictions", str(out / "preds"), "--no-progress",
           "--flops-images", "0"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    files = {str(p.relative_to(out / "preds")): p.read_bytes() for p in sorted((out / "preds").rglob("*"))
             if p.is_file()}
    for name in [n for n in files if n.endswith("_results.json")]:  # the segments; not the run's date and command
        files[name] = json.dumps(json.loads(files[name])["annotations"]).encode()
    assert any(n.endswith("_instances.json") for n in files) and any(n.endswith(".png") for n in files)
    return files


def _scores(files: dict[str, bytes]) -> list[float]:
    found: list[float] = []
    for name, data in files.items():
        if name.endswith("_results.json"):
            found += [s["score"] for a in json.loads(data) for s in a["segments_info"] if "score" in s]
        elif name.endswith("_instances.json"):
            found += [d["score"] for d in json.loads(data)]
    return found


def test_saved_scores_are_bit_identical_across_thread_counts_and_batch_compositions(demo_root, tmp_path) -> None:
    """The same IMAGES images through the three demo models on 1 thread one image a batch and on 2 threads two images
    a batch (each process with MKL as it starts: panbench sets its mode): every saved PNG and instance file equal byte
    for byte, the segments of the COCO JSON equal (the scores' floats printed exactly) but for the run's date and
    command in its header.  Two processes of three models each: the subject is a fresh process's numerics."""
    one = _predict(demo_root, tmp_path / "a", threads=1, batch=1)
    scores = _scores(one)
    assert len(scores) > 100 and len(set(scores)) > 50  # many segments, scored apart
    other = _predict(demo_root, tmp_path / "b", threads=2, batch=2)
    assert other.keys() == one.keys()
    assert not [n for n in one if one[n] != other[n]]


@pytest.mark.parametrize("shape, kernel", [((128, 5, 7), 3), ((256, 25, 34), 1), ((64, 13, 19), 3)])
def test_a_routed_convolution_has_the_same_bits_on_any_thread_count_and_batch(shape, kernel) -> None:
    """Shapes where torch picks its kernel by the thread count or the batch (im2col for a 1x1 convolution on one
    thread and for a small single image, oneDNN otherwise): through oneDNN always, one image's output is the same
    alone or in a batch of two, on one thread or two."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(shape[0], 96, kernel, padding=kernel // 2)
    assert layout_free(torch.nn.Sequential(conv)) == (1 if torch.backends.mkldnn.is_available() else 0)
    x = torch.randn(2, *shape)
    threads = torch.get_num_threads()
    got = []
    try:
        with torch.no_grad():
            for t in (1, 2):
                torch.set_num_threads(t)
                got += [conv(x[:1]), conv(x)[:1]]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(got[0], g) for g in got[1:])


@pytest.mark.parametrize("act", [torch.nn.GELU(), torch.nn.SiLU(), torch.nn.Sigmoid(), torch.nn.Mish()])
def test_a_routed_activation_has_the_same_bits_on_any_thread_count_and_batch(act) -> None:
    """GELU, SiLU, sigmoid and Mish round some values apart in torch's vector and scalar code, and which elements
    take the scalar code moves with the thread count (the end of each thread's part) and the batch (the end of the
    tensor): routed, one image's activations are the same alone or in a batch of two, on one thread or two."""
    from panbench.models.numerics import _STEP, vector_code

    x = torch.linspace(-9.0, 9.0, 70001).repeat(2, 1)  # an odd length: a scalar tail at every split
    x[1] += 0.25
    assert layout_free(torch.nn.Sequential(act)) == 1
    threads = torch.get_num_threads()
    got = []
    try:
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            got += [act(x[:1]), act(x)[:1]]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(got[0], g) for g in got[1:])
    whole = torch.nn.Sequential(type(act)())[0](x[:1].reshape(-1)[: 10 * _STEP])  # all vector code: torch's own bits
    assert torch.equal(vector_code(type(act)(), x[:1].reshape(-1)[: 10 * _STEP]), whole)


def test_row_sums_are_the_one_thread_sums_on_any_thread_count() -> None:
    """A single row's float32 sum is split over torch's threads (its parts added in the end); two rows or more are
    split by row.  row_sums gives the one-thread sums of one row and of several on 1 to 4 threads."""
    from panbench.models.mmdet.fast_fusion import row_sums

    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    try:
        for rows in (1, 2, 5):
            x = torch.rand(rows, 123457, generator=g) * 0.5 + 0.5
            torch.set_num_threads(1)
            want = x.sum(1)
            for t in (2, 3, 4):
                torch.set_num_threads(t)
                assert torch.equal(row_sums(x), want), (rows, t)
    finally:
        torch.set_num_threads(threads)
