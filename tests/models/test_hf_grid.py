"""``hf:`` models' post-processing settings (docs/huggingface.md, "Post-processing settings"): transformers'
``threshold``, ``mask_threshold`` and ``overlap_mask_area_threshold`` taken as ``--cfg-options`` (recorded in the
config and its hash), and ``eval --grid`` on them: each setting's record, analysis arrays and saved PNGs equal to a
separate run of it given as ``--cfg-options`` (but for the run's own fields), in one process and in forked ones;
any other ``--cfg-options`` key, or a value out of range, refused in one line before the model loads.  The grid of
MMDetection models: tests/evaluation/test_grid.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import numpy as np  # noqa: E402
from helpers import assert_same_as_separate_run  # noqa: E402

from panbench.cli import main  # noqa: E402

LIMIT = "6"  # the demo images batch by shape: the first 6 make 3 whole batches of 2
# the runs on the original's input (no --pipeline transformers: detectron2's 800 px short side, seconds per forward):
# 4 images, two in each of two forked processes, on which the settings' segments still differ (asserted)
FEW = "4"
KIND = "mask2former"


@pytest.fixture(scope="module")
def tiny(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Mask2Former with the demo set's labels, saved once for the module (its scores are near 1:
    thresholds of 0.9 and 0.9999 keep different queries)."""
    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    return hf_tiny.build(KIND, names, tmp_path_factory.mktemp("hf") / KIND)


def _eval(demo_root: Path, model: Path, results: Path, preds: Path | None, *extra: str,
          limit: str = LIMIT) -> list[str]:
    save = ["--save-predictions", str(preds)] if preds is not None else []
    return ["eval", "--model", f"hf:{model}", "--dataset", "demo", "--data-root", str(demo_root), "--device", "cpu",
            "--results", str(results), *save, "--limit", limit, "--workers", "0", "--no-progress", *extra]


def _check_equal_to_separate_runs(demo_root: Path, model: Path, grid: Path, tmp: Path, *extra: str,
                                  limit: str = LIMIT) -> list[Any]:
    """Each setting of the grid under ``grid`` (results, predictions beside) against a separate run of it in one
    process (``--cfg-options``); returns each setting's saved segments, in the grid's order."""
    doc = json.loads(next((grid / "res" / "grids").glob("*.json")).read_text())
    segments = []
    for k, st in enumerate(doc["settings"]):
        res, preds = tmp / f"s{k}" / "res", tmp / f"s{k}" / "pred"
        cfg = [f"{key}={v}" for key, v in st["values"].items()]
        assert main(_eval(demo_root, model, res, preds, "--cpu-procs", "1", *extra, "--cfg-options", *cfg,
                          limit=limit)) == 0
        a, _ = assert_same_as_separate_run(grid / "res", st, grid / "pred", res, preds, int(limit))
        # the setting's values reach the record: its config text (and hash) and its --cfg-options
        config = json.loads(a["provenance"]["config"])
        post = {k: v for k, v in st["values"].items() if k != "pipeline"}
        assert config["postprocess"] == {**hf_tiny.PUBLISHED[KIND], **post}
        assert config["pipeline"] == st["values"].get("pipeline", a["provenance"]["pipeline"])
        assert a["provenance"]["cfg_options"].items() >= st["values"].items()  # with the run's own --pipeline
        saved = json.loads(next((preds).glob("*_results.json")).read_text())
        segments.append([a["segments_info"] for a in saved["annotations"]])
    return segments


def test_a_threshold_and_overlap_grid_with_ap_in_one_process_equals_separate_cfg_options_runs(demo_root, tiny,
                                                                                              tmp_path) -> None:
    """threshold x overlap_mask_area_threshold (4 settings; AP and mIoU read the same outputs in each), batches
    of 2 images, one process; each setting differs from the others (the values reach transformers'
    post-processing) and its config hash is its own."""
    grid = tmp_path / "grid"
    assert main(_eval(demo_root, tiny, grid / "res", grid / "pred", "--cpu-procs", "1", "--batch-size", "2",
                      "--pipeline", "transformers", "--grid", "threshold=0.9,0.9999",
                      "--grid", "overlap_mask_area_threshold=0.2,0.8")) == 0
    rec = json.loads(next((grid / "res" / "runs").glob("*.json")).read_text())
    assert rec["timings"]["batches"] == {"2": 3} and rec["ap"] is not None
    segments = _check_equal_to_separate_runs(demo_root, tiny, grid, tmp_path, "--batch-size", "2",
                                             "--pipeline", "transformers")
    assert len(segments) == 4 and len({json.dumps(s) for s in segments}) == 4
    hashes = {json.loads(p.read_text())["provenance"]["config_sha256_16"] for p in (grid / "res" / "runs").glob("*")
              if p.suffix == ".json"}
    assert len(hashes) == 4


def test_a_mask_threshold_grid_in_forked_processes_equals_separate_cfg_options_runs(demo_root, tiny,
                                                                                   tmp_path) -> None:
    """mask_threshold (2 settings) in two forked processes, each setting against a run of its own in one."""
    grid = tmp_path / "grid"
    assert main(_eval(demo_root, tiny, grid / "res", grid / "pred", "--cpu-procs", "2",
                      "--grid", "mask_threshold=0.2,0.5", limit=FEW)) == 0
    rec = json.loads(next((grid / "res" / "runs").glob("*.json")).read_text())
    assert rec["timings"]["cpu_procs"] == 2
    segments = _check_equal_to_separate_runs(demo_root, tiny, grid, tmp_path, limit=FEW)
    assert len(segments) == 2 and segments[0] != segments[1]


def test_finish_grid_gives_one_output_per_image_per_setting_the_own_one_as_finish(demo_root, tiny,
                                                                                  monkeypatch) -> None:
    """A deferred forward of a batch of 2 images: per setting, 2 outputs (one post-processing per image, not one
    per output the batch left), the model's own setting's equal to :meth:`finish`'s, the others differing; the
    instances and semantic map, which the settings do not change, converted once per image and handed to each
    setting as a copy."""
    import torch

    from panbench.data.datasets import load_dataset
    from panbench.models.grid import expand
    from panbench.models.hf.model import load_hf_model
    from panbench.models.postprocess import PostProcess

    ds = load_dataset(demo_root, name="demo", limit=2)
    model = load_hf_model(str(tiny), ds.categories, "cpu", cfg_options={"pipeline": "transformers"}).model.module
    model.enable_instances()
    assert model.grid_kind() == "hf" and model.grid_own("threshold") == hf_tiny.PUBLISHED[KIND]["threshold"]
    settings = expand({"threshold": [0.8, 0.9999]}, "hf", "m", None, PostProcess(), model.grid_own)
    assert [s.default for s in settings] == [True, False]
    batch = [model.pipeline({"img_path": str(s.image_path)}) for s in ds.samples]
    calls: list[int] = []
    post = model.fusion.post
    model.fusion.post = lambda *a, **k: calls.append(1) or post(*a, **k)
    converted: list[str] = []
    for name in ("post_process_instance_segmentation", "post_process_semantic_segmentation"):
        orig = getattr(model.processor, name)
        monkeypatch.setattr(model.processor, name,
                            lambda *a, _o=orig, _n=name, **k: converted.append(_n) or _o(*a, **k))
    with torch.inference_mode(), model.deferred():
        outputs = model.forward(batch, "cpu", None)
    each = list(model.finish_grid(outputs, settings))
    assert [len(outs) for outs in each] == [2, 2] and len(calls) == 4
    own = model.finish(outputs)
    for a, b in zip(each[0], own):
        assert torch.equal(a.result.segmentation, b.result.segmentation) and a.result.info == b.result.info
    assert any(a.result.info != b.result.info for a, b in zip(each[1], own))
    converted.clear()
    inst = [[model.to_instances(o) for o in outs] for outs in each]
    sem = [[model.to_semantic(o) for o in outs] for outs in each]
    assert sorted(converted) == ["post_process_instance_segmentation"] * 2 + ["post_process_semantic_segmentation"] * 2
    for k, o in enumerate(own):
        alone = model.to_instances(o)
        for per_setting in inst:
            assert per_setting[k].rles == alone.rles
            assert np.array_equal(per_setting[k].scores, alone.scores)
        assert np.array_equal(sem[0][k], model.to_semantic(o)) and sem[0][k] is not sem[1][k]
        assert inst[0][k].rles is not inst[1][k].rles and inst[0][k].scores is not inst[1][k].scores


@pytest.mark.parametrize(("options", "said"), [
    (["--cfg-options", "model.test_cfg.object_mask_thr=0.9"],
     "--cfg-options model.test_cfg.object_mask_thr: a transformers model (hf:) takes only its post-processing's "
     "threshold, mask_threshold, overlap_mask_area_threshold"),
    (["--cfg-options", "threshold=1.5"], "--cfg-options threshold=1.5: must be in [0, 1]"),
    (["--cfg-options", "mask_threshold=high"], "--cfg-options mask_threshold=high: must be a number"),
    (["--grid", "threshold=0.5,1.5"], "--grid threshold=1.5: must be in [0, 1]"),
    (["--grid", "object_mask_thr=0.5,0.8"],
     "not a post-processing key of hf-mask2former (its keys: threshold, mask_threshold, "
     "overlap_mask_area_threshold, pipeline)"),
])
def test_other_cfg_options_and_values_out_of_range_are_refused_in_one_line(demo_root, tiny, tmp_path, capsys,
                                                                           options, said) -> None:
    rc = main(_eval(demo_root, tiny, tmp_path, None, *options))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and said in err, err
    assert not (tmp_path / "runs").exists()


def test_a_grid_over_the_pipelines_steps_equals_separate_pipeline_runs(demo_root, tiny, tmp_path) -> None:
    """original, original-masks and original-input from one forward (the original's input), each equal to a run
    of its own (--cfg-options pipeline=...); transformers' input is another forward, refused in a grid in one
    line."""
    grid = tmp_path / "grid"
    assert main(_eval(demo_root, tiny, grid / "res", grid / "pred", "--cpu-procs", "1",
                      "--grid", "pipeline=original,original-masks,original-input", limit=FEW)) == 0
    segments = _check_equal_to_separate_runs(demo_root, tiny, grid, tmp_path, limit=FEW)
    assert len(segments) == 3 and segments[0] != segments[2]
    rc = main(_eval(demo_root, tiny, tmp_path / "r", None, "--grid", "pipeline=original,transformers"))
    assert rc == 2
