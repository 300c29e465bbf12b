"""The per-image sink: parts of a run reduced, or images taken from the resume cache, give the numbers
and analyses of one sink that scored every image, each image counted once."""

from __future__ import annotations

import numpy as np

from panbench.evaluation.sink import ImageSink
from panbench.evaluation.storage.cache import StatsCache
from panbench.pq.matching import CategoryTable

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


def _score(sink: ImageSink, indices) -> None:
    for i in indices:
        gt, segs, pred, pred_segs = _image(i)
        sink.score(i, gt, segs, pred, pred_segs, f"image {i}")


def _same(a: ImageSink, b: ImageSink) -> None:
    assert a.evaluate() == b.evaluate()
    sa, sb = a.analysis.analysis_set(CATS, list(range(N))), b.analysis.analysis_set(CATS, list(range(N)))
    assert sa.cols.keys() == sb.cols.keys() and all(np.array_equal(sa.cols[k], sb.cols[k]) for k in sa.cols)
    assert a.analysis.boundary_stats(len(CATS), N) == b.analysis.boundary_stats(len(CATS), N)


def test_parts_reduced_give_the_numbers_of_one_sink() -> None:
    whole = ImageSink(CATS, boundary=True)
    _score(whole, range(N))
    parts = [ImageSink(CATS, boundary=True) for _ in range(3)]
    for k, sink in enumerate(parts):
        _score(sink, range(k, N, 3))
    parts[1].reduce([parts[0].part(), parts[2].part()])
    assert whole.evaluate()["n_images"] == N
    _same(parts[1], whole)


def test_a_resumed_sink_counts_each_image_once(tmp_path) -> None:
    whole = ImageSink(CATS, boundary=True)
    _score(whole, range(N))
    first = ImageSink(CATS, boundary=True, cache=StatsCache(tmp_path, flush_every=3))
    _score(first, range(N))
    first.flush()
    again = ImageSink(CATS, boundary=True, cache=StatsCache(tmp_path, flush_every=3))
    done = again.resume(range(N), rerun={2, 5})  # two images run again (their predictions are to be saved)
    assert done == frozenset(range(N)) - {2, 5}
    _score(again, [2, 5])
    _same(again, whole)


def test_the_cache_gives_back_every_field_of_every_result_bit_for_bit(tmp_path) -> None:
    sink = ImageSink(CATS, boundary=True, cache=StatsCache(tmp_path, flush_every=3))
    _score(sink, range(N))
    sink.flush()
    cached = StatsCache(tmp_path).load()
    assert sorted(cached) == list(range(N))
    for i, (result, extra) in cached.items():
        kept = sink.analysis.results[i]
        assert extra is None
        for part, back in ((kept.match, result.match), (kept.stats, result.stats), (kept.boundary, result.boundary)):
            for name in vars(part):
                x, y = getattr(part, name), getattr(back, name)
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (i, name)


def test_a_chunk_of_another_cache_format_is_not_read_and_its_folder_is_named(tmp_path, monkeypatch) -> None:
    from panbench.evaluation.storage import cache

    parts = {"model": "m", "dataset": "d"}
    old = tmp_path / f"m-d-{'0' * 16}"
    sink = ImageSink(CATS, cache=StatsCache(old, flush_every=2, key_parts=parts))
    _score(sink, range(4))
    sink.flush()
    here = tmp_path / f"m-d-{cache.cache_key(parts)}"
    assert cache.older_format(here, parts) == old  # same key.json, another key: another cache format
    assert cache.older_format(here, {**parts, "dataset": "e"}) is None
    monkeypatch.setattr(cache, "CACHE_FORMAT", cache.CACHE_FORMAT + 1)
    assert StatsCache(old).load() == {}  # written by another format: every image runs again
