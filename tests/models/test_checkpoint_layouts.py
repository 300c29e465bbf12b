"""Checkpoints as mmdet 2.x and 3.x write them load for each architecture (demo configs, random weights);
the refusals the README promises: unexpected keys, a shape mismatch, a real class-order difference."""

from __future__ import annotations

from pathlib import Path

import helpers
import pytest
import torch
from helpers import (
    _random_model,
    mmcv1_checkpoint,
    publish_model,
    save_mmdet2_checkpoint,
    save_mmdet3_checkpoint,
    zoo_stem,
)

from panbench.cli import main
from panbench.evaluation.loading import load_model
from panbench.models import checkpoints
from panbench.models.mmdet import mm
from panbench.models.registry import resolve

DEMO_MODELS = ["demo-panoptic-fpn", "demo-maskformer", "demo-mask2former"]


@pytest.fixture(scope="module")
def built():
    """``built(name)``: the demo model's config and the model with random weights (seed 0, as the checkpoint writers
    of tests/helpers.py build it), built once for the module's checkpoints, which read its weights, never change
    them."""
    cache: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in cache:
            cache[name] = _random_model(resolve(name, dataset="demo")[0], 0)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def categories(demo_root):
    from panbench.data.datasets import load_dataset

    return load_dataset(demo_root, name="demo", limit=1).categories


# ---- class lists: spelling does not count, content and order do ----

def test_spelling_of_class_names_does_not_count() -> None:
    assert mm.compare_classes(["person", " truck", "Sky "], ["person", "truck", "sky"]) is None


def test_a_real_order_difference_names_both_entries() -> None:
    msg = mm.compare_classes(["person", "car", " truck"], ["person", "truck", "car"])
    assert msg is not None and "at index 1" in msg and "checkpoint 'car'" in msg and "config 'truck'" in msg


def test_a_content_difference_names_the_entries_of_both_lists() -> None:
    msg = mm.compare_classes(["person", "lorry", "car"], ["person", "truck", "car"])
    assert msg is not None and "only in the checkpoint ['lorry']" in msg and "only in the config ['truck']" in msg
    msg = mm.compare_classes(["a", "b"], ["a", "b", "c"])
    assert msg is not None and "only in the config ['c']" in msg


def test_classes_are_read_from_either_meta_layout() -> None:
    import numpy as np

    assert mm._checkpoint_classes({"CLASSES": (" truck", "car")}) == [" truck", "car"]
    assert mm._checkpoint_classes({"CLASSES": np.array(["a", "b"])}) == ["a", "b"]
    assert mm._checkpoint_classes({"dataset_meta": {"classes": ("a",), "palette": [(1, 2, 3)]}}) == ["a"]
    assert mm._checkpoint_classes({"epoch": 3}) is None


# ---- both writers, each demo architecture: loads with weights_only, meta as written ----

@pytest.mark.parametrize("name", DEMO_MODELS)
@pytest.mark.parametrize("layout", ["mmdet2", "mmdet3"])
def test_published_checkpoint_loads(name, layout, tmp_path, categories, built, monkeypatch) -> None:
    spec = resolve(name, dataset="demo")[0]
    monkeypatch.setattr(helpers, "_random_model", lambda spec, seed: built(spec.name) if seed == 0 else None)
    save = save_mmdet2_checkpoint if layout == "mmdet2" else save_mmdet3_checkpoint
    path = save(spec, tmp_path)
    assert checkpoints.expected_prefix(path.name) is not None  # a zoo name: its digest is checked
    assert path.read_bytes()[:2] == b"\x80\x02"  # publish_model writes the legacy pickle format
    state, meta = checkpoints.load_checkpoint(path)  # weights_only: no --trust-checkpoint needed
    if layout == "mmdet2":
        assert {"env_info", "config", "mmdet_version", "CLASSES", "epoch", "iter", "hook_msgs", "time",
                "mmcv_version"} <= set(meta)
        assert isinstance(meta["config"], str) and isinstance(meta["hook_msgs"], dict)
    else:
        assert {"cfg", "epoch", "iter", "time", "mmengine_version", "dataset_meta", "seed"} <= set(meta)
        assert isinstance(meta["dataset_meta"]["palette"][0], tuple)
    lm = load_model(spec, categories, str(path), trust=False, device="cpu")
    own = lm.model.state_dict()
    assert all(torch.equal(own[k], state[k]) for k in own)


def test_mmdet2_names_with_a_leading_space_are_accepted(tmp_path, categories, built) -> None:
    """What the issue reports for the PanopticFPN zoo files (' truck' vs 'truck'), with the demo's classes."""
    spec = resolve("demo-panoptic-fpn", dataset="demo")[0]
    cfg, model = built(spec.name)
    odd = tuple(" " + n.upper() if k % 2 else n for k, n in enumerate(mm.class_names(cfg)))
    path = publish_model(mmcv1_checkpoint(model, cfg, odd), tmp_path, zoo_stem("odd"))
    load_model(spec, categories, str(path), trust=False, device="cpu")


# ---- refusals, through the command line: one line, exit 2 ----

def _refused(demo_root: Path, ckpt: Path, tmp_path: Path, capsys) -> str:
    rc = main(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
               "--checkpoint", str(ckpt), "--results", str(tmp_path / "res"), "--limit", "2", "--workers", "0",
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err and not (tmp_path / "res" / "runs").exists()
    return err


def _edited(spec_name: str, tmp_path: Path, edit, built) -> Path:
    """``spec_name``'s checkpoint, its dict edited by ``edit`` (which replaces entries, never a tensor's values)."""
    cfg, model = built(spec_name)
    ckpt = mmcv1_checkpoint(model, cfg, tuple(mm.class_names(cfg)))
    edit(ckpt)
    return publish_model(ckpt, tmp_path, zoo_stem("edited"))


def test_unexpected_keys_are_refused(demo_root, tmp_path, capsys, built) -> None:
    path = _edited("demo-panoptic-fpn", tmp_path, lambda c: c["state_dict"].update({"extra.weight": torch.ones(3)}),
                   built)
    err = _refused(demo_root, path, tmp_path, capsys)
    assert "1 unexpected keys (e.g. extra.weight)" in err and "missing" not in err


def test_a_shape_mismatch_is_refused(demo_root, tmp_path, capsys, built) -> None:
    def edit(c: dict) -> None:
        k = next(k for k, v in c["state_dict"].items() if v.ndim == 4)
        c["state_dict"][k] = torch.zeros(*c["state_dict"][k].shape[:-1], c["state_dict"][k].shape[-1] + 1)
        edit.key = k

    path = _edited("demo-panoptic-fpn", tmp_path, edit, built)
    err = _refused(demo_root, path, tmp_path, capsys)
    assert f"'{edit.key}' has shape" in err and "the model expects" in err


def test_a_real_class_order_difference_is_refused(demo_root, tmp_path, capsys, built) -> None:
    def edit(c: dict) -> None:
        names = list(c["meta"]["CLASSES"])
        names[4], names[5] = names[5], names[4]  # 'sky' and 'grass' swapped
        c["meta"]["CLASSES"] = tuple(names)

    path = _edited("demo-panoptic-fpn", tmp_path, edit, built)
    err = _refused(demo_root, path, tmp_path, capsys)
    assert "class order differs from the config's at index 4 (checkpoint 'grass', config 'sky'" in err
