"""``panbench.PanopticQuality``, the streaming metric: the numbers of ``pq_compute`` / ``panbench score`` from
id maps in memory (numpy arrays or torch tensors), its analyses those of ``score``, and a state that adds across
metrics, vectors, pickles and processes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS
from helpers import score_with_analyses

from panbench import PanopticQuality, PQResult, pq_compute
from panbench.data.synth import perturb, random_image, write_panoptic


def images(n: int, seed: int = 0, size: tuple[int, int] = (96, 128)) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        gt = random_image(rng, *size, CATS)
        out.append((100 + k, gt, perturb(rng, gt, CATS)))
    return out


def files(tmp_path: Path, imgs: list) -> tuple[Path, Path, Path, Path]:
    gt_json, gt_dir = write_panoptic(tmp_path, "gt", [(i, g) for i, g, _ in imgs], CATS)
    pred_json, pred_dir = write_panoptic(tmp_path, "pred", [(i, p) for i, _, p in imgs], CATS)
    return gt_json, gt_dir, pred_json, pred_dir


def streamed(imgs: list, as_tensor: bool = False, **kw) -> PanopticQuality:
    m = PanopticQuality(CATS, **kw)
    for image_id, gt, pred in imgs:
        p, g = pred.ids, gt.ids
        if as_tensor:
            import torch

            p, g = torch.from_numpy(p.astype(np.int64)), torch.from_numpy(g.astype(np.int64))
        m.update(p, pred.segments_info, g, gt.segments_info, image_id=image_id)
    return m


def assert_same(result: PQResult, ref: dict) -> None:
    got = result.to_panopticapi()
    for group in ("All", "Things", "Stuff"):
        assert got[group]["n"] == ref[group]["n"]
        for k in ("pq", "sq", "rq"):
            assert got[group][k] == pytest.approx(ref[group][k], abs=1e-12), (group, k)
    assert got["per_class"].keys() == ref["per_class"].keys()
    for cid, r in ref["per_class"].items():
        assert got["per_class"][cid] == pytest.approx(r, abs=1e-12), cid


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "torch"])
def test_the_streaming_metric_gives_pq_computes_numbers_from_maps_in_memory(tmp_path: Path, as_tensor: bool) -> None:
    imgs = images(6)
    ref = pq_compute(*(files(tmp_path, imgs)[k] for k in (0, 2, 1, 3)))
    m = streamed(imgs, as_tensor)
    res = m.compute()
    assert m.n_images == res.n_images == 6 and 0.1 < ref["All"]["pq"] < 0.95
    assert_same(res, ref)
    assert (res.all.pq, res.things.n) == (ref["All"]["pq"], ref["Things"]["n"])
    assert res.metrics["PQ"] == pytest.approx(100 * res.all.pq, abs=1e-9)
    assert sum(c.tp for c in res.per_class.values()) > 0


def test_ground_truth_areas_absent_from_segments_info_are_counted_from_the_map(tmp_path: Path) -> None:
    imgs = images(3, seed=4)
    with_areas = streamed(imgs).compute()
    m = PanopticQuality(CATS)
    for image_id, gt, pred in imgs:
        m.update(pred.ids, pred.segments_info, gt.ids, [{k: v for k, v in s.items() if k != "area"}
                                                         for s in gt.segments_info], image_id)
    assert m.compute().to_panopticapi() == with_areas.to_panopticapi()


def test_analyses_equal_those_of_panbench_score(tmp_path: Path) -> None:
    imgs = images(12, seed=1)
    gt_json, gt_dir, pred_json, pred_dir = files(tmp_path, imgs)
    _, _, fields = score_with_analyses(gt_json, gt_dir, pred_json, pred_dir, workers=1)
    res = streamed(imgs, analyses=True).compute()
    assert set(fields) - {"boundary"} <= set(res.analyses) and "pq_dagger" in res.analyses
    for k in fields:
        assert res.analyses[k] == fields[k], k
    assert streamed(imgs).compute().analyses == {}  # only when asked


def test_merged_metrics_vectors_and_pickles_add_up_to_one_metric() -> None:
    imgs = images(8, seed=2)
    whole = streamed(imgs, analyses=True).compute()
    a, b = streamed(imgs[:3], analyses=True), streamed(imgs[3:], analyses=True)
    a.merge(pickle.loads(pickle.dumps(b)))
    merged = a.compute()
    assert merged.to_panopticapi() == whole.to_panopticapi() and merged.n_images == 8
    assert merged.analyses == whole.analyses
    c, d = streamed(imgs[:5]), streamed(imgs[5:])
    c.add_sums(d.sums())
    assert c.compute().to_panopticapi() == whole.to_panopticapi()
    e = PanopticQuality(CATS)
    e.add([PanopticQuality(CATS).update(p.ids, p.segments_info, g.ids, g.segments_info) for _, g, p in imgs])
    assert e.compute().to_panopticapi() == whole.to_panopticapi()
    assert e.sums().dtype == np.int64


def test_reset_starts_a_new_round() -> None:
    imgs = images(4, seed=3)
    m = streamed(imgs)
    first = m.compute()
    m.reset()
    assert m.n_images == 0 and m.compute().all.n == 0
    for image_id, gt, pred in imgs:  # the same images again: a new round
        m.update(pred.ids, pred.segments_info, gt.ids, gt.segments_info, image_id)
    assert m.compute().to_panopticapi() == first.to_panopticapi()
