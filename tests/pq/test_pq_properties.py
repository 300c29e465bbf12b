"""Property tests (hypothesis): random label maps scored by panbench and by panopticapi agree;
per-category sums add up across any split of the images."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from helpers import GENERATED_CATS as CATS
from helpers import image_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pq_parity import assert_parity

from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.sums import pq_summary


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(image_pair(), min_size=1, max_size=4))
def test_random_label_maps_match_panopticapi(pairs) -> None:
    with tempfile.TemporaryDirectory() as d:
        assert_parity(Path(d), [(i, g) for i, (g, _) in enumerate(pairs)], [(i, p) for i, (_, p) in enumerate(pairs)])


@settings(max_examples=40, deadline=None)
@given(st.lists(image_pair(), min_size=2, max_size=6), st.integers(1, 5))
def test_sums_add_across_any_split(pairs, cut) -> None:
    cats = CategoryTable.from_coco(CATS)
    whole, a, b = PanopticAccumulator(cats), PanopticAccumulator(cats), PanopticAccumulator(cats)
    for k, (g, p) in enumerate(pairs):
        whole.add(score_pair(whole.categories, g.ids, g.segments_info, p.ids, p.segments_info))
        (a if k < cut else b).add(score_pair(cats, g.ids, g.segments_info, p.ids, p.segments_info))
    merged = a.stats + b.stats
    assert np.array_equal(merged.tp, whole.stats.tp) and np.array_equal(merged.fp, whole.stats.fp)
    assert merged == whole.stats  # fixed-point sums: bit-identical whatever the split
    assert pq_summary(merged, cats.ids, cats.isthing) == {k: v for k, v in whole.evaluate().items()
                                                         if k != "unlisted_gt"}
