"""Property tests (hypothesis): random label maps scored by panbench and by panopticapi agree;
per-category sums add up across any split of the images."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pq_parity import CATS, assert_parity

from panbench.data.synth import PanopticImage
from panbench.pq.evaluator import PanopticEvaluator
from panbench.pq.matching import CategoryTable, summarize

CAT_IDS = [c["id"] for c in CATS]


@st.composite
def label_map(draw, shape, n_max=5, crowd=False):
    h, w = shape
    n = draw(st.integers(0, n_max))
    ids = draw(st.lists(st.integers(1, 256**3 - 1), min_size=n, max_size=n, unique=True))
    pool = [0] + ids
    flat = draw(st.lists(st.sampled_from(pool), min_size=h * w, max_size=h * w))
    arr = np.array(flat, np.uint32).reshape(h, w)
    segs = []
    for i in ids:
        area = int((arr == i).sum())
        if area:
            segs.append({"id": i, "category_id": draw(st.sampled_from(CAT_IDS)),
                         "iscrowd": int(crowd and draw(st.booleans())), "area": area})
    return PanopticImage(arr, segs)


@st.composite
def image_pair(draw):
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    return draw(label_map(shape, crowd=True)), draw(label_map(shape))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(image_pair(), min_size=1, max_size=4))
def test_random_label_maps_match_panopticapi(pairs) -> None:
    with tempfile.TemporaryDirectory() as d:
        assert_parity(Path(d), [(i, g) for i, (g, _) in enumerate(pairs)], [(i, p) for i, (_, p) in enumerate(pairs)])


@settings(max_examples=40, deadline=None)
@given(st.lists(image_pair(), min_size=2, max_size=6), st.integers(1, 5))
def test_sums_add_across_any_split(pairs, cut) -> None:
    cats = CategoryTable.from_coco(CATS)
    whole, a, b = PanopticEvaluator(cats), PanopticEvaluator(cats), PanopticEvaluator(cats)
    for k, (g, p) in enumerate(pairs):
        whole.process(g.ids, g.segments_info, p.ids, p.segments_info)
        (a if k < cut else b).process(g.ids, g.segments_info, p.ids, p.segments_info)
    merged = a.stats + b.stats
    assert np.array_equal(merged.tp, whole.stats.tp) and np.array_equal(merged.fp, whole.stats.fp)
    assert merged == whole.stats  # fixed-point sums: bit-identical whatever the split
    assert summarize(merged, cats.ids, cats.isthing) == whole.evaluate()
