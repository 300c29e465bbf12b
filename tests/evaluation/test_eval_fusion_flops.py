"""``eval --fusion panbench|mmdet`` and ``eval --flops-images N``: what the record holds, and that the fusion
choice is part of the resume-cache key while the numbers stay the same."""

from __future__ import annotations

import csv

import pytest
from helpers import eval_demo_record


def test_mmdets_fusion_gives_the_same_numbers_under_another_cache_key(demo_root, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    ours = eval_demo_record(demo_root, res, "--flops-images", "0")
    theirs = eval_demo_record(demo_root, res, "--fusion", "mmdet", "--flops-images", "0")
    assert ours["fusion"] == "panbench" and theirs["fusion"] == "mmdet"
    assert ours["metrics"] == theirs["metrics"] and ours["per_class"] == theirs["per_class"]
    assert theirs["timings"]["resumed_images"] == 0  # not served from panbench's fusion's cache
    assert len(list((res / "cache").iterdir())) == 2
    assert ours["flops"] is None and 0 <= ours["timings"]["fusion_s"] <= ours["timings"]["postprocess_s"]


def test_flops_images_counts_gflops_per_image_into_the_record(demo_root, tmp_path, capsys) -> None:
    rec = eval_demo_record(demo_root, tmp_path / "res", "--flops-images", "3")
    f = rec["flops"]
    assert f["images"] == 3 and len(f["per_image_gflops"]) == 3 and len(f["input_hw"]) == 3
    assert f["gflops"] == pytest.approx(sum(f["per_image_gflops"]) / 3) and 0.05 < f["gflops"] < 5
    assert f["counter"] == "torch.utils.flop_counter.FlopCounterMode" and "halved" in f["convention"]
    rows = list(csv.DictReader(open(tmp_path / "res" / "runs.csv")))
    assert float(rows[-1]["gflops"]) == round(f["gflops"], 3)


def test_postprocess_maskwise_records_no_fusion(demo_root, tmp_path, capsys) -> None:
    rec = eval_demo_record(demo_root, tmp_path / "res", "--postprocess", "maskwise", "--flops-images", "0")
    assert rec["fusion"] is None


def test_a_second_eval_takes_its_flops_from_the_cache_with_equal_numbers(demo_root, tmp_path, monkeypatch,
                                                                          capsys) -> None:
    from panbench.evaluation import flops

    monkeypatch.setenv("PANBENCH_CACHE", str(tmp_path / "cache"))
    first = eval_demo_record(demo_root, tmp_path / "a", "--flops-images", "2")["flops"]

    def refuse(*a, **k):
        raise AssertionError("counted again")

    monkeypatch.setattr(flops, "count_step", refuse)
    second = eval_demo_record(demo_root, tmp_path / "b", "--flops-images", "2")["flops"]
    assert first["from_cache"] is None and second["from_cache"]  # when the count was made
    assert {k: v for k, v in second.items() if k != "from_cache"} == {k: v for k, v in first.items()
                                                                      if k != "from_cache"}
    assert len(list((tmp_path / "cache" / "model-facts").glob("*.json"))) == 1
    with pytest.raises(AssertionError, match="counted again"):  # other images: counted, not served
        eval_demo_record(demo_root, tmp_path / "c", "--flops-images", "3")
