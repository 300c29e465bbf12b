"""scripts/bench_gpu_eval.py (docs/gpu.md, "The GPU benchmark"): its CPU smoke run end to end (a system test; its
time in docs/testing.md), and, in ``make test``, its image folder and its PQ check on rows written by hand."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from panbench.package import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bench_gpu_eval.py"
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample"
NUMBER = r"\d+\.\d+"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu_eval", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)  # its dataclasses look their module up
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="the COCO sample is not beside the checkout")
def test_the_replicated_images_keep_each_image_together_in_multiples_of_the_batch(tmp_path) -> None:
    mod = load_script()
    root = mod.replicate(tmp_path / "coco", 24, 8)
    doc = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())
    sizes = [(im["width"], im["height"]) for im in doc["images"]]
    assert [sizes.count(s) for s in dict.fromkeys(sizes)] == [16, 8]  # mmdet's batches of 8 hold one size
    assert sum(a != b for a, b in zip(sizes, sizes[1:])) == 1  # the copies of one image, one after the other
    assert [im["id"] for im in doc["images"]] == list(range(1, 25))
    assert all((root / "val2017" / im["file_name"]).resolve().is_file() for im in doc["images"])
    assert all((root / "annotations" / "panoptic_val2017" / a["file_name"]).resolve().is_file()
               for a in doc["annotations"])


def _row(eval_fp: int, mmdet_fp: int, pq: float = 0.0) -> dict:
    metrics = dict.fromkeys(("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"), 0.0)
    return {"model": "mask2former", "batch": 1, "precision": "fp32", "compiled": False, "pass_": "all",
            "eval": {"metrics": {**metrics, "PQ": pq}, "per_class": {"1": {"TP": 0, "FP": eval_fp, "FN": 2},
                                                                     "2": {"TP": 0, "FP": 0, "FN": 0}}},
            "mmdet": {"metrics": metrics, "per_class": {"1": {"TP": 0, "FP": mmdet_fp, "FN": 2}}}}


def test_the_pq_check_fails_on_one_false_positive_or_a_metric_apart(capsys) -> None:
    mod = load_script()
    assert mod.check([_row(3, 3)]) == []  # a class panbench lists with zeros and mmdet leaves out: equal
    assert mod.check([_row(3, 4)]) == ["mask2former b1 fp32 eager all"]
    assert mod.check([_row(3, 3, pq=1e-6)]) == ["mask2former b1 fp32 eager all"]
    assert mod.check([{**_row(3, 3), "mmdet": {"na": "a transformers model"}}]) == []  # nothing to compare
    out = capsys.readouterr().out
    assert out.count("-> OK") == 1 and out.count("-> MISMATCH") == 2


def test_a_smoke_run_prints_no_speed_ratio_and_a_benchmark_does() -> None:
    mod = load_script()
    row = {**_row(3, 3), "forward": {"images_per_s": 2.0}, "eval": {"images_per_s": 3.14, "outside_forward": 0.2,
                                                                   "kept_per_image": 5.0},
           "mmdet": {"images_per_s": 1.0}}
    bench, smoke = mod.table([row], 7.0)[2], mod.table([row], 7.0, smoke=True)
    assert bench.split()[-2:] == ["1.57", "3.14"]  # eval/fwd, eval/mmdet
    assert smoke[2].split()[-2:] == ["-", "-"] and "not printed: --input small is a smoke test" in smoke[-1]


@pytest.mark.system
@pytest.mark.skipif(not SAMPLE.is_dir(), reason="the COCO sample is not beside the checkout")
def test_the_cpu_smoke_run_prints_a_row_per_model_the_pq_check_and_the_json(tmp_path) -> None:
    for needed in ("mmdet", "mmengine", "transformers"):
        pytest.importorskip(needed)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--images", "4", "--models",
                        "mask2former,eomt_s", "--batch-sizes", "1", "--precisions", "fp32", "--compile", "off",
                        "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--input small" in r.stdout  # the CPU's shortcut says so
    check = [line for line in r.stdout.splitlines() if line.startswith("PQ check mask2former b1 fp32 eager all:")]
    assert len(check) == 1 and check[0].endswith("-> OK"), r.stdout
    rows = {line.split()[0]: line for line in r.stdout.splitlines()
            if re.match(r"(mask2former|eomt_s) +1 +fp32 +off +all ", line)}
    assert set(rows) == {"mask2former", "eomt_s"}, r.stdout
    assert re.search(rf"all +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}% +{NUMBER} +- +-$", rows["mask2former"]), rows
    assert re.search(rf"all +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}% +n/a +- +-$", rows["eomt_s"]), rows
    assert "eval/fwd, eval/mmdet not printed: --input small is a smoke test" in r.stdout  # no ratio read as a result
    assert re.search(rf"ground truth: {NUMBER} segments per image", r.stdout)
    doc = json.loads((out / "bench_gpu_eval.json").read_text())
    assert {row["model"] for row in doc["rows"]} == {"mask2former", "eomt_s"} and doc["mismatches"] == []
    assert doc["complete"] and doc["skipped"] == []
    assert all(row["eval"]["images_per_s"] > 0 and row["forward"]["images_per_s"] > 0 for row in doc["rows"])
    assert [row["check"]["ok"] for row in doc["rows"] if "check" in row] and all(
        row["check"]["ok"] for row in doc["rows"] if "check" in row)
    assert (out / "table.txt").read_text().splitlines()[1].startswith("model")
