"""The diagnosis rules on confusion matrices and ids built by hand: each kind found, and silent on both sides of
each threshold (panbench.pq.diagnosis)."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.pq import diagnosis
from panbench.pq.diagnosis import category_mapping, channel_order, index_ids, swap_channels
from panbench.pq.matching import CategoryTable

IMAGES = 10  # the images each hand-built confusion matrix sums
COCO_LIKE_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28]


def table(ids: list[int] = COCO_LIKE_IDS) -> CategoryTable:
    return CategoryTable(ids, [f"cat{i}" for i in ids], [i < 20 for i in ids])


def conf_of(pairs: list[tuple[int, int, int]], n: int) -> np.ndarray:
    """A (n + 1)^2 confusion matrix from (ground-truth index, predicted index, pixels); VOID last."""
    conf = np.zeros((n + 1, n + 1), np.int64)
    for g, p, px in pairs:
        conf[g, p] += px
    conf[n, n] = 999  # VOID pixels never count
    return conf


def test_a_correct_prediction_has_no_finding():
    t = table()
    assert category_mapping(conf_of([(k, k, 1000 + k) for k in range(len(t))], len(t)), t, IMAGES) is None


def test_a_permutation_is_named_with_its_table_as_the_fix():
    t = table()
    perm = np.random.default_rng(0).permutation(len(t))  # predicted index perm[k] covers ground truth k
    f = category_mapping(conf_of([(k, int(perm[k]), 500) for k in range(len(t))], len(t)), t, IMAGES)
    assert f is not None and f.kind == "category_mapping"
    assert "another class order" in f.message and "by name" in f.message
    assert f.remap == {t.ids[int(perm[k])]: t.ids[k] for k in range(len(t))}
    assert f.pq_if_fixed is None


def test_an_offset_is_named_with_the_number_to_subtract():
    ids = list(range(1, 30))
    t = table(ids)
    f = category_mapping(conf_of([(k, k + 1, 500) for k in range(len(t) - 1)], len(t)), t, IMAGES)
    assert f is not None and f.kind == "category_mapping"
    assert "ground truth's +1" in f.message and "subtract 1 from each category_id" in f.message
    assert f.remap[5] == 4


def test_indexes_of_the_category_list_are_category_index():
    # ids whose 0-based indexes are themselves valid ids, so the prediction is accepted
    ids = [5, 0, 1, 2, 3, 4]
    t = table(ids)
    # class k (ground truth index k) written as id k, which is the category at index ids.index(k)
    f = category_mapping(conf_of([(k, ids.index(k), 800) for k in range(len(t))], len(t)), t, IMAGES)
    assert f is not None and f.kind == "category_index"
    assert "0-based indexes" in f.message and "categories[i]['id']" in f.message
    assert f.remap == {k: ids[k] for k in range(len(ids))}


@pytest.mark.parametrize("moved", [diagnosis.MIN_MOVED - 1, diagnosis.MIN_MOVED])
def test_mapping_needs_min_moved_categories(moved):
    """Two consistently swapped classes (a model confusing similar classes) are not a format mistake."""
    t = table()
    n = len(t)
    cycle = list(range(moved))  # ground truth k predicted as k + 1 (cyclically) for the first `moved`, most pixels
    pairs = [(k, cycle[(i + 1) % moved] if moved > 1 else k, 10_000) for i, k in enumerate(cycle)]
    pairs += [(k, k, 100) for k in range(moved, n)]  # the others right
    found = category_mapping(conf_of(pairs, n), t, IMAGES)
    assert (found is not None) == (moved >= diagnosis.MIN_MOVED)


@pytest.mark.parametrize("share", [diagnosis.FOLLOW_SHARE - 0.02, diagnosis.FOLLOW_SHARE + 0.02])
def test_mapping_must_explain_the_follow_share_of_pixels(share):
    t = table()
    n = len(t)
    pairs = [(k, (k + 1) % n, 1000) for k in range(n)]
    # noise: each ground-truth category also predicted as the category after next; kept out of each column's max
    noise = round(n * 1000 * (1 - share) / share / n)
    pairs += [(k, (k + 2) % n, noise) for k in range(n)]
    found = category_mapping(conf_of(pairs, n), t, IMAGES)
    assert (found is not None) == (share >= diagnosis.FOLLOW_SHARE)


@pytest.mark.parametrize("share", [diagnosis.MOVED_SHARE - 0.05, diagnosis.MOVED_SHARE + 0.05])
def test_moved_categories_must_hold_the_moved_share_of_pixels(share):
    t = table()
    n = len(t)
    moved = [(k, (k + 1) % 4, round(share * 10_000 / 4)) for k in range(4)]  # 4 categories in a cycle
    kept = [(k, k, round((1 - share) * 10_000 / (n - 4))) for k in range(4, n)]
    found = category_mapping(conf_of(moved + kept, n), t, IMAGES)
    assert (found is not None) == (share >= diagnosis.MOVED_SHARE)


def test_labels_drawn_at_random_have_no_finding():
    """Good masks, random labels: each predicted category lands on several ground-truth categories."""
    t = table()
    n = len(t)
    rng = np.random.default_rng(1)
    pairs = [(int(rng.integers(n)), int(rng.integers(n)), int(rng.integers(100, 5000))) for _ in range(20 * n)]
    assert category_mapping(conf_of(pairs, n), t, IMAGES) is None


def test_a_mapping_that_merges_categories_has_no_finding():
    t = table()
    n = len(t)
    pairs = [(k, (k // 2) + 1, 1000) for k in range(n)]  # two ground-truth categories per predicted one
    assert category_mapping(conf_of(pairs, n), t, IMAGES) is None


@pytest.mark.parametrize(("used", "phrase"), [
    ({0, 3, 12, 25}, "0-based index i"),
    ({1, 12, 26}, "1-based index i"),
    ({1, 12, 20, 26}, "1-based index i"),
])
def test_unknown_ids_that_are_indexes_are_named(used, phrase):
    f = index_ids(used, table())
    assert f is not None and f.kind == "category_index" and phrase in f.message


def test_indexes_that_fit_both_bases_name_both_fixes():
    f = index_ids({1, 2, 3}, table([2, 4, 6, 8, 10]))  # 1..3 of 5: neither 0 nor 5 used
    assert f is not None and "0-based index i (categories[i - 1]['id'] if 1-based)" in f.message


@pytest.mark.parametrize("used", [{1, 2, 13}, {1, 12, 300}, {-1, 3}, set(), {0, 1, 2, 13}, {1, 2, 12, 13},
                                  {0, 12, 26}])
def test_valid_or_out_of_range_ids_or_one_unknown_id_are_not_called_indexes(used):
    """Among them a VOID segment written as category 0 beside valid ids, one typo, and both 0 and the list's length
    (no indexing gives both)."""
    assert index_ids(used, table()) is None


def test_swapped_channels_are_found_only_when_every_absent_id_swaps_into_the_list():
    listed = [0x010203, 0x0A0B0C]
    assert swap_channels(0x030201) == 0x010203
    f = channel_order([0, 0x030201, 0x0C0B0A], listed)
    assert f is not None and f.kind == "channel_order" and "BGR" in f.message
    assert channel_order([0, 0x010203, 0x0A0B0C], listed) is None  # nothing absent
    assert channel_order([0x030201, 0x777777], listed) is None  # one absent id does not swap into the list


def test_encoded_ids_are_named_only_when_every_absent_id_decodes():
    t = table()
    listed = [0x112233, 0x445566]
    detectron2 = diagnosis.id_encoding([0, 1001, 13002, 0x112233], listed, t)  # categories 1 and 13
    assert detectron2 is not None and "category_id * 1000 + instance" in detectron2.message
    mmdet = diagnosis.id_encoding([3, 1003, 2005], listed, t)  # labels 3, 3 and 5 of 26 classes
    assert mmdet is not None and "INSTANCE_OFFSET" in mmdet.message
    assert diagnosis.id_encoding([3, 1003], listed, t) is None  # two ids are too few for mmdet's rule
    assert diagnosis.id_encoding([4, 5, 6], listed, t) is None  # small ids: segments left out of segments_info
    assert diagnosis.id_encoding([1001, 0x998877], listed, t) is None  # one absent id does not decode


def test_a_prediction_scaled_or_padded_is_named_and_another_size_is_not():
    scaled = diagnosis.input_size((800, 1067), (480, 640))
    assert scaled is not None and "scaled by 1.67" in scaled.message
    padded = diagnosis.input_size((448, 448), (427, 440))
    assert padded is not None and "padded to a multiple of 32" in padded.message
    assert diagnosis.input_size((400, 600), (480, 640)) is None and diagnosis.input_size((481, 640), (480, 640)) is None


@pytest.mark.parametrize("images", [diagnosis.MIN_MAPPED_IMAGES - 1, diagnosis.MIN_MAPPED_IMAGES])
def test_mapping_needs_min_images(images):
    """One image's mislabelled regions are no class order, however consistent."""
    t = table()
    n = len(t)
    found = category_mapping(conf_of([(k, (k + 1) % n, 500) for k in range(n)], n), t, images)
    assert (found is not None) == (images >= diagnosis.MIN_MAPPED_IMAGES)


def group_case(thing_pixels: int, spread: int = 0) -> tuple[np.ndarray, CategoryTable]:
    """The thing classes (ids < 20) written as the next thing class, ``thing_pixels`` each; the stuff classes right,
    holding most pixels; with ``spread``, each thing class also predicted as the one after next."""
    t = table()
    n = len(t)
    things = [k for k in range(n) if t.isthing[k]]
    pairs = [(g, things[(i + 1) % len(things)], thing_pixels) for i, g in enumerate(things)]
    pairs += [(g, things[(i + 2) % len(things)], spread) for i, g in enumerate(things) if spread]
    pairs += [(k, k, 50_000) for k in range(n) if not t.isthing[k]]
    return conf_of(pairs, n), t


def test_one_groups_class_order_is_found_only_where_that_groups_pq_is_near_zero():
    conf, t = group_case(1000)
    assert category_mapping(conf, t, IMAGES) is None  # over all pixels the stuff classes, right, hold most
    f = category_mapping(conf, t, IMAGES, {True: 0.0, False: 0.9})
    assert f is not None and "the thing classes' predicted categories" in f.message and f.remap[2] == 1
    assert category_mapping(conf, t, IMAGES, {True: diagnosis.LOW_GROUP_PQ, False: 0.9}) is None


def test_one_groups_mapping_must_explain_the_group_share_on_both_sides():
    """Each thing class also under a second predicted class: column by column the first still leads."""
    ok = round(1000 * (1 - diagnosis.GROUP_SHARE) / 2)  # share within the rule on both sides
    for spread, found in ((ok // 2, True), (3 * ok, False)):
        conf, t = group_case(1000, spread)
        assert (category_mapping(conf, t, IMAGES, {True: 0.0, False: 0.9}) is not None) == found


def test_encoded_ids_are_judged_over_the_images_together():
    t = table()
    first, second = ([4, 1004], [0x112233]), ([2, 3002], [0x445566])  # mmdet's: two ids an image
    assert diagnosis.encoded_ids([first], t) is None
    f = diagnosis.encoded_ids([first, second], t)
    assert f is not None and "INSTANCE_OFFSET" in f.message and "over 2 images" in f.message and f.decode == "mmdet"
    ids, segs = diagnosis.decoded(np.array([[4, 1004], [0, 26]]), "mmdet", t)  # 26: mmdet's VOID (26 classes)
    assert ids.tolist() == [[1, 2], [0, 0]] and [s["category_id"] for s in segs] == [t.ids[4], t.ids[4]]


def test_a_prediction_naming_another_images_file_is_an_image_ids_finding():
    gt = {1: {"file_name": "a.png"}, 2: {"file_name": "b.png"}, 3: {"file_name": "c.png"}}
    shifted = {2: {"file_name": "a.png"}, 3: {"file_name": "b.png"}, 4: {"file_name": "c.png"}}
    f = diagnosis.image_pairing(gt, shifted)
    assert f is not None and f.kind == "image_ids" and f.images == {"a.png": 1, "b.png": 2, "c.png": 3}
    assert f.files == {2: "b.png", 3: "c.png"}  # image 4 is no ground-truth image: its file is the only clue
    assert f.message.startswith("the prediction for image 2 names file a.png, which is image 1")
    by_ids, by_files = diagnosis.pairing_fixes(f)
    assert by_ids.images == f.images and not by_ids.files and "write each prediction's image_id" in by_ids.message
    assert by_files.files == f.files and not by_files.images and "write each prediction's file_name" in by_files.message
    assert "neither" in diagnosis.pairing_unfixed(f).message and not diagnosis.pairing_unfixed(f).fixable
    twice = [{"image_id": 2, "file_name": "a.png"}, {"image_id": 2, "file_name": "b.png"}, {"image_id": [3]}]
    g = diagnosis.image_pairing(gt, twice)  # the raw list: two predictions of image 2, one naming image 1's file
    assert g is not None and g.images == {"a.png": 1} and g.message.startswith("the prediction for image 2 names")
    assert diagnosis.image_pairing(gt, {1: {"file_name": "x/a.jpg"}, 2: {"file_name": "b.png"}}) is None
    assert diagnosis.image_pairing(gt, {"1": {"file_name": "a.png"}, 9: {"file_name": "a.png"}}) is None


@pytest.mark.parametrize(("pred_of", "phrase"), [
    (lambda k, ids: sorted(ids).index(ids[k]) + 1, "ids in ascending order"),
    (lambda k, ids: ids[k] + 100, "ground truth's +100"),
])
def test_unknown_ids_are_named_by_the_rule_the_masks_follow(pred_of, phrase):
    ids = [5, 2, 9, 1, 7]  # listed out of ascending order
    t = table(ids)
    used = sorted({pred_of(k, ids) for k in range(len(ids))} - set(ids))
    wide = ids + used
    k = np.zeros((len(ids), len(wide)), np.int64)
    for g in range(len(ids)):
        k[g, wide.index(pred_of(g, ids))] = 1000
    f = diagnosis.unknown_categories(k, k, t, wide)
    assert f is not None and phrase in f.message
    assert all(f.remap[pred_of(g, ids)] == ids[g] for g in range(len(ids)))
