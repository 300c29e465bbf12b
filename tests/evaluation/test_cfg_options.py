"""``eval --cfg-options``: mmengine's syntax, applied to the model config before it is built,
part of the config hash, the record and the resume-cache key."""

from __future__ import annotations

import json

import pytest
from helpers import eval_demo_record

from panbench.cli import main
from panbench.errors import PanbenchError
from panbench.evaluation.options import parse_cfg_options


def test_values_parse_as_mmengines_dict_action() -> None:
    got = parse_cfg_options(["model.test_cfg.object_mask_thr=0.9", "a.b=3", "c=True", "d=None", "e=[1,2]",
                             "f=x,y", "g=(1,[2,3])", "h=text=with=equals"])
    assert got == {"model.test_cfg.object_mask_thr": 0.9, "a.b": 3, "c": True, "d": None, "e": [1, 2],
                   "f": ["x", "y"], "g": (1, [2, 3]), "h": "text=with=equals"}
    assert parse_cfg_options(None) is None and parse_cfg_options([]) is None
    with pytest.raises(PanbenchError, match="expected KEY=VALUE"):
        parse_cfg_options(["model.test_cfg.object_mask_thr"])


@pytest.mark.parametrize("value", ["a=[1,2", "a=(1,[2)", "a=[1,2]]"])
def test_unbalanced_brackets_are_one_line_exit_2(value, tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--results", str(tmp_path),
               "--cfg-options", value])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Imbalanced brackets" in err and value in err, err


def test_an_override_changes_the_results_the_record_and_the_cache_key(demo_root, tmp_path, capsys) -> None:
    # two images show the change of segments; no FLOPs pass (a pass of its own after the scoring): not checked here
    res, two = tmp_path / "res", ("--limit", "2", "--flops-images", "0")
    plain = eval_demo_record(demo_root, res, *two)
    capsys.readouterr()
    strict = eval_demo_record(demo_root, res, *two, "--cfg-options", "model.test_cfg.object_mask_thr=0.99")
    assert "demo-mask2former [default] (model.test_cfg.object_mask_thr=0.99) on demo" in capsys.readouterr().out
    assert len(list((res / "cache").iterdir())) == 2  # another cache: nothing resumed from the plain run
    assert strict["timings"]["resumed_images"] == 0
    assert strict["provenance"]["cfg_options"] == {"model.test_cfg.object_mask_thr": 0.99}
    assert plain["provenance"]["cfg_options"] is None
    assert "diagnosis" not in plain  # a model in its dataset's class order: no format mistake
    assert json.loads(strict["provenance"]["config"])["model"]["test_cfg"]["object_mask_thr"] == 0.99
    assert strict["provenance"]["config_sha256_16"] != plain["provenance"]["config_sha256_16"]
    assert strict["metrics"] != plain["metrics"]  # fewer queries kept: other segments
    loose = eval_demo_record(demo_root, res, *two, "--cfg-options", "model.test_cfg.object_mask_thr=0.5")
    assert len(list((res / "cache").iterdir())) == 3 and loose["metrics"] != strict["metrics"]
    again = eval_demo_record(demo_root, res, *two, "--cfg-options", "model.test_cfg.object_mask_thr=0.99")
    assert again["timings"]["resumed_images"] == 2 and again["metrics"] == strict["metrics"]  # same key: resumed


def test_an_override_that_breaks_the_model_is_refused_in_one_line(demo_root, tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), "--limit", "2", "--no-progress",
               "--cfg-options", "model.panoptic_fusion_head.type=NoSuchHead"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "NoSuchHead" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("option,expected", [
    ("model.test_cfg.object_mask_th=0.9", "has no key 'object_mask_th' under model.test_cfg; "
     "did you mean model.test_cfg.object_mask_thr?"),
    ("model.test_cfgs.iou_thr=0.9", "has no key 'test_cfgs' under model; did you mean model.test_cfg?"),
    ("model.test_cfg.object_mask_thr=abc", "model.test_cfg.object_mask_thr='abc': expected a number like the "
     "config's value 0.8, got a string"),
    ("model.test_cfg.panoptic_on=1", "expected a bool like the config's value True, got a number"),
])
def test_an_unknown_key_or_a_value_of_another_kind_is_refused_in_one_line(demo_root, tmp_path, capsys, option,
                                                                           expected) -> None:
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), "--limit", "2", "--no-progress", "--cfg-options", option])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()
