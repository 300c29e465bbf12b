"""panbench.analysis as a whole: the JSON-ready summary and its imports (numpy only)."""

from __future__ import annotations

import json
import subprocess
import sys

from analysis_cases import TABLE, one_set
from helpers import analysis_fields
from test_analysis_breakdown import CLASSIFICATION, DUPLICATE, SEGMENTATION
from test_analysis_size_dagger import size_image

from panbench.analysis import analyze, error_breakdown, pq_by_size, pq_dagger


def test_analyze_gives_no_interval_for_fewer_images_or_resamples_than_it_needs() -> None:
    few = one_set(size_image(), CLASSIFICATION, SEGMENTATION, DUPLICATE)
    assert "ci" not in analyze(few, TABLE.isthing, n_resamples=1000)
    many = one_set(*[size_image(), CLASSIFICATION, SEGMENTATION, DUPLICATE] * 3)
    assert "ci" not in analyze(many, TABLE.isthing, n_resamples=99) and "ci" in analyze(many, TABLE.isthing, 100)


def test_analyze_collects_every_default_analysis() -> None:
    a = one_set(*[size_image(), CLASSIFICATION, SEGMENTATION, DUPLICATE] * 3)  # 12 images: MIN_IMAGES
    out = analyze(a, TABLE.isthing, n_resamples=100, seed=1)
    assert set(out) == set(analysis_fields()) - {"score_threshold", "calibration"}  # these predictions have no scores
    assert set(out["ci"]) == {"PQ", "SQ", "RQ", "PQ_th", "PQ_st"}
    assert out["by_size"] == pq_by_size(a, TABLE.isthing)
    assert out["pq_dagger"] == pq_dagger(a, TABLE.isthing)["PQ_dagger"]
    eb = error_breakdown(a, TABLE.isthing)
    assert {k: v["delta_PQ"] for k, v in out["errors"].items()} == {k: v["delta_PQ"] for k, v in eb["errors"].items()}
    json.dumps(out)  # JSON-ready: plain floats and ints
    assert "ci" not in analyze(a, TABLE.isthing, n_resamples=0)


def test_analysis_never_imports_torch_or_mmdet() -> None:
    code = ("import sys, panbench.analysis, panbench.analysis.scoring, panbench.pq.boundary; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmdet', 'mmcv', 'mmengine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_analysis_files_round_trip_and_format_1_files_still_load(tmp_path) -> None:
    """An AnalysisSet saves and loads exactly; a format-1 file (before fn_pair_other) loads with that
    column as zeros, and a file of an unknown format is refused in one line."""
    import numpy as np
    import pytest

    from panbench.analysis import AnalysisSet
    from panbench.errors import InputError

    a = one_set(CLASSIFICATION, SEGMENTATION, DUPLICATE)
    a.category_ids, a.isthing = TABLE.ids, TABLE.isthing
    a.save(tmp_path / "a.npz")
    b = AnalysisSet.load(tmp_path / "a.npz")
    assert b.cols.keys() == a.cols.keys() and b.category_ids == a.category_ids
    assert all(np.array_equal(a.cols[k], b.cols[k], equal_nan=True) and a.cols[k].dtype == b.cols[k].dtype
               for k in a.cols)
    z = dict(np.load(tmp_path / "a.npz"))
    del z["fn_pair_other"]
    np.savez(tmp_path / "old.npz", **{**z, "format": np.int64(1)})
    old = AnalysisSet.load(tmp_path / "old.npz")
    assert old.fn_pair_other.tolist() == [0.0] * len(old.fn_cats) and len(old.fn_cats) == 2
    np.savez(tmp_path / "new.npz", **{**z, "format": np.int64(99)})
    with pytest.raises(InputError, match="format 99"):
        AnalysisSet.load(tmp_path / "new.npz")
