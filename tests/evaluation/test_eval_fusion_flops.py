"""``eval --fusion panbench|mmdet`` and ``eval --flops-images N``: what the record holds, and that the fusion
choice is part of the resume-cache key while the numbers stay the same."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from panbench import REPO_ROOT
from panbench.cli import main
from panbench.data.demo import make_demo


@pytest.fixture(scope="module")
def demo_root() -> Path:
    return make_demo(REPO_ROOT / "data" / "demo")


def _eval(demo_root: Path, results: Path, *extra: str) -> dict:
    assert main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
                 "--results", str(results), "--limit", "4", "--workers", "0", "--cpu-procs", "1", "--no-progress",
                 *extra]) == 0
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


def test_mmdets_fusion_gives_the_same_numbers_under_another_cache_key(demo_root, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    ours = _eval(demo_root, res, "--flops-images", "0")
    theirs = _eval(demo_root, res, "--fusion", "mmdet", "--flops-images", "0")
    assert ours["fusion"] == "panbench" and theirs["fusion"] == "mmdet"
    assert ours["metrics"] == theirs["metrics"] and ours["per_class"] == theirs["per_class"]
    assert theirs["timings"]["resumed_images"] == 0  # not served from panbench's fusion's cache
    assert len(list((res / "cache").iterdir())) == 2
    assert ours["flops"] is None and 0 <= ours["timings"]["fusion_s"] <= ours["timings"]["postprocess_s"]


def test_flops_images_counts_gflops_per_image_into_the_record(demo_root, tmp_path, capsys) -> None:
    rec = _eval(demo_root, tmp_path / "res", "--flops-images", "3")
    f = rec["flops"]
    assert f["images"] == 3 and len(f["per_image_gflops"]) == 3 and len(f["input_hw"]) == 3
    assert f["gflops"] == pytest.approx(sum(f["per_image_gflops"]) / 3) and 0.05 < f["gflops"] < 5
    assert f["counter"] == "torch.utils.flop_counter.FlopCounterMode" and "halved" in f["convention"]
    rows = list(csv.DictReader(open(tmp_path / "res" / "runs.csv")))
    assert float(rows[-1]["gflops"]) == round(f["gflops"], 3)


def test_postprocess_maskwise_records_no_fusion(demo_root, tmp_path, capsys) -> None:
    rec = _eval(demo_root, tmp_path / "res", "--postprocess", "maskwise", "--flops-images", "0")
    assert rec["fusion"] is None
