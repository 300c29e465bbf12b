"""The JSON checks in C (``_match.segments`` and ``_match.typed``) give what the Python code gives: the same
arrays for a segments_info that passes, and the Python code's own error for one that does not (C passes it on)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_references import python_checks

from panbench.errors import InputError
from panbench.pq import coco_format, matching, native
from panbench.pq.matching import CategoryTable

CATS = CategoryTable.from_coco([{"id": i, "name": f"c{i}", "isthing": int(i < 5)} for i in (1, 2, 3, 7, 9, 200)])

# values a field may hold in a JSON someone wrote: the right kind (mostly), and each way it can be wrong
FIELDS = {
    "id": (st.integers(1, 2**24 - 1), st.sampled_from([0, -1, 2**24, 2**70, True, 1.0, "5", None])),
    "category_id": (st.sampled_from([1, 2, 3, 7, 9, 200]), st.sampled_from([4, 1.0, True, "1", None, 2**70])),
    "area": (st.integers(0, 10**6), st.sampled_from([-1, 2**62, 2**70, 1.5, False, None])),
    "iscrowd": (st.sampled_from([0, 1, 2, -1]), st.sampled_from([True, 1.0, None, "1", 2**70])),
}


@st.composite
def segment(draw: Any) -> Any:
    if draw(st.integers(0, 40)) == 0:
        return draw(st.sampled_from([None, 3, "s", [1, 2]]))
    s = {}
    for key, (good, bad) in FIELDS.items():
        if draw(st.integers(0, 40)):  # mostly present
            s[key] = draw(bad if draw(st.integers(0, 25)) == 0 else good)
    return s


def _python(fn: Any, *args: Any) -> Any:
    """``fn(*args)``'s outcome with the C checks declining (their Python code runs)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(matching, "_native", python_checks(matching._native))
        return _outcome(fn, *args)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except InputError as e:
        return ("InputError", str(e))
    except (KeyError, TypeError, ValueError) as e:
        return (type(e).__name__,)


def _same_segments(a: Any, b: Any) -> None:
    if isinstance(b, tuple):
        assert a == b
        return
    for name in ("ids", "cats", "iscrowd", "areas"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name


@settings(max_examples=400, deadline=None)
@given(segs=st.lists(segment(), max_size=8), gt=st.booleans(), dup=st.booleans())
def test_segments_in_c_give_the_python_arrays_or_its_error(segs: list, gt: bool, dup: bool) -> None:
    if dup and segs and isinstance(segs[0], dict):
        segs = [*segs, dict(segs[0])]  # a duplicate id (when the first has a usable one)
    got = _outcome(coco_format.parse_segments, segs, CATS, "image 1", gt)
    _same_segments(got, _python(coco_format.parse_segments, segs, CATS, "image 1", gt))


def test_valid_segments_take_the_c_path() -> None:
    segs = [{"id": 5, "category_id": 7, "area": 10, "iscrowd": 1}, {"id": 2**24 - 1, "category_id": 200, "area": 0},
            {"id": 6, "category_id": 1, "area": 3, "iscrowd": 2}]
    got = coco_format.parse_segments(segs, CATS, "x", True)
    assert got.ids.base is got.areas.base  # one buffer: the C path took it
    assert got.ids.tolist() == [5, 2**24 - 1, 6] and got.cats.tolist() == [3, 5, 0]
    assert got.iscrowd.tolist() == [True, False, False] and got.areas.tolist() == [10, 0, 3]
    _same_segments(got, _python(coco_format.parse_segments, segs, CATS, "x", True))


@settings(max_examples=300, deadline=None)
@given(segs=st.lists(segment(), max_size=6), gt=st.booleans())
def test_annotation_types_in_c_give_the_python_check(segs: list, gt: bool) -> None:
    data = {"annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": segs}]}
    got = _outcome(coco_format.parse_annotations, data, "g.json", gt)
    assert got == _python(coco_format.parse_annotations, data, "g.json", gt)
    assert native.match().typed(segs, gt) == all(coco_format._segment_ok(s, gt) for s in segs)
