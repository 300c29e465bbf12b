"""The per-image table: its counts add up to the run's, and each row is the PQ of its image alone."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.analysis import AnalysisSet
from panbench.analysis.per_image import COLUMNS, per_image_columns, ranked, write_per_image
from panbench.data.synth import coco_like_categories, perturb, random_image
from panbench.errors import InputError
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable

CATS = coco_like_categories(8, 6)
TABLE = CategoryTable.from_coco(CATS)


def _images(n: int) -> list[tuple]:
    rng = np.random.default_rng(n)
    out = []
    for _ in range(n):
        gt = random_image(rng, 60, 80, CATS, crowd_prob=0.3)
        pred = perturb(rng, gt, CATS)
        out.append((gt.ids, gt.segments_info, pred.ids, pred.segments_info))
    return out


def _set(images: list[tuple]) -> AnalysisSet:
    matches = [score_pair(TABLE, *im, f"image {k}").match for k, im in enumerate(images)]
    return AnalysisSet.from_images(matches, len(TABLE), [f"im{k}" for k in range(len(images))],
                                   TABLE.ids, TABLE.isthing)


def test_per_image_counts_add_up_to_the_run_counts() -> None:
    images = _images(6)
    ev = PanopticAccumulator(TABLE)
    for im in images:
        ev.add(score_pair(TABLE, *im, "image"))
    per_class = ev.evaluate()["per_class"].values()
    cols = per_image_columns(_set(images))
    for key in ("TP", "FP", "FN"):
        assert int(np.sum(cols[key])) == sum(c[key] for c in per_class)


def test_each_row_is_the_pq_of_its_image_alone() -> None:
    images = _images(4)
    cols = per_image_columns(_set(images))
    for k, im in enumerate(images):
        ev = PanopticAccumulator(TABLE)
        ev.add(score_pair(TABLE, *im, "image"))
        alone = ev.evaluate()
        for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st"):
            assert cols[key][k] == pytest.approx(alone[key], abs=1e-9)


def test_the_table_is_written_as_csv(tmp_path) -> None:
    import pandas as pd

    aset = _set(_images(3))
    frame = pd.read_csv(write_per_image(aset, tmp_path / "images.csv"))
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 3
    assert frame["TP"].sum() == len(aset.tp_cats)


def test_another_suffix_is_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(InputError, match=r"\.csv or \.parquet"):
        write_per_image(_set(_images(1)), tmp_path / "images.txt")


def test_an_image_without_segments_has_no_pq_and_ranks_last() -> None:
    images = _images(3)
    empty = np.zeros_like(images[0][0])
    images.insert(1, (empty, [], empty.copy(), []))
    cols = per_image_columns(_set(images))
    assert np.isnan(cols["PQ"][1]) and cols["TP"][1] == cols["FP"][1] == cols["FN"][1] == 0
    rows = ranked(cols, n=4)
    assert rows[-1]["image_id"] == "im1" and rows[-1]["PQ"] is None
    assert [r["PQ"] for r in rows[:3]] == sorted(r["PQ"] for r in rows[:3])


def test_ranked_against_another_run_orders_by_the_loss() -> None:
    images = _images(5)
    a = per_image_columns(_set(images))
    b = {**a, "PQ": np.asarray(a["PQ"]) + np.array([5.0, -1.0, 30.0, 0.0, 12.0])}
    assert [r["image_id"] for r in ranked(a, b, n=3)] == ["im2", "im4", "im0"]
    assert ranked(a, b, n=1)[0]["key"] == pytest.approx(-30.0)
    with pytest.raises(InputError, match="share no image"):
        ranked(a, {**b, "image_id": ["x"] * 5})


def test_parquet_round_trip_and_its_refusal_without_pyarrow(tmp_path, monkeypatch) -> None:
    import importlib.util

    import pandas as pd

    aset = _set(_images(2))
    if importlib.util.find_spec("pyarrow") is not None:
        frame = pd.read_parquet(write_per_image(aset, tmp_path / "t.parquet", ["a.jpg", "b.jpg"]))
        assert list(frame["file_name"]) == ["a.jpg", "b.jpg"] and list(frame.columns) == list(COLUMNS)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    with pytest.raises(InputError, match=r"t2\.parquet: Parquet needs pyarrow.*pip install pyarrow"):
        write_per_image(aset, tmp_path / "t2.parquet")


def test_the_table_is_made_in_blocks_of_images_with_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense per-category sums are BLOCK x C at most (not N x C); each row's numbers are those of one block."""
    from panbench.analysis import per_image

    images = _images(11)
    images.insert(4, (np.zeros((60, 80), np.uint32), [], np.zeros((60, 80), np.uint32), []))  # no segment: NaN
    a = _set(images)
    want = per_image_columns(a)
    dense = AnalysisSet.per_image
    rows: list[int] = []

    def counted(s: AnalysisSet, lo: int = 0, hi: int | None = None) -> tuple[np.ndarray, ...]:
        rows.append((s.n_images if hi is None else hi) - lo)
        return dense(s, lo, hi)

    monkeypatch.setattr(AnalysisSet, "per_image", counted)
    for block in (1, 3, 5, 12):
        monkeypatch.setattr(per_image, "BLOCK", block)
        rows.clear()
        got = per_image_columns(a)
        assert max(rows) <= block and sum(rows) == a.n_images
        for key in COLUMNS:
            assert np.asarray(got[key]).dtype == np.asarray(want[key]).dtype, key
            np.testing.assert_array_equal(got[key], want[key], err_msg=key, strict=True)
