"""Fuzzing (hypothesis): the annotation loader and the PQ evaluator on random and malformed input
fail only with the documented InputError, never with another exception."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panbench.errors import InputError
from panbench.pq.coco_format import parse_annotations, parse_categories
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=5))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=12)
keys = st.sampled_from(["id", "image_id", "file_name", "segments_info", "category_id", "area", "iscrowd", "isthing"])
seg = st.dictionaries(keys, scalars, max_size=6)
ann = st.dictionaries(keys, st.one_of(scalars, st.lists(seg, max_size=3)), max_size=5)
doc = st.fixed_dictionaries({}, optional={"annotations": st.one_of(st.lists(ann, max_size=3), json_values),
                                          "categories": st.one_of(st.lists(st.dictionaries(keys, scalars), max_size=3),
                                                                  json_values)})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc, st.booleans())
def test_annotation_loader_raises_only_input_error(data, gt) -> None:
    json.dumps(data, allow_nan=True)
    try:
        parse_categories(data, "f.json")
    except InputError:
        pass
    try:
        parse_annotations(data, "f.json", gt=gt)
    except InputError:
        pass


CATS = CategoryTable([1, 5, 9], ["a", "b", "c"], [True, False, True])
seg_info = st.fixed_dictionaries({"id": st.one_of(st.integers(-5, 2**25), st.integers(-2**70, 2**70)),
                                  "category_id": st.sampled_from([1, 5, 9, 0, 77]),
                                  "area": st.integers(-3, 2**70)}, optional={"iscrowd": st.integers(-1, 2)})


@st.composite
def image_case(draw):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    pool = draw(st.lists(st.integers(0, 2**24 - 1), min_size=1, max_size=4))
    gt = np.array(draw(st.lists(st.sampled_from(pool), min_size=h * w, max_size=h * w)), np.uint32).reshape(h, w)
    ph, pw = (h, w) if draw(st.booleans()) else (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    pred = np.array(draw(st.lists(st.sampled_from(pool), min_size=ph * pw, max_size=ph * pw)), np.uint32)
    return gt, draw(st.lists(seg_info, max_size=4)), pred.reshape(ph, pw), draw(st.lists(seg_info, max_size=4))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_case())
def test_evaluator_raises_only_input_error(case) -> None:
    gt, gt_info, pred, pred_info = case
    try:
        s = score_pair(CATS, gt, gt_info, pred, pred_info, "image 1").stats
    except InputError:
        return
    assert len(s.tp_cats) == len(s.tp_ious) and np.all(s.tp_ious > 0.5)
