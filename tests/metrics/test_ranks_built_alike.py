"""Metrics built differently (categories, analyses, rules, evaluators: what decides the shape of the state) are
refused in one line naming the difference: by ``sync()`` on every rank, within seconds and before any state
crosses (two real gloo ranks, spawned processes), and by ``merge()``."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench import PanopticQuality
from panbench.data.synth import coco_like_categories, random_image
from panbench.errors import InputError
from panbench.package import REPO_ROOT

CATS = coco_like_categories(8, 6)  # helpers.GENERATED_CATS, without importing helpers in the spawned ranks
IMAGE_COUNT = f"{REPO_ROOT / 'examples' / 'evaluators' / 'image_count.py'}:ImageCount"
EXTRA = {"id": 999, "name": "extra", "isthing": 0}
FLIPPED = [dict(CATS[0], isthing=1 - CATS[0]["isthing"]), *CATS[1:]]  # one category a thing on one side only
#: what rank 0 and rank 1 build in each case
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "rules": ({"rules": "torchmetrics"}, {}),
    "evaluators": ({}, {"evaluators": [IMAGE_COUNT]}),
    "analyses": ({"analyses": True}, {}),
    "categories": ({}, {"categories": [*CATS, EXTRA]}),
    "isthing": ({}, {"categories": FLIPPED}),
}
THING = {0: "stuff", 1: "a thing"}
FIX = "build the metric alike on every rank (the same categories, analyses, rules and evaluators)"


def image() -> tuple[np.ndarray, list[dict[str, Any]]]:
    gt = random_image(np.random.default_rng(7), 40, 50, CATS)
    return gt.ids, gt.segments_info


def _rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=20))  # a collective that never meets fails, not hangs
    try:
        ids, segs = image()
        said: dict[str, Any] = {}
        for case, builds in CASES.items():
            kw = {"categories": CATS, **builds[rank]}
            m = PanopticQuality(kw.pop("categories"), **kw)
            m.update(ids, segs, ids, segs, image_id=rank)
            start = time.monotonic()
            try:
                m.sync()
                said[case] = "synced"
            except InputError as e:
                said[case] = str(e)
            said[f"{case} s"] = time.monotonic() - start
        alike = PanopticQuality(CATS, rules="torchmetrics")  # the group still works: built alike, they sync
        alike.update(ids, segs, ids, segs, image_id=rank)
        alike.sync()
        said["alike"] = alike.n_images
        Path(out, f"{rank}.json").write_text(json.dumps(said))
    finally:  # helpers.close_ranks and end_rank
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.mark.slow
def test_ranks_built_differently_are_refused_on_every_rank_within_seconds(tmp_path: Path) -> None:
    from helpers import free_port, spawn_ranks

    port = free_port()
    assert spawn_ranks(_rank, [(r, port, str(tmp_path)) for r in range(2)], timeout=90) == [0, 0]
    want = {
        "rules": "different rules (['torchmetrics'] on rank 0, none on rank 1)",
        "evaluators": "different evaluators (none on rank 0, ['ImageCount@1'] on rank 1)",
        "analyses": "different analyses (analyses=True on rank 0, analyses=False on rank 1)",
        "categories": f"different categories ({len(CATS)} on rank 0, {len(CATS) + 1} on rank 1)",
        "isthing": f"different categories (category {CATS[0]['id']} is {THING[CATS[0]['isthing']]} on rank 0, "
                   f"{THING[1 - CATS[0]['isthing']]} on rank 1)",
    }
    for rank in (0, 1):
        said = json.loads((tmp_path / f"{rank}.json").read_text())
        for case, difference in want.items():
            assert said[case] == f"sync(): the ranks' metrics have {difference}; {FIX}"
            assert said[f"{case} s"] < 10
        assert said["alike"] == 2


def test_merging_a_metric_of_other_rules_is_refused_by_name() -> None:
    ids, segs = image()
    ruled = PanopticQuality(CATS, rules="torchmetrics")
    ruled.update(ids, segs, ids, segs, image_id=1)
    before = ruled.sums().copy()
    for other, theirs in ((PanopticQuality(CATS), "none"),
                          (PanopticQuality(CATS, rules=["torchmetrics", "eomt"]), "['torchmetrics', 'eomt']")):
        other.update(ids, segs, ids, segs, image_id=2)
        with pytest.raises(InputError) as e:
            ruled.merge(other)
        assert str(e.value) == (f"merge(): the metrics have different rules (['torchmetrics'] here, {theirs} in the "
                                "other); merge metrics built alike (of one dataset, with the same rules and "
                                "evaluators)")
        assert np.array_equal(ruled.sums(), before) and ruled.n_images == 1
    plain = PanopticQuality(CATS)  # a metric without rules takes PQ's part of one with them
    plain.update(ids, segs, ids, segs, image_id=3)
    plain.merge(ruled)
    assert plain.n_images == 2 and plain.compute().rules == {}


def test_merging_metrics_of_other_evaluators_or_categories_names_the_difference() -> None:
    ids, segs = image()
    counted = PanopticQuality(CATS, evaluators=[IMAGE_COUNT])
    with pytest.raises(InputError) as e:
        counted.merge(PanopticQuality(CATS))
    assert str(e.value).startswith("merge(): the metrics have different evaluators (['ImageCount@1'] here, none in "
                                   "the other)")
    with pytest.raises(InputError) as e:
        PanopticQuality(CATS).merge(PanopticQuality([*CATS, EXTRA]))
    assert str(e.value).startswith(f"merge(): the metrics have different categories ({len(CATS)} here, "
                                   f"{len(CATS) + 1} in the other)")


def test_merging_metrics_whose_categories_differ_in_isthing_or_name_names_the_category() -> None:
    ids, segs = image()
    m = PanopticQuality(CATS)
    m.update(ids, segs, ids, segs, image_id=1)
    cid, thing = CATS[0]["id"], CATS[0]["isthing"]
    for other, difference in (
            (FLIPPED, f"category {cid} is {THING[thing]} here, {THING[1 - thing]} in the other"),
            ([dict(CATS[0], name="renamed"), *CATS[1:]],
             f"category {cid} is named {CATS[0]['name']!r} here, 'renamed' in the other")):
        theirs = PanopticQuality(other)
        theirs.update(ids, segs, ids, segs, image_id=2)
        for given in (theirs, theirs.part()):
            with pytest.raises(InputError) as e:
                m.merge(given)
            assert str(e.value).startswith(f"merge(): the metrics have different categories ({difference}); ")
    assert m.n_images == 1
