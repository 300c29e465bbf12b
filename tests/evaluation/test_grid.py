"""``eval --grid``: every post-processing setting scored from one forward, each setting's record, analysis arrays
and saved PNGs equal to a separate run of it (but for the run's own fields), in forked processes and in one, after
a SIGKILL mid-grid and a resume; a separate run takes a grid's cache; what cannot come from one forward refused in
one line before any model loads.  The summary and its reading: tests/reporting; ``hf:`` models: tests/models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_same_as_separate_run, killed_part_way

from panbench.cli import main
from panbench.errors import PanbenchError
from panbench.models.grid import expand, parse_grid
from panbench.models.postprocess import PostProcess
from panbench.package import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from check_same_numbers import _comparable, compare_predictions  # noqa: E402

LIMIT = "2"  # images of a run; the killed grid runs KILLED
KILLED = "10"


def _eval(demo_root: Path, model: str, results: Path, preds: Path, *extra: str, limit: str = LIMIT) -> list[str]:
    return ["eval", "--model", model, "--dataset", "demo", "--data-root", str(demo_root), "--results", str(results),
            "--save-predictions", str(preds), "--limit", limit, "--workers", "0", "--no-progress",
            *(["--flops-images", "0"] if limit == LIMIT else []), *extra]  # the killed grid's: FLOPs compared too


def _separate(values: dict[str, Any]) -> list[str]:
    """The options of a separate run of a grid's setting."""
    cfg = [f"{k}={v}" for k, v in values.items() if k.startswith("model.")]
    out = ["--cfg-options", *cfg] if cfg else []
    for k, v in values.items():
        if k == "postprocess":
            out += ["--postprocess", str(v)]
        elif k.startswith("pp_"):
            out += ["--" + k.replace("_", "-"), str(v)]
    return out


def _summary(results: Path) -> dict[str, Any]:
    return json.loads(next((results / "grids").glob("*.json")).read_text())


def _check_equal_to_separate_runs(demo_root: Path, model: str, grid: Path, tmp: Path, *extra: str,
                                  limit: str = LIMIT) -> int:
    """Each setting of the grid in ``grid`` (results, predictions beside) against a separate run; returns how many."""
    doc = _summary(grid / "res")
    for k, st in enumerate(doc["settings"]):
        res, preds = tmp / f"s{k}" / "res", tmp / f"s{k}" / "pred"
        assert main(_eval(demo_root, model, res, preds, *extra, *_separate(st["values"]), limit=limit)) == 0
        assert_same_as_separate_run(grid / "res", st, grid / "pred", res, preds, int(limit))
    return len(doc["settings"])


@pytest.mark.system  # a real process killed (make test-system)
def test_a_grid_killed_mid_way_resumes_and_every_setting_equals_its_separate_run(demo_root, tmp_path) -> None:
    """demo Mask2Former, forked processes: the threshold against the three merging rules and mask-wise merging's
    keep fraction (the threshold goes with the model's fusion only, pp_keep with maskwise: 2 + 1 + 2 = 5
    settings), killed once the caches hold images, resumed; each setting against a run of its own (forked too: a
    process's thread count decides the last bit of a float sum, such as an instance's mask score)."""
    grid = tmp_path / "grid"
    args = _eval(demo_root, "demo-mask2former", grid / "res", grid / "pred", "--cache-every", "1",
                 "--grid", "object_mask_thr=0.5,0.8", "--grid", "postprocess=default,argmax,maskwise",
                 "--grid", "pp_keep=0.4,0.6", limit=KILLED)
    killed_part_way(args, grid / "res", 5)
    assert not (grid / "res" / "runs").exists()  # killed before any record
    r = subprocess.run([sys.executable, "-m", "panbench", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "already scored" in r.stderr, r.stderr
    assert "5 settings from one forward" in r.stdout and r.stdout.count("<- best") == 1, r.stdout
    assert _check_equal_to_separate_runs(demo_root, "demo-mask2former", grid, tmp_path, limit=KILLED) == 5
    # a later separate run of one setting takes the grid's cache (its predictions saved already)
    before = set((grid / "res" / "runs").glob("*.json"))
    saved = grid / "pred" / "postprocess-argmax"
    assert main(_eval(demo_root, "demo-mask2former", grid / "res", saved, *_separate({"postprocess": "argmax"}),
                      limit=KILLED)) == 0
    (new,) = set((grid / "res" / "runs").glob("*.json")) - before
    assert json.loads(new.read_text())["timings"]["resumed_images"] == int(KILLED)


def test_every_setting_of_a_forked_grid_equals_its_separate_run(demo_root, tmp_path) -> None:
    """demo Mask2Former in forked processes: two thresholds of its fusion, pixel-wise argmax and mask-wise merging."""
    out = tmp_path / "grid"
    assert main(_eval(demo_root, "demo-mask2former", out / "res", out / "pred", "--cpu-procs", "2",
                      "--grid", "object_mask_thr=0.5,0.9", "--grid", "postprocess=default,argmax,maskwise",
                      "--grid", "pp_keep=0.4")) == 0
    assert _check_equal_to_separate_runs(demo_root, "demo-mask2former", out, tmp_path, "--cpu-procs", "2") == 4


@pytest.mark.parametrize(("model", "grid", "n"), [
    ("demo-maskformer", ["iou_thr=0.5,0.8", "filter_low_score=True,False"], 4),
    # the box threshold: the forward at 0.05, each setting keeping the detections above its own (AP's too), its
    # FLOPs counted with the setting's threshold (the mask head's boxes)
    ("demo-panoptic-fpn", ["mask_overlap=0.3,0.5", "stuff_area_limit=0,4096", "score_thr=0.05,0.6"], 8),
])
def test_every_setting_of_a_grid_in_one_process_equals_its_separate_run(demo_root, tmp_path, model, grid, n) -> None:
    """MaskFormer's and PanopticFPN's own keys, in one process."""
    out, flops = tmp_path / "grid", ("--flops-images", "1") if model == "demo-panoptic-fpn" else ()
    assert main(_eval(demo_root, model, out / "res", out / "pred", "--cpu-procs", "1", *flops,
                      *[a for g in grid for a in ("--grid", g)])) == 0
    assert _check_equal_to_separate_runs(demo_root, model, out, tmp_path, "--cpu-procs", "1", *flops) == n


@pytest.mark.system  # torchrun's processes (make test-system)
def test_a_grid_under_torchrun_equals_separate_runs_under_torchrun(demo_root, tmp_path) -> None:
    """Two gloo ranks on the CPU: the grid's settings, the ranks' images reduced per setting, against separate
    runs with the same ranks."""
    from helpers import free_port

    def torchrun(args: list[str]) -> None:
        r = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--nproc-per-node", "2", "--master-port",
                            str(free_port()), "-m", "panbench", *args, "--device", "cpu"], capture_output=True,
                           text=True, cwd=REPO_ROOT, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]

    out = tmp_path / "grid"
    torchrun(_eval(demo_root, "demo-mask2former", out / "res", out / "pred", "--grid", "object_mask_thr=0.5,0.8",
                   "--grid", "postprocess=default,argmax"))
    doc = _summary(out / "res")
    assert len(doc["settings"]) == 3  # the threshold goes with the model's own fusion only
    for k, st in enumerate(doc["settings"]):
        res = tmp_path / f"s{k}"
        torchrun(_eval(demo_root, "demo-mask2former", res / "res", res / "pred", *_separate(st["values"])))
        a = json.loads((out / "res" / st["record"]).read_text())
        b = json.loads(next((res / "res" / "runs").glob("*.json")).read_text())
        assert a["world_size"] == 2 and _comparable(a) == _comparable(b), st["label"]
        slug = "_".join(f"{key.rsplit('.', 1)[-1]}-{v}" for key, v in st["values"].items())
        assert compare_predictions(out / "pred" / slug, res / "pred") == ([], int(LIMIT))


def test_a_grid_over_every_model_varies_each_over_its_own_keys(demo_root, tmp_path, capsys) -> None:
    """``--model all``: Mask2Former and MaskFormer over the threshold, PanopticFPN (none of its keys) once."""
    assert main(_eval(demo_root, "all", tmp_path / "res", tmp_path / "pred", "--limit", "2", "--no-ap",
                      "--grid", "object_mask_thr=0.5,0.8")) == 0
    out = capsys.readouterr().out
    assert out.count("2 settings from one forward") == 2 and "demo-panoptic-fpn [default] on demo" in out, out
    assert len(list((tmp_path / "res" / "grids").glob("*.json"))) == 2
    assert len(list((tmp_path / "res" / "runs").glob("*.json"))) == 5


@pytest.mark.parametrize(("grid", "said"), [
    (["object_mask_thr=0.5,1.5"], "object_mask_thr=1.5: must be in [0, 1]"),
    (["filter_low_score=yes"], "filter_low_score=yes: must be True or False"),
    (["postprocess=default,best"], "postprocess=best: must be one of default, maskwise, argmax"),
    (["model.backbone.depth=18,50"], "not a post-processing key of demo-mask2former"),
    (["mask_overlap=0.3"], "not a post-processing key of demo-mask2former"),
    (["max_per_image=50,100"], "cannot come from one forward"),
    (["object_mask_thr"], "expected KEY=V1,V2"),
    (["object_mask_thr=0.5,0.5"], "a value given twice"),
    (["object_mask_thr=1,1.0"], "a value given twice"),
    (["pp_keep=0.4,0.6"], "pp_keep: read by postprocess=maskwise only"),
    (["object_mask_thr=0.5", "model.test_cfg.object_mask_thr=0.6"], "name one key twice"),
])
def test_a_grid_that_cannot_come_from_one_forward_is_one_line_exit_2(demo_root, tmp_path, capsys, grid,
                                                                     said) -> None:
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), *[a for g in grid for a in ("--grid", g)]])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and said in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("extra", "said"), [
    (["--fusion", "mmdet"], "leave --fusion mmdet out"),
    (["--images", "x", "--save-predictions", "y"], "--images has no ground truth"),
    (["--cfg-options", "model.test_cfg.object_mask_thr=0.7"], "set it once"),
    (["--postprocess", "maskwise"], "object_mask_thr: read by postprocess=default only"),
    (["--postprocess", "argmax", "--grid", "postprocess=default,maskwise"],
     "--grid postprocess and --postprocess argmax: set it once"),
    (["--per-image", "x.csv"], "--per-image"),
])
def test_a_grid_with_an_option_it_cannot_take_is_refused(demo_root, tmp_path, capsys, extra, said) -> None:
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), "--grid", "object_mask_thr=0.5,0.8", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and said in err, err


def test_settings_are_every_combination_each_rule_with_its_own_keys_only() -> None:
    grid = parse_grid(["postprocess=default,maskwise", "pp_keep=0.4,0.6", "object_mask_thr=0.8,0.9"])
    settings = expand(grid, "maskformer", "m", None, PostProcess(), own=lambda key: None)
    assert [s.label() for s in settings] == [
        "postprocess=default object_mask_thr=0.8", "postprocess=default object_mask_thr=0.9",
        "postprocess=maskwise pp_keep=0.4", "postprocess=maskwise pp_keep=0.6"]  # each rule with its own keys
    assert [s.default for s in settings] == [True, False, False, False]  # 0.8: Mask2Former's own
    assert settings[2].postprocess == PostProcess("maskwise", keep_thr=0.4) and settings[2].cfg_options is None
    assert settings[1].cfg_options == {"model.test_cfg.object_mask_thr": 0.9}
    # the config's own value marks the default, not the key's usual one
    own = expand(grid, "maskformer", "m", None, PostProcess(), own=lambda key: 0.9)
    assert [s.default for s in own][:2] == [False, True]
    # a key no rule of the grid reads: refused, not a grid of one unnamed setting
    with pytest.raises(PanbenchError, match="object_mask_thr: read by postprocess=default only, which the grid does "
                                            "not run"):
        expand(parse_grid(["object_mask_thr=0.5,0.9", "postprocess=argmax"]), "maskformer", "m", None, PostProcess())
    with pytest.raises(PanbenchError, match="not a post-processing key of m"):
        expand({"iou": [0.5]}, "maskformer", "m", None, PostProcess())


@pytest.mark.parametrize(("args", "said"), [
    (["--grid", "stuff_area_limit=0,9223372036854775808"], "an integer up to 9223372036854775807"),
    (["--grid", "stuff_area_limit=0,99999999999999999999"], "an integer up to 9223372036854775807"),
    (["--cfg-options", "model.test_cfg.panoptic.stuff_area_limit=9223372036854775808"], "does not fit a 64-bit"),
    (["--cfg-options", "model.test_cfg.panoptic.stuff_area_limit=99999999999999999999", "--fusion", "mmdet"],
     "does not fit a 64-bit"),
])
def test_an_integer_beyond_int64_is_refused_before_torch_wraps_it(demo_root, tmp_path, capsys, args, said) -> None:
    """torch compares an int64 tensor with 2^63 as with a wrapped value (the limit read as 0: another PQ) and raises
    OverflowError on a larger one: both refused in one line, exit 2, before any model runs."""
    rc = main(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and said in err, err
    assert not (tmp_path / "runs").exists()
