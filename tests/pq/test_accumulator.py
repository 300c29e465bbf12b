"""The accumulator is the only writer of its state: images, other processes' accumulators and all-reduced
sums go in through its methods, and the result equals scoring every image in one accumulator; its per-image
results come back as the columns of every image in position order, whatever the order and split they were
added in."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats

CATS = CategoryTable([1, 2], ["a", "b"], [True, False])


def _image(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 3, (16, 16)).astype(np.uint32)
    pred = gt.copy()
    pred[rng.random((16, 16)) < 0.2] = 0
    info = [{"id": 1, "category_id": 1, "iscrowd": 0}, {"id": 2, "category_id": 2, "iscrowd": 0}]
    keep = [s for s in info if (gt == s["id"]).any()]
    keep_p = [s for s in info if (pred == s["id"]).any()]
    for s in keep:
        s["area"] = int((gt == s["id"]).sum())
    return gt, keep, pred, keep_p


def test_add_merge_and_reduced_sums_equal_one_accumulator() -> None:
    images = [_image(k) for k in range(4)]
    whole = PanopticAccumulator(CATS)
    for im in images:
        whole.add(score_pair(whole.categories, *im))
    a, b = PanopticAccumulator(CATS), PanopticAccumulator(CATS)
    a.add(score_pair(CATS, *images[0], "image 0"))  # scored elsewhere (the resume cache)
    a.add(score_pair(a.categories, *images[1]))
    for im in images[2:]:
        b.add(score_pair(b.categories, *im))
    a.merge(b)  # another process's
    assert a.evaluate() == whole.evaluate()
    assert PQStats.from_array(a.stats.to_array()) == whole.stats  # what crosses process boundaries


def test_the_sums_cannot_be_replaced_from_outside() -> None:
    ev = PanopticAccumulator(CATS)
    with pytest.raises(AttributeError):
        ev.stats = PQStats.zeros(len(CATS))  # type: ignore[misc]


@pytest.mark.parametrize("batch", [1, 3, 2**22])
def test_adding_images_at_once_gives_the_sums_of_adding_them_one_by_one(monkeypatch: pytest.MonkeyPatch,
                                                                          batch: int) -> None:
    """Every field (IoU fraction and carry, TP/FP/FN, confusion, unlisted pixels, images), whatever the batch
    after which add_images carries the IoU fraction."""
    from panbench.pq import sums
    from panbench.pq.matching import ImageStats

    monkeypatch.setattr(sums, "_BATCH_MATCHES", batch)
    rng = np.random.default_rng(3)
    images = []
    for k in range(40):
        n_tp, n_sem = int(rng.integers(0, 5)), int(rng.integers(0, 4))
        images.append(ImageStats(
            tp_cats=rng.integers(0, 2, n_tp), tp_ious=rng.uniform(0.5, 1.0, n_tp), fn_cats=rng.integers(0, 2, k % 3),
            fp_cats=rng.integers(0, 2, k % 2), sem_gt=rng.integers(-1, 2, n_sem), sem_pred=rng.integers(-1, 2, n_sem),
            sem_px=rng.integers(1, 100, n_sem),
            unlisted_px=np.array([k], np.int64) if k % 7 == 1 else np.zeros(0, np.int64)))
    one_by_one, at_once = PQStats.zeros(2), PQStats.zeros(2)
    for s in images:
        one_by_one.add_image(s)
    at_once.add_images(images)
    assert at_once == one_by_one and at_once.n_images == 40
    assert at_once.unlisted.tolist() == [1 + 8 + 15 + 22 + 29 + 36, 6]
    assert at_once.iou_int.sum() > 0 and (at_once.iou < 2**sums.IOU_BITS).all()  # carried


def test_sums_survive_pickling_with_a_sparse_confusion_matrix() -> None:
    import pickle

    stats = PQStats.zeros(133)
    stats.conf[3, 7], stats.conf[133, 0], stats.iou[5], stats.n_images = 11, 2**40, 9, 4
    data = pickle.dumps(stats)
    back = pickle.loads(data)
    assert back == stats and back.n_images == 4 and back.conf.shape == (134, 134) and back.conf[133, 0] == 2**40
    assert len(data) < 134 * 134 * 8 / 10  # sparse: not the dense matrix


def _results(n: int, boundary: bool = True) -> list:
    from panbench.data.synth import coco_like_categories, perturb, random_image

    cats = coco_like_categories(4, 3)
    table = CategoryTable([c["id"] for c in cats], [c["name"] for c in cats], [bool(c["isthing"]) for c in cats])
    rng = np.random.default_rng(11)
    out = []
    for k in range(n):
        gt = random_image(rng, 24, 32, cats, n_things=(0, 4))
        pred = perturb(rng, gt, cats)
        out.append(score_pair(table, gt.ids, gt.segments_info, pred.ids, pred.segments_info, f"image {k}",
                              boundary=boundary))
    return table, out


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True)
                                        for k in a)


@pytest.mark.parametrize("chunk", [1, 3, 256])
def test_results_added_in_any_order_and_split_come_back_as_the_columns_of_the_images_in_order(
        monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    from panbench.pq import accumulator
    from panbench.pq.result import kept_columns, results_to_columns

    monkeypatch.setattr(accumulator, "_CHUNK", chunk)
    table, results = _results(12)
    want = kept_columns(results_to_columns(results))
    order = np.random.default_rng(0).permutation(12)
    parts = [PanopticAccumulator(table, keep_images=True, boundary=True) for _ in range(3)]
    for k, i in enumerate(order):  # three processes, each given images out of order
        parts[k % 3].add(results[i], int(i))
    whole = PanopticAccumulator(table, keep_images=True, boundary=True)
    for p in parts:
        whole.merge(pickle.loads(pickle.dumps(p)))  # as they cross processes
    idx, cols = whole.columns()
    assert idx.tolist() == list(range(12)) and _equal(cols, want) and _equal(whole.dense_columns(12), want)
    one = PanopticAccumulator(table)
    for r in results:
        one.add(r)
    assert whole.stats == one.stats and whole.evaluate() == one.evaluate()
    bstats = PQStats.zeros(len(table))
    bstats.add_images([r.boundary for r in results])
    assert whole.boundary_stats(12) == bstats


def test_columns_added_as_a_chunk_and_merged_with_an_offset_keep_their_positions() -> None:
    from panbench.pq.result import kept_columns, results_to_columns

    table, results = _results(7, boundary=False)
    a = PanopticAccumulator(table, keep_images=True)
    a.add(results_to_columns(results[3:]), np.arange(3, 7))  # a cached chunk
    b = PanopticAccumulator(table, keep_images=True)
    for r in results[:3]:
        b.add(r)
    b.merge(a)
    assert _equal(b.dense_columns(7), kept_columns(results_to_columns(results)))
    c = PanopticAccumulator(table, keep_images=True)
    c.merge(b, offset=0)
    c.merge(b, offset=7)  # a second round of the same images, after them
    assert _equal(c.dense_columns(14), kept_columns(results_to_columns(results + results))) and c.n_images == 14


def test_an_image_added_twice_or_missing_and_sums_without_results_are_internal_errors() -> None:
    from panbench.errors import PanbenchError

    table, results = _results(3, boundary=False)
    acc = PanopticAccumulator(table, keep_images=True)
    acc.add(results[0], 0)
    acc.add(results[1], 2)
    with pytest.raises(PanbenchError, match="no per-image result for 1 of 3 images .first: index 1"):
        acc.dense_columns(3)
    acc.add(results[2], 0)
    with pytest.raises(PanbenchError, match="added twice"):
        acc.columns()
    with pytest.raises(PanbenchError, match="sums without their per-image results"):
        acc.merge(_one(table, results[0]))


def _one(table: CategoryTable, result) -> PQStats:
    stats = PQStats.zeros(len(table))
    stats.add_image(result.stats)
    return stats


def test_reordered_columns_are_the_columns_of_the_images_reordered() -> None:
    from panbench.pq.result import reorder_columns, results_to_columns

    _, results = _results(9)
    order = np.random.default_rng(5).permutation(9)
    assert _equal(reorder_columns(results_to_columns(results), order),
                  results_to_columns([results[i] for i in order]))


def test_results_added_at_once_give_the_state_of_adding_each() -> None:
    table, results = _results(5)
    each, once = (PanopticAccumulator(table, keep_images=True, boundary=True) for _ in range(2))
    each.add(results[0])
    once.add(results[0])
    for r in results[1:]:
        each.add(r)
    once.add(results[1:])
    assert once.stats == each.stats and _equal(once.dense_columns(5), each.dense_columns(5))


def test_a_refused_merge_or_add_leaves_the_state_as_it_was() -> None:
    from dataclasses import replace

    from panbench.errors import PanbenchError

    table, results = _results(3)
    acc = PanopticAccumulator(table, keep_images=True, boundary=True)
    acc.add(results[0])
    before = acc.stats.to_array().copy()
    with pytest.raises(PanbenchError, match="merged with itself"):
        acc.merge(acc)
    other = PanopticAccumulator(table, keep_images=True)  # no boundary-PQ columns
    other.add(results[1])
    with pytest.raises(PanbenchError, match="other results"):
        acc.merge(other)
    bad = replace(results[2], match=replace(results[2].match, fn_cats=np.array([len(table)], np.int64)))
    with pytest.raises(PanbenchError, match="other categories"):
        acc.add(bad)
    assert np.array_equal(acc.stats.to_array(), before) and acc.n_kept() == 1


def test_reorder_columns_refuses_an_order_that_names_an_image_twice_or_a_negative_one() -> None:
    from panbench.pq.result import reorder_columns, results_to_columns

    _, results = _results(3, boundary=False)
    cols = results_to_columns(results)
    for order in ([0, 0, 1], [-1, 0]):
        with pytest.raises(ValueError, match="each image once"):
            reorder_columns(cols, np.array(order))
    assert _equal(reorder_columns(cols, np.array([2])), results_to_columns(results[2:]))  # some images only


@pytest.mark.parametrize("images", [5, True, "x"])
def test_a_ground_truth_whose_images_is_no_list_is_refused_by_the_dataset_in_one_line(tmp_path, images) -> None:
    import json

    from panbench.data.datasets import load_dataset
    from panbench.errors import InputError
    from panbench.pq.coco_format import read_ground_truth

    ann = tmp_path / "annotations"
    (ann / "panoptic_val2017").mkdir(parents=True)
    doc = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "a", "isthing": 1}]}
    (ann / "panoptic_val2017.json").write_text(json.dumps(doc))
    truth = read_ground_truth(ann / "panoptic_val2017.json")
    assert truth.sizes == {} and truth.image_ids() == []
    with pytest.raises(InputError, match="missing field 'images'"):
        load_dataset(tmp_path)


def test_images_enter_the_accumulator_one_way_and_states_combine_one_way() -> None:
    """add (one result, many, or their columns) and merge (an accumulator, or sums) are its only writers."""
    from panbench.pq.result import results_to_columns

    public = {n for n in vars(PanopticAccumulator) if not n.startswith("_")}
    assert public == {"reset", "stats", "n_images", "add", "merge", "n_kept", "columns", "dense_columns",
                      "boundary_stats", "evaluate", "diagnosis"}
    table, results = _results(4, boundary=False)
    one, many, cols, sums = (PanopticAccumulator(table) for _ in range(4))
    for r in results:
        one.add(r)
    many.add(results)
    cols.add(results_to_columns(results), np.arange(4))
    sums.merge(one.stats)
    assert one.stats == many.stats == cols.stats == sums.stats and sums.n_images == 4


def test_the_semantic_columns_are_summed_as_images_enter_and_only_the_match_columns_are_kept() -> None:
    """What an accumulator holds per image is what the analyses read: the match's columns (and boundary PQ's); the
    semantic confusion of each image is added to the sums as it enters, and the buffer C's columns were cut from is
    not kept alive by them."""
    from panbench.pq.matching import MATCH_FIELDS
    from panbench.pq.result import column_keys, results_to_columns

    table, results = _results(6, boundary=False)
    cols = results_to_columns(results)
    buffer = np.concatenate([cols["tp_cats"], cols["sem_px"]])  # columns cut from one buffer, as C's are
    cut = {**cols, "tp_cats": buffer[: len(cols["tp_cats"])]}
    acc = PanopticAccumulator(table, keep_images=True)
    acc.add(cut, np.arange(6))
    one = PanopticAccumulator(table)
    for r in results:
        one.add(r)
    kept = acc.dense_columns(6)
    assert sorted(kept) == sorted(column_keys(MATCH_FIELDS))
    assert kept["tp_cats"].base is None and np.array_equal(kept["tp_cats"], cols["tp_cats"])
    assert acc.stats == one.stats and acc.stats.conf.sum() == sum(int(r.sem_px.sum()) for r in results) > 0


@pytest.mark.parametrize("fail_at", [1, 3, 6])
def test_a_join_that_runs_out_of_memory_leaves_the_accumulators_parts_as_they_were(
        monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    from panbench.pq.result import kept_columns, results_to_columns

    table, results = _results(9, boundary=True)
    acc = PanopticAccumulator(table, keep_images=True, boundary=True)
    for k in range(0, 9, 3):
        acc.add(results_to_columns(results[k:k + 3]), np.arange(k, k + 3))
    before = [(idx.copy(), {k: v.copy() for k, v in cols.items()}) for idx, cols in acc._chunks]
    real, calls = np.concatenate, []

    def short(pieces, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == fail_at + 1:  # the first call concatenates the positions
            raise MemoryError
        return real(pieces, *a, **k)

    monkeypatch.setattr(np, "concatenate", short)
    with pytest.raises(MemoryError):
        acc.columns()
    monkeypatch.setattr(np, "concatenate", real)
    assert len(acc._chunks) == len(before)
    for (idx, cols), (idx0, cols0) in zip(acc._chunks, before):
        assert np.array_equal(idx, idx0) and _equal(cols, cols0)
    assert _equal(acc.dense_columns(9), kept_columns(results_to_columns(results)))
