"""A run's evaluators: parts of a run reduced, or images taken from the resume cache, give the numbers
and analyses of evaluators that scored every image, each image counted once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from helpers import pq_columns

from panbench.evaluation.storage import StatsCache
from panbench.evaluators import Evaluators
from panbench.pq.matching import CategoryTable, ImageMatch, ImageStats
from panbench.pq.result import (
    BOUNDARY_FIELDS,
    BOUNDARY_PREFIX,
    MATCH_FIELDS,
    SEMANTIC_FIELDS,
    ImageResult,
    from_columns,
)
from panbench.pq.sums import PQStats

CATS = CategoryTable([1, 2, 3], ["a", "b", "c"], [True, True, False])
N = 8


def _image(k: int) -> tuple[np.ndarray, list, np.ndarray, list]:
    """Image ``k``: a ground truth of four blocks and a prediction that moves their borders and relabels one."""
    rng = np.random.default_rng(k)
    gt = np.zeros((16, 16), np.uint32)
    gt[:8, :8], gt[:8, 8:], gt[8:, :8], gt[8:, 8:] = 1, 2, 3, 4
    pred = gt.copy()
    r, c = rng.integers(4, 12, size=2)
    pred[r:, c:] = 4
    cats = rng.integers(1, 4, size=4)
    segs = [{"id": i, "category_id": int(c), "iscrowd": 0, "area": int((gt == i).sum())}
            for i, c in zip(range(1, 5), cats)]
    cats[rng.integers(0, 4)] = rng.integers(1, 4)
    pred_segs = [{"id": i, "category_id": int(c), "iscrowd": 0, "area": int((pred == i).sum())}
                 for i, c in zip(range(1, 5), cats)]
    return gt, segs, pred, pred_segs


def _score(ev: Evaluators, indices) -> None:
    for i in indices:
        gt, segs, pred, pred_segs = _image(i)
        ev.score(i, gt, segs, pred, pred_segs, f"image {i}", 100 + i)


def _same(a: Evaluators, b: Evaluators) -> None:
    fields_a, fields_b = a.evaluate(), b.evaluate()
    res_a, res_b = fields_a.pop("metrics"), fields_b.pop("metrics")
    ids = list(range(100, 100 + N))
    assert res_a == res_b and fields_a["analysis"].image_ids == fields_b["analysis"].image_ids == ids
    plain = [json.dumps({k: v for k, v in f.items() if k != "analysis"}, sort_keys=True) for f in (fields_a, fields_b)]
    assert plain[0] == plain[1] and "pq_dagger" in fields_a and "boundary" in fields_a
    sa, sb = pq_columns(a).dense_columns(N), pq_columns(b).dense_columns(N)
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k], equal_nan=True) and sa[k].dtype == sb[k].dtype
                                          for k in sa)
    assert pq_columns(a).boundary_stats(N) == pq_columns(b).boundary_stats(N)


def test_parts_reduced_give_the_numbers_of_evaluators_that_scored_every_image() -> None:
    whole = Evaluators.for_run(CATS, boundary=True)
    _score(whole, range(N))
    parts = [Evaluators.for_run(CATS, boundary=True) for _ in range(3)]
    for k, ev in enumerate(parts):
        _score(ev, range(k, N, 3))
    parts[1].reduce([parts[0].part(), parts[2].part()])
    assert whole.evaluate()["metrics"]["n_images"] == N
    _same(parts[1], whole)


def test_resumed_evaluators_count_each_image_once(tmp_path) -> None:
    whole = Evaluators.for_run(CATS, boundary=True)
    _score(whole, range(N))
    first = Evaluators.for_run(CATS, boundary=True, observer=StatsCache(tmp_path, flush_every=3))
    _score(first, range(N))
    first.observer.flush()
    again = Evaluators.for_run(CATS, boundary=True, observer=StatsCache(tmp_path, flush_every=3))
    # two images run again (their predictions are to be saved)
    done, _ = again.resume(again.observer.load(), range(N), rerun={2, 5})
    assert done == frozenset(range(N)) - {2, 5}
    _score(again, [2, 5])
    _same(again, whole)


def test_the_cache_gives_back_every_field_of_every_result_bit_for_bit(tmp_path) -> None:
    ev = Evaluators.for_run(CATS, boundary=True, observer=StatsCache(tmp_path, flush_every=3))
    _score(ev, range(N))
    ev.observer.flush()
    cached = StatsCache(tmp_path).load()
    assert sorted(cached.indices.tolist()) == list(range(N))
    assert sorted(cached.extras, key=lambda e: e["Analyses@1"][0]) == [
        {"Analyses@1": [i, 100 + i], "SemanticConfusion@1": None} for i in range(N)]
    held = results_from_columns(pq_columns(ev).dense_columns(N), N)  # the match's and boundary PQ's columns
    back_all = results_from_columns(cached.columns, N)
    for i, result in zip(cached.indices.tolist(), back_all):
        kept = held[i]
        for part, back in ((kept.match, result.match), (kept.boundary, result.boundary)):
            for name in vars(part):
                x, y = getattr(part, name), getattr(back, name)
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (i, name)
    sums = PQStats.zeros(len(CATS))  # the semantic columns, which the accumulator only sums: the same sums
    sums.add_columns(cached.columns, N)
    assert sums == pq_columns(ev).stats and sums.conf.sum() > 0


def test_a_chunk_of_another_cache_format_is_not_read_and_its_folder_is_named(tmp_path, monkeypatch) -> None:
    from panbench.evaluation import storage as cache

    parts = {"model": "m", "dataset": "d"}
    old = tmp_path / f"m-d-{'0' * 16}"
    ev = Evaluators.for_run(CATS, observer=StatsCache(old, flush_every=2, key_parts=parts))
    _score(ev, range(4))
    ev.observer.flush()
    here = tmp_path / f"m-d-{cache.cache_key(parts)}"
    assert cache.older_format(here, parts) == old  # same key.json, another key: another cache format
    assert cache.older_format(here, {**parts, "dataset": "e"}) is None
    monkeypatch.setattr(cache, "CACHE_FORMAT", cache.CACHE_FORMAT + 1)
    assert len(StatsCache(old).load().indices) == 0  # written by another format: every image runs again


def results_from_columns(cols: Any, n_images: int) -> list[ImageResult]:
    """``results_to_columns`` inverted, image by image: the reference that reads the columns back."""
    matches = from_columns(cols, MATCH_FIELDS, n_images)
    keys = cols.files if hasattr(cols, "files") else cols
    sem = from_columns(cols, SEMANTIC_FIELDS, n_images) if "sem_img" in keys else [{}] * n_images
    has_b = BOUNDARY_PREFIX + BOUNDARY_FIELDS[0] in keys
    bounds = from_columns(cols, BOUNDARY_FIELDS, n_images, BOUNDARY_PREFIX) if has_b else [None] * n_images
    return [ImageResult(ImageMatch(**m), **s, boundary=None if b is None else ImageStats(**b))
            for m, s, b in zip(matches, sem, bounds, strict=True)]


def test_a_malformed_chunk_is_never_trusted_and_an_odd_one_drops_no_good_chunk(tmp_path) -> None:
    import io

    ev = Evaluators.for_run(CATS, observer=StatsCache(tmp_path, flush_every=4))
    _score(ev, range(8))
    ev.observer.flush()
    good = sorted(tmp_path.glob("chunk-*.npz"))
    assert len(good) == 2
    z = dict(np.load(good[0]))
    for name, change in (("a-short", lambda d: {**d, "fn_cats": d["fn_cats"][:-1]}),  # a field shorter than its rows
                         ("b-back", lambda d: {**d, "tp_img": d["tp_img"][::-1].copy()}),  # rows out of order
                         ("0-odd", lambda d: {**d, "x_extra": np.zeros(1)})):  # sorted first: other keys
        buf = io.BytesIO()
        np.savez(buf, **change(z))
        (tmp_path / f"chunk-{name}.npz").write_bytes(buf.getvalue())
    loaded = StatsCache(tmp_path).load()
    assert sorted(loaded.indices.tolist()) == list(range(8))  # the two good chunks, none of the three others


def test_an_image_refused_by_ap_changes_no_evaluator() -> None:
    from panbench.errors import PanbenchError

    ev = Evaluators.for_run(CATS, ap=True)
    gt, segs, pred, pred_segs = _image(0)
    boxed = [{**s, "bbox": [0, 0, 8, 8]} for s in segs]  # AP's ground truth reads each thing's box
    ev.score(0, gt, boxed, pred, pred_segs, "image 0", image_id=7)
    before = pq_columns(ev).stats.to_array().copy()
    gt, segs, pred, pred_segs = _image(1)
    segs = [{**s, "bbox": [0, 0, 8, 8]} for s in segs]
    with pytest.raises(PanbenchError, match="scored twice for AP"):
        ev.score(1, gt, segs, pred, pred_segs, "image 1", image_id=7)
    assert np.array_equal(pq_columns(ev).stats.to_array(), before) and pq_columns(ev).n_kept() == 1
