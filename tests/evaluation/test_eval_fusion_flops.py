"""``eval --fusion panbench|mmdet`` and ``eval --flops-images N``: what the record holds, and that the fusion
choice is part of the resume-cache key while the numbers stay the same."""

from __future__ import annotations

import csv

import numpy as np
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
    # panbench's fusion keeps each segment's score, with the model's own threshold (its object_mask_thr)
    assert ours["score_threshold"]["own"]["threshold"] == 0.8 and ours["calibration"]["segments"] > 0
    assert theirs.get("score_threshold") is None and theirs.get("calibration") is None
    # object_mask_thr below 0 keeps every query: the own threshold is 0, what removes as much (none)
    every = eval_demo_record(demo_root, res, "--cfg-options", "model.test_cfg.object_mask_thr=-0.1",
                             "--flops-images", "0")
    assert every["score_threshold"]["own"] == {"threshold": 0.0, "PQ": every["metrics"]["PQ"]}
    out = capsys.readouterr().out  # one line says why mmdet's fusion's run has neither analysis
    assert out.count("score threshold and calibration: none (no predicted segment has a usable score: mmdet's own "
                     "fusion (--fusion mmdet) gives none") == 1


def test_postprocess_maskwise_records_no_fusion(demo_root, tmp_path, capsys) -> None:
    rec = eval_demo_record(demo_root, tmp_path / "res", "--postprocess", "maskwise", "--pp-conf", "0.7",
                           "--flops-images", "0")
    assert rec["fusion"] is None
    # the rule's confidence threshold (--pp-conf) as it compares it, in float32: PQ there is the run's own
    st = rec["score_threshold"]
    assert st["own"]["threshold"] == float(np.float32(0.7)) != 0.7 and st["own"]["PQ"] == rec["metrics"]["PQ"]


def test_flops_images_counts_gflops_per_image_and_a_second_eval_takes_them_from_the_cache(demo_root, tmp_path,
                                                                                          monkeypatch) -> None:
    """The count of N images goes into the record and runs.csv; a second eval of the same images takes it from
    the model-facts cache with equal numbers; other images are counted again. The later evals share the first's
    results folder: their images come from the resume cache, their FLOPs from the model-facts cache."""
    from panbench.evaluation import flops

    monkeypatch.setenv("PANBENCH_CACHE", str(tmp_path / "cache"))
    res = tmp_path / "res"
    first = eval_demo_record(demo_root, res, "--flops-images", "3")["flops"]
    f = first
    assert f["images"] == 3 and len(f["per_image_gflops"]) == 3 and len(f["input_hw"]) == 3
    assert f["gflops"] == pytest.approx(sum(f["per_image_gflops"]) / 3) and 0.05 < f["gflops"] < 5
    assert f["counter"] == "torch.utils.flop_counter.FlopCounterMode" and "halved" in f["convention"]
    rows = list(csv.DictReader(open(res / "runs.csv")))
    assert float(rows[-1]["gflops"]) == round(f["gflops"], 3)

    def refuse(*a, **k):
        raise AssertionError("counted again")

    monkeypatch.setattr(flops, "count_step", refuse)
    second = eval_demo_record(demo_root, res, "--flops-images", "3")["flops"]
    assert first["from_cache"] is None and second["from_cache"]  # when the count was made
    assert {k: v for k, v in second.items() if k != "from_cache"} == {k: v for k, v in first.items()
                                                                      if k != "from_cache"}
    assert len(list((tmp_path / "cache" / "model-facts").glob("*.json"))) == 1
    with pytest.raises(AssertionError, match="counted again"):  # other images: counted, not served
        eval_demo_record(demo_root, res, "--flops-images", "2")
