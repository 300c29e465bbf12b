"""The attribution's matcher (panbench.pq.quirks): with no quirk on it is panopticapi's match, with all of a rule's on
that rule's function, on every image of tests/pq/test_rules.py's set; each quirk's row on a hand-made case whose
effect is known; the rows sum to the rule's PQ minus panopticapi's."""

from __future__ import annotations

import numpy as np
import pytest
from rule_references import TABLE_RULES
from rule_sets import CATS, image_set_fixture, images  # noqa: F401 - the fixture

from panbench.metrics import PanopticQuality
from panbench.pq import quirks
from panbench.pq.evaluator import pair_table, table_result
from panbench.pq.matching import CategoryTable
from panbench.pq.quirks import ORDER, Quirks, add_table_sums, quirk_code, quirk_sums, states, table_of
from panbench.pq.rules import RuleSums


def _same(a, b, where) -> None:
    for name in ("tp", "fp", "fn"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), (where, name)
    assert np.array_equal(a.iou, b.iou), where  # fixed point: the same IoUs give the same sums


@pytest.mark.parametrize("rule", [None, *TABLE_RULES])
def test_the_matcher_is_panopticapi_with_no_quirk_and_each_rule_with_all_of_its_own(rule: str | None,
                                                                                   image_set) -> None:
    _, imgs, cats = image_set
    table = CategoryTable.from_coco(cats)
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        inter, gt, pred = pair_table(table, gt_ids, segs, p_ids, p_segs, f"image {i}")
        if rule is None:
            s = table_result(inter, gt, pred).stats
            want = RuleSums(*(np.bincount(c, minlength=len(table)).astype(np.int64)
                              for c in (s.tp_cats, s.fp_cats, s.fn_cats)), np.zeros(len(table), np.int64))
            want.add_ious(s.tp_cats, s.tp_ious)
            _same(quirk_sums(inter, gt, pred, table, Quirks()), want, i)
        else:
            _same(quirk_sums(inter, gt, pred, table, states(rule)[-1][1]), TABLE_RULES[rule](inter, gt, pred, table),
                  (rule, i))


def _some_states(k: int) -> list[Quirks]:
    """Every rule's states and ``k`` other combinations of the switches (all crowd modes among them)."""
    rng = np.random.default_rng(3)
    qs = [q for rule in ORDER for _, q in states(rule)]
    for _ in range(k):
        flags = {name: bool(rng.integers(2)) for name in ("pixel_areas", "unlisted_void", "stuff_merge", "void_union",
                                                          "fn_void", "float32", "void_class")}
        qs.append(Quirks(str(rng.choice(["last", "all", "none", "eomt"])), **flags))
    return qs


def test_the_c_matcher_gives_quirk_sums_sums_bit_for_bit_on_every_image_and_state(image_set) -> None:
    """``add_table_sums`` (``_rules.quirk_sums`` in C) against :func:`quirk_sums` image by image: every rule's states
    and random combinations of the switches, on every image at once."""
    _, imgs, cats = image_set
    table = CategoryTable.from_coco(cats)
    qs = _some_states(40)
    tables, want = [], np.zeros((len(qs), 4, len(table)), np.int64)
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        inter, gt, pred = pair_table(table, gt_ids, segs, p_ids, p_segs, f"image {i}")
        tables.append(table_of(inter, gt, pred))
        for k, q in enumerate(qs):
            r = quirk_sums(inter, gt, pred, table, q)
            want[k] += np.stack([r.tp, r.fp, r.fn, r.iou])
    got = np.zeros_like(want)
    add_table_sums(tables, table, np.array([quirk_code(q) for q in qs], np.int32), got)
    for k, q in enumerate(qs):
        assert np.array_equal(got[k], want[k]), q


def _cats() -> list[dict]:
    return [{"id": 1, "name": "thing", "isthing": 1}, {"id": 2, "name": "stuff", "isthing": 0}]


def _rows(rule: str, gt_ids, segs, p_ids, p_segs) -> dict[str, float]:
    m = PanopticQuality(_cats(), rules=[rule])
    m.update(p_ids, p_segs, gt_ids, segs)
    res = m.compute()
    rows = res.rules_attribution[rule]
    assert sum(r["PQ"] for r in rows) == pytest.approx(res.rules[rule]["PQ"] - res.metrics["PQ"], abs=1e-9)
    return {r["quirk"]: r["PQ"] for r in rows}


def test_a_json_area_larger_than_the_pixels_is_the_area_row() -> None:
    """A thing of 100 pixels (JSON: 120) predicted exactly: IoU 100/120 under panopticapi, 1 from the pixels."""
    ids = np.zeros((10, 20), np.uint32)
    ids[:, :10] = 1
    rows = _rows("torchmetrics", ids, [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 120}], ids.copy(),
                 [{"id": 1, "category_id": 1, "iscrowd": 0}])
    assert rows["ground-truth areas from the pixels"] == pytest.approx(100 * (1 - 100 / 120))
    assert all(abs(v) < 1e-9 for k, v in rows.items() if k != "ground-truth areas from the pixels")


def test_predicted_void_over_a_target_is_the_union_row() -> None:
    """A thing of 100 pixels predicted on 60 of them, the other 40 predicted VOID: IoU 0.6, or 1 out of the union."""
    gt = np.zeros((10, 20), np.uint32)
    gt[:, :10] = 1
    pred = gt.copy()
    pred[:4, :10] = 0
    rows = _rows("torchmetrics", gt, [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 100}], pred,
                 [{"id": 1, "category_id": 1, "iscrowd": 0}])
    assert rows["predicted VOID out of the union"] == pytest.approx(100 * (1 - 0.6))


def test_two_crowds_under_one_prediction_are_vernier_s_row() -> None:
    """Two crowd things and a stuff matched at IoU 0.975; a prediction of the thing lies on 120 of its 250 pixels on
    each crowd: an FP under the last crowd (the thing's PQ 0, the mean 48.75), ignored under every crowd (the thing
    absent, the mean 97.5)."""
    gt = np.full((20, 40), 3, np.uint32)
    gt[:, :10], gt[:, 30:] = 1, 2
    segs = [{"id": 1, "category_id": 1, "iscrowd": 1, "area": 200}, {"id": 2, "category_id": 1, "iscrowd": 1,
            "area": 200}, {"id": 3, "category_id": 2, "iscrowd": 0, "area": 400}]
    pred = gt.copy()
    pred[pred != 3] = 0
    pred[:, 4:10], pred[:, 30:36], pred[:1, 10:20] = 5, 5, 5
    p_segs = [{"id": 3, "category_id": 2, "iscrowd": 0}, {"id": 5, "category_id": 1, "iscrowd": 0}]
    rows = _rows("vernier-corrected", gt, segs, pred, p_segs)
    assert rows == {"every crowd of a category ignores": pytest.approx(97.5 / 2)}


def test_an_absent_class_is_eomt_s_mean_row() -> None:
    """A stuff predicted exactly and no thing: panopticapi's mean is over the stuff (100), EoMT's over both (50)."""
    ids = np.ones((10, 20), np.uint32)
    seg = [{"id": 1, "category_id": 2, "iscrowd": 0, "area": 200}]
    rows = _rows("eomt", ids, seg, ids.copy(), seg)
    assert rows["absent classes count 0 in the mean"] == pytest.approx(-50.0)
    assert all(abs(v) < 1e-9 for k, v in rows.items() if k != "absent classes count 0 in the mean")


def test_the_rows_of_each_rule_sum_to_its_difference_from_panopticapi_for_all_things_and_stuff() -> None:
    m = PanopticQuality(CATS, rules=list(TABLE_RULES))
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(images()):
        m.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    res = m.compute()
    for rule, rows in res.rules_attribution.items():
        assert [r["quirk"] for r in rows] == [name for name, _ in states(rule)]
        for k in ("PQ", "PQ_th", "PQ_st"):
            assert sum(r[k] for r in rows) == pytest.approx(res.rules[rule][k] - res.metrics[k], abs=1e-9), (rule, k)
        assert any(abs(r["PQ"]) > 0.01 for r in rows), rule  # the set shows each rule's gap


def test_the_c_matcher_refuses_a_table_of_no_category_instead_of_reading_past_its_buffers() -> None:
    table = (np.zeros((2, 1), np.int64), *(np.zeros(0, np.int64) for _ in range(3)), np.zeros(0, np.uint8),
             np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="one byte a category"):
        quirks._native.quirk_sums([table], np.zeros(0, np.uint8), np.zeros((1, 8), np.int32), np.zeros(0, np.int64))
