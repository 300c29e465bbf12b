"""The analyses' sums (``panbench.analysis.collect.Fold``) added part by part are the sums of all the columns at
once, bit for bit, whatever the parts; the bootstrap's fixed-point rows refuse what would overflow; ``score`` gives
the fields the columns give, on the batch path, the per-image path and forked workers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS
from helpers import score_with_analyses

from panbench.analysis import AnalysisSet, compute_fields
from panbench.analysis.breakdown import ErrorSums
from panbench.analysis.collect import AnalysisInputs, Fold, Totals
from panbench.analysis.metrics import GtSums, SizeSums
from panbench.analysis.resample import ImageSums, fixed_sums
from panbench.analysis.scoring import run_fields
from panbench.data.synth import perturb, random_image, write_panoptic
from panbench.pq import batch
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.result import results_to_columns

KINDS = (Totals, SizeSums, GtSums, ErrorSums, ImageSums)


def scored_set(n: int, seed: int = 0) -> tuple[CategoryTable, AnalysisSet]:
    rng = np.random.default_rng(seed)
    cats = CategoryTable.from_coco(CATS)
    results = []
    for _ in range(n):
        gt = random_image(rng, 60, 80, CATS)
        pred = perturb(rng, gt, CATS)
        results.append(score_pair(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info))
    cols = results_to_columns(results)
    return cats, AnalysisSet.from_columns(cols, len(cats), list(range(n)), cats.ids, cats.isthing)


def part(cols: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    """The columns of images lo..hi-1, their image numbers counted from 0."""
    out = {}
    for k, v in cols.items():
        group = k.split("_", 1)[0]
        img = cols[group + "_img"]
        keep = (img >= lo) & (img < hi)
        out[k] = v[keep] - lo if k == group + "_img" else v[keep]
    return out


def fold_in_parts(kind: type[Fold], a: AnalysisSet, bounds: list[int]) -> Fold:
    f = kind(a.n_categories)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        f.add(part(a.cols, lo, hi), hi - lo)
    return f


def state(f: Fold) -> dict[str, bytes]:
    """Every array a fold holds, as its bytes (floats compared bit for bit)."""
    out = {k: np.ascontiguousarray(v).tobytes() for k, v in vars(f).items() if isinstance(v, np.ndarray)}
    if isinstance(f, ImageSums):
        out["rows"] = b"".join(x.tobytes() for x in f.rows())
    return out


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_a_fold_in_any_parts_holds_the_bits_of_one_fold_of_every_image(kind: type[Fold]) -> None:
    _, a = scored_set(40)
    whole = kind.of(a)
    assert whole.n_images == 40
    for bounds in ([0, 40], [0, 1, 2, 17, 17, 40], [0, *range(3, 40, 3), 40]):
        parts = fold_in_parts(kind, a, bounds)
        assert parts.n_images == 40 and state(parts) == state(whole), bounds


def test_float_sums_differ_when_added_per_part_so_the_test_above_can_fail() -> None:
    _, a = scored_set(40)
    c, img = a.n_categories, a.tp_img
    per_part = sum(np.bincount(a.tp_cats[(img >= lo) & (img < lo + 3)], a.tp_ious[(img >= lo) & (img < lo + 3)],
                               minlength=c) for lo in range(0, 40, 3))
    assert per_part.tobytes() != Totals.of(a).iou.tobytes()


def test_the_image_sums_rows_are_the_fixed_point_rows_of_the_dense_sums() -> None:
    _, a = scored_set(30)
    iou, tp, fp, fn = a.per_image()
    fixed = fixed_sums(np.concatenate([iou, tp, fp + fn], axis=1), [slice(0, a.n_categories)])
    indptr, cols, vals = ImageSums.of(a).rows()
    dense = np.zeros_like(fixed)
    dense[np.repeat(np.arange(30), np.diff(indptr)), cols] = vals
    assert np.array_equal(dense, fixed) and len(vals) == np.count_nonzero(fixed)


def fields_text(inp: AnalysisInputs) -> str:
    with np.errstate(invalid="ignore", over="ignore"):  # the float product of IoUs no fixed point holds
        return json.dumps(compute_fields(inp), sort_keys=True)


@pytest.mark.parametrize("iou", [np.inf, 2.0**19], ids=["infinite", "whole-set-overflow"])
def test_image_sums_refuse_what_the_fixed_point_refuses_and_the_fields_stay_those_of_the_columns(iou) -> None:
    cats, a = scored_set(12)
    a.cols["tp_ious"] = a.cols["tp_ious"].copy()
    if np.isinf(iou):
        a.cols["tp_ious"][3] = iou
    else:  # every part fits (a few TPs of 2^59 units), the whole set's sums could not (12 images times that)
        a.cols["tp_ious"][:] = iou
    iou_sums, tp, fp, fn = a.per_image()
    assert fixed_sums(np.concatenate([iou_sums, tp, fp + fn], axis=1), [slice(0, a.n_categories)]) is None
    parts = fold_in_parts(ImageSums, a, [0, 1, 2, 12])
    assert parts.rows() is None and parts.refused == bool(np.isinf(iou))
    assert ImageSums.of(a).rows() is None
    assert "ci" in json.loads(fields_text(AnalysisInputs(a, cats.isthing, 200, 0, cats.ids)).replace("NaN", "null"))


@pytest.fixture
def scored_files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    rng = np.random.default_rng(7)
    gt, pred = [], []
    for i in range(30):
        g = random_image(rng, 48, 64, CATS)
        gt.append((i + 1, g))
        pred.append((i + 1, perturb(rng, g, CATS)))
    return (*write_panoptic(tmp_path, "gt", gt, CATS), *write_panoptic(tmp_path, "pred", pred, CATS))


@pytest.mark.parametrize("path", ["batch", "per-image", "forked"])
def test_score_gives_the_fields_of_the_columns_on_every_path(scored_files, path: str, monkeypatch) -> None:
    if path == "batch" and not batch.available():
        pytest.skip("libdeflate's entry points are not found (or PANBENCH_PER_IMAGE=1)")
    monkeypatch.setattr(batch, "ADD_EVERY", 7)  # several parts
    if path != "batch":
        monkeypatch.setenv("PANBENCH_PER_IMAGE", "1")
    res, aset, fields = score_with_analyses(*scored_files, workers=2 if path == "forked" else 1)
    cats = CategoryTable.from_coco(CATS)
    assert json.dumps(fields, sort_keys=True) == json.dumps(run_fields(aset, cats), sort_keys=True)
    assert set(fields) >= {"ci", "by_size", "pq_dagger", "errors"}
