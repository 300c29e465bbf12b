"""scripts/bench_mmdet_metric.py: both metrics timed on the same data samples, the ratio printed only once every
number agrees to 1e-9."""

from __future__ import annotations

import sys

import pytest

from panbench.package import REPO_ROOT

pytest.importorskip("mmdet")
pytest.importorskip("panopticapi")
sys.path.insert(0, str(REPO_ROOT / "scripts"))


@pytest.fixture
def coco_set(tmp_path, coco_sample):
    import bench_mmdet_metric

    return bench_mmdet_metric.coco_png_samples(tmp_path, 4, coco_sample / "annotations")


def test_the_benchmark_prints_a_ratio_when_both_metrics_agree(coco_set, capsys) -> None:
    from bench_mmdet_metric import bench

    samples, meta, ann, seg, _ = coco_set
    assert bench("coco", samples, meta, ann, seg, batch=2)
    out = capsys.readouterr().out
    assert "every key equal to 1e-09" in out and "speed-up of PanbenchPanopticMetric: round 1" in out
    assert "PanbenchPanopticMetric" in out and "CocoPanopticMetric" in out


def test_the_benchmark_prints_no_ratio_when_the_numbers_differ(coco_set, capsys, monkeypatch) -> None:
    from bench_mmdet_metric import bench

    from panbench.integrations import mmdet

    real = mmdet.parse_pq_results
    monkeypatch.setattr(mmdet, "parse_pq_results", lambda pq: {**real(pq), "PQ": real(pq)["PQ"] + 1e-6})
    samples, meta, ann, seg, _ = coco_set
    assert not bench("coco", samples, meta, ann, seg, batch=2)
    out = capsys.readouterr().out
    assert "NUMBERS DIFFER" in out and "speed-up" not in out
