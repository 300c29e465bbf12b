"""`panbench speed`: MMDetection's benchmark protocol on a real demo model (warm-up left out of the timing, shown
with a scripted timer), the protocol's fields in the record, eager and compiled runs, PQ compiled within 0.01 of
eager."""

from __future__ import annotations

import json
from typing import Any

import pytest

from panbench.cli import main


class ScriptedTimer:
    """Runs the step (the real model) and reports the next scripted duration instead of the clock's."""

    clock = "scripted"

    def __init__(self, seconds: list[float]) -> None:
        self.seconds, self.calls = list(seconds), 0

    def __call__(self, fn: Any) -> tuple[Any, float]:
        out = fn()
        self.calls += 1
        return out, self.seconds.pop(0)


@pytest.fixture(scope="module")
def demo_mask2former(demo_root):
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.run import Run
    from panbench.evaluation.speed import SpeedOptions, eval_options
    from panbench.models.registry import resolve

    ds = load_dataset(demo_root, name="demo", limit=3)
    run = Run(resolve("demo-mask2former", dataset="demo")[0], ds, eval_options(SpeedOptions(device="cpu")))
    return run, ds


def test_warmup_iterations_are_not_timed(demo_mask2former) -> None:
    from panbench.evaluation.speed import time_end_to_end, time_forward

    run, ds = demo_mask2former
    fam = run.lm.family
    inputs = [fam.pipeline({"img_path": str(s.image_path), "img_id": s.image_id}) for s in ds.samples]
    timer = ScriptedTimer([100.0, 100.0, 0.1, 0.2, 0.2])  # two slow warm-up passes, then 0.5 s for three
    stage = time_forward(fam, inputs, "cpu", None, 2, 3, timer)
    assert timer.calls == 5 and stage.seconds == [0.1, 0.2, 0.2]
    s = stage.summary()
    assert s["fps"] == pytest.approx(3 / 0.5) and s["first_iter_s"] == 100.0
    assert s["ms_median"] == pytest.approx(200.0) and s["ms_min"] == pytest.approx(100.0)
    assert s["fusion_ms_mean"] > 0  # the fusion timed apart (by the real clock)
    assert stage.sizes[0] == tuple(inputs[2]["inputs"].shape[-2:])  # the third input is the first timed
    e2e = time_end_to_end(fam, ds.samples, "cpu", None, 1, 2, ScriptedTimer([50.0, 0.25, 0.25]))
    assert e2e.summary()["fps"] == pytest.approx(4.0)


def test_the_record_names_the_protocol_and_its_context(demo_root, tmp_path, capsys) -> None:
    argv = ["speed", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
            "--limit", "2", "--warmup-iters", "1", "--iters", "2", "--device", "cpu", "--results", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "protocol mmdet-benchmark: batch 1, 1 warm-up + 2 timed iterations" in out
    rec = json.loads(next((tmp_path / "speed").glob("*.json")).read_text())
    p = rec["protocol"]
    assert (p["name"], p["warmup"], p["iters"], p["batch"], p["clock"]) == ("mmdet-benchmark", 1, 2, 1,
                                                                          "time.perf_counter")
    assert "benchmark.py" in p["text"] and rec["device"].startswith("cpu") and rec["amp"] == "fp32"
    assert rec["compile"] == {"on": False} and rec["precision"]["autocast"] == "off"
    h, w = (int(v) for v in rec["input_size"].split("x"))
    assert h > 0 and w > 0 and sum(rec["input_sizes"].values()) == 2
    assert rec["forward"]["fps"] > 0 and rec["end_to_end"]["fps"] > 0
    versions = rec["provenance"]["versions"]  # the MMDetection family's packages
    assert versions["torch"] and versions["mmdet"] and "transformers" not in versions
    assert rec["provenance"]["git_commit"] is not None
    ctx = rec["speed_context"]
    assert {"cpu", "cores", "load_start", "load_end", "other_cores", "torch_threads"} <= set(ctx)
    assert rec["published_fps"] is None


@pytest.mark.slow  # inductor compiles the backbone
def test_compiled_runs_and_its_pq_is_eagers(demo_root, tmp_path, capsys) -> None:
    """`--compile --check-pq`: the compiled backbone runs, the eval loop scores the image both ways. One image:
    one input shape, so inductor compiles once per model built (a second shape would compile again)."""
    argv = ["speed", "--model", "demo-maskformer", "--dataset", "demo", "--data-root", str(demo_root),
            "--limit", "1", "--warmup-iters", "1", "--iters", "1", "--no-e2e", "--device", "cpu", "--compile",
            "--check-pq", "--results", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    rec = json.loads(next((tmp_path / "speed").glob("*.json")).read_text())
    assert rec["compile"]["on"] and rec["compile"]["modules"] == ["backbone"] and rec["end_to_end"] is None
    c = rec["pq_check"]
    assert c["images"] == 1 and c["eager"] > 0 and abs(c["compiled"] - c["eager"]) <= 0.01 and c["within"]
    assert "compiled (backbone)" in capsys.readouterr().out


def test_only_batch_1_is_the_protocol(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["speed", "--model", "demo-maskformer", "--batch", "2"])
    assert e.value.code == 2 and "--batch" in capsys.readouterr().err


def test_compile_targets_are_the_network(demo_mask2former) -> None:
    run, _ = demo_mask2former
    assert [n for n, _ in run.lm.family.compile_targets()] == ["backbone"]  # Mask2Former has no neck


@pytest.mark.slow  # inductor compiles the whole network
def test_a_transformers_model_compiles_whole_and_keeps_its_pq(demo_root, tmp_path, capsys) -> None:
    """EoMT (a tiny random one, saved as the hub ships it) is compiled whole, as its published FPS was measured;
    its record lists the transformers stack, not MMDetection's."""
    from hf_tiny import build

    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = build("eomt", names, tmp_path / "eomt")
    argv = ["speed", "--model", f"hf:{d}", "--dataset", "demo", "--data-root", str(demo_root), "--limit", "2",
            "--warmup-iters", "1", "--iters", "2", "--device", "cpu", "--compile", "--check-pq",
            "--results", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    rec = json.loads(next((tmp_path / "speed").glob("*.json")).read_text())
    assert rec["framework"] == "transformers" and rec["compile"]["modules"] == ["model"]
    assert rec["protocol"]["warmup"] == 2  # one pass per distinct input at least: no compilation is timed
    assert rec["input_size"] and rec["pq_check"]["within"] and rec["end_to_end"]["fps"] > 0
    versions = rec["provenance"]["versions"]
    assert versions["transformers"] and versions["torch"] and not {"mmdet", "mmcv", "mmengine"} & set(versions)


@pytest.mark.slow  # inductor compiles the whole network
def test_eomt_dinov3_compiles_whole_and_keeps_its_pq(demo_root, tmp_path, capsys) -> None:
    """A tiny random EoMT-DINOv3 (saved as the hub ships it), compiled whole: forward FPS at its padded square
    input, PQ within the tolerance of eager's. One image: one input shape, one compile per model built."""
    from hf_tiny import build

    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = build("eomt_dinov3", names, tmp_path / "m")
    argv = ["speed", "--model", f"hf:{d}", "--dataset", "demo", "--data-root", str(demo_root), "--limit", "1",
            "--warmup-iters", "0", "--iters", "1", "--device", "cpu", "--compile", "--check-pq",
            "--results", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    rec = json.loads(next((tmp_path / "speed").glob("*.json")).read_text())
    assert rec["framework"] == "transformers" and rec["architecture"] == "EoMT" and rec["input_size"] == "64x64"
    assert rec["compile"]["on"] and rec["compile"]["modules"] == ["model"] and rec["forward"]["fps"] > 0
    assert rec["pq_check"]["within"] and rec["pq_check"]["images"] == 1 and rec["end_to_end"]["fps"] > 0
