"""Boundary PQ on score's batch path: both PNGs decoded, counted, banded (_boundary_core.h's one pass over the id
maps) and matched with min(mask IoU, boundary IoU) in C on the threads.  Its columns equal, field for field, those
of the per-image path on the numpy twins (tests/kernel_references.py: the numpy boundary kernel and the numpy
matcher, no C shared with the batch path),
and its sums equal the paper authors' reference (tests/reference/boundary_iou_api.py) on the COCO sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import assert_boundary_reference_parity, write_perturbed_sample
from kernel_references import Twin, numpy_kernels

from panbench.data.synth import PanopticImage, coco_like_categories, perturb, random_image, write_panoptic
from panbench.pq import batch, matching, score
from panbench.pq.result import BOUNDARY_PREFIX, results_to_columns
from panbench.pq.score import Scoring, load_pairs, read_truth, score_stream
from panbench.pq.sums import PQStats, pq_summary

pytestmark = pytest.mark.skipif(not batch.available(),
                                reason="libdeflate's entry points are not found (or PANBENCH_PER_IMAGE=1)")

CATS = coco_like_categories(8, 6)
# (height, width): 0.02 x diagonal a half (1.5, 2.5 and 12.5 go to the even 2, 2 and 12; 0.5 to 0, then 1), the
# COCO sample's 640x360 (d = 15), one-pixel-thin images, and an image smaller than its band
SIZES = [(45, 60), (75, 100), (15, 20), (375, 500), (360, 640), (1, 40), (40, 1), (9, 7)]


def _write(tmp_path: Path, shape: tuple[int, int], n: int = 3,
           empty: bool = False) -> tuple[Path, Path, Path, Path]:
    """``n`` generated images and their perturbed predictions; with ``empty``, the first image's prediction and
    the second image's ground truth have no segment (all VOID)."""
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    gt = [(i, random_image(rng, *shape, CATS, n_things=(2, 10), crowd_prob=0.3, void_fraction=0.05))
          for i in range(1, n + 1)]
    pred = [(i, perturb(rng, g, CATS)) for i, g in gt]
    if empty:
        pred[0] = (1, PanopticImage(np.zeros(shape, np.uint32), []))
        gt[1] = (2, PanopticImage(np.zeros(shape, np.uint32), []))
    gj, gd = write_panoptic(tmp_path, "gt", gt, CATS)
    pj, pd = write_panoptic(tmp_path, "pred", pred, CATS)
    return gj, gd, pj, pd


def _scored(files: tuple[Path, ...], monkeypatch: pytest.MonkeyPatch, in_c: bool, workers: int = 2,
            strict: bool = False) -> tuple[dict, dict[str, np.ndarray], list[str]]:
    """score_stream with boundary PQ: its metrics, its columns and the images the per-image path scored.  Without
    ``in_c``, the per-image path on the numpy twins alone (tests/kernel_references.py: boundary tables and match)."""
    fallbacks: list[str] = []
    with monkeypatch.context() as m:
        if not in_c:
            m.setattr(batch, "available", lambda: False)
            numpy_kernels(m)
        one = score._score_one

        def noted(cats, gt_dir, pred_dir, how, pair, tables=None):  # noqa: ANN001, ANN202
            fallbacks.append(pair[0]["file_name"])
            return one(cats, gt_dir, pred_dir, how, pair, tables)

        m.setattr(score, "_score_one", noted)
        ev, _ = score_stream(read_truth(files[0]), *files[1:], workers,
                             Scoring(strict=strict, boundary=True, keep_images=True))
    return ev.evaluate(), ev.columns()[1], fallbacks


@pytest.mark.parametrize("shape", SIZES)
def test_boundary_pq_in_c_equals_the_numpy_twins_column_for_column(tmp_path: Path, monkeypatch, shape) -> None:
    files = _write(tmp_path, shape)
    got, cols, fallbacks = _scored(files, monkeypatch, True)
    want, ref_cols, _ = _scored(files, monkeypatch, False, workers=1)
    assert fallbacks == []  # every image banded and matched in C
    assert got == want
    assert list(cols) == list(ref_cols)
    for k in cols:
        assert cols[k].dtype == ref_cols[k].dtype and np.array_equal(cols[k], ref_cols[k], equal_nan=True), k
    assert sum(len(cols[BOUNDARY_PREFIX + k]) for k in ("tp_ious", "fn_cats", "fp_cats")) > 0


def test_boundary_pq_in_c_without_avx2_gives_the_same_columns(tmp_path: Path, monkeypatch) -> None:
    """The portable row scan of the batch path's pass (the AVX2 one switched off) bands as the AVX2 one does."""
    from panbench.pq import native

    files = _write(tmp_path, (75, 100))
    _, with_avx2, _ = _scored(files, monkeypatch, True)
    try:
        native.pixels().use_avx2(False)
        _, without, fallbacks = _scored(files, monkeypatch, True)
    finally:
        native.pixels().use_avx2(True)
    assert fallbacks == [] and list(with_avx2) == list(without)
    for k in without:
        assert np.array_equal(with_avx2[k], without[k], equal_nan=True), k


@pytest.mark.parametrize("strict", [False, True])
def test_boundary_pq_in_c_of_images_without_segments_and_under_strict(tmp_path: Path, monkeypatch,
                                                                       strict: bool) -> None:
    """An image without predictions (every ground truth a boundary FN) or without ground truth (its predictions on
    VOID), and --strict (the pairs counted per pixel beside the pass), as the numpy twins give them."""
    files = _write(tmp_path, (60, 80), n=4, empty=True)
    got, cols, fallbacks = _scored(files, monkeypatch, True, strict=strict)
    want, ref_cols, _ = _scored(files, monkeypatch, False, workers=1, strict=strict)
    assert fallbacks == [] and got == want
    for k in ref_cols:
        assert cols[k].dtype == ref_cols[k].dtype and np.array_equal(cols[k], ref_cols[k], equal_nan=True), k
    # the empty prediction: every ground truth a boundary FN; the empty ground truth (all VOID): no TP, no FN
    assert np.array_equal(cols["b_fn_cats"][cols["b_fn_img"] == 0], cols["fn_cats"][cols["fn_img"] == 0])
    assert (cols["b_fn_img"] == 0).any() and not (cols["b_tp_img"] == 1).any() and not (cols["b_fn_img"] == 1).any()


@pytest.mark.parametrize("shape", [(45, 60), (96, 128), (1, 40)])
def test_the_per_image_boundary_match_in_c_equals_numpys(tmp_path: Path, monkeypatch, shape) -> None:
    """boundary_image_stats (eval's evaluators) matches in C (_match.boundary_match) as the numpy matcher does."""
    files = _write(tmp_path, shape, n=4)
    cats, pairs = load_pairs(read_truth(files[0]), files[2])
    for pair in pairs:
        got = score._score_one(cats, files[1], files[3], Scoring(boundary=True), pair).boundary
        with monkeypatch.context() as m:
            m.setattr(matching, "_native", Twin(matching._native, boundary_match=lambda *a: None))  # C declines
            want = score._score_one(cats, files[1], files[3], Scoring(boundary=True), pair).boundary
        assert got is not None and want is not None
        for name in ("tp_cats", "tp_ious", "fn_cats", "fp_cats"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


def _boundary_summary(files: tuple[Path, ...], cols: dict[str, np.ndarray]) -> tuple[PQStats, dict]:
    cats, pairs = load_pairs(read_truth(files[0]), files[2])
    stats = PQStats.zeros(len(cats))
    stats.add_columns(cols, len(pairs), BOUNDARY_PREFIX)
    return stats, pq_summary(stats, cats.ids, cats.isthing)


@pytest.mark.parametrize("seed", [0, 1])
def test_boundary_pq_in_c_equals_the_authors_reference(coco_sample: Path, tmp_path: Path, monkeypatch,
                                                       seed: int) -> None:
    a = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(a, tmp_path, seed)
    files = (a / "panoptic_val2017.json", a / "panoptic_val2017", pred_json, pred_dir)
    _, cols, fallbacks = _scored(files, monkeypatch, True)
    assert fallbacks == []
    stats, ours = _boundary_summary(files, cols)
    assert_boundary_reference_parity(*files, 0.02, stats, ours)
    assert 0 < ours["PQ"] < 100


def test_a_boundary_result_packed_as_c_writes_it_gives_its_columns(tmp_path: Path) -> None:
    """The per-image path's results (the fallbacks of a chunk) carry boundary PQ's columns as C's do."""
    files = _write(tmp_path, (40, 50), n=4)
    cats, pairs = load_pairs(read_truth(files[0]), files[2])
    results = [score._score_one(cats, files[1], files[3], Scoring(boundary=True), p) for p in pairs]
    cols = batch.res_columns([batch.packed(r) for r in results], boundary=True)
    want = results_to_columns(results)
    assert list(cols) == list(want)
    for k in cols:
        assert cols[k].dtype == want[k].dtype and np.array_equal(cols[k], want[k], equal_nan=True), k
