"""``PanbenchPanopticMetric`` inside mmengine's own loops, set up as a user's config does it
(``custom_imports`` + ``type='PanbenchPanopticMetric'``): ``Runner.test()`` on each demo model gives MMDetection's
``CocoPanopticMetric`` numbers to 1e-9 (both metrics in one evaluator, so both score the very same outputs), and
``Runner.train()`` with a validation interval runs it between training iterations."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT

pytest.importorskip("mmdet")
pytest.importorskip("panopticapi")
pytestmark = pytest.mark.slow

MODELS = ("mask2former", "maskformer", "panoptic-fpn")
KEYS = ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")


def checkpoint(model: str) -> Path:
    return sorted((REPO_ROOT / "checkpoints" / "demo").glob(f"demo-{model}-*.pth"))[-1]


def user_config(tmp: Path, model: str, demo_root: Path, body: str) -> Path:
    """A config file as a user writes one: the demo model's config as its base, panbench's metric imported."""
    ann = demo_root / "annotations" / "panoptic_val2017.json"
    seg = demo_root / "annotations" / "panoptic_val2017"
    cfg = tmp / f"{model}_panbench.py"
    cfg.write_text(
        f"_base_ = [{str(REPO_ROOT / 'configs' / 'demo' / f'{model}.py')!r}]\n"
        "custom_imports = dict(imports=['panbench.integrations.mmdet'], allow_failed_imports=False)\n"
        f"ann, seg = {str(ann)!r}, {str(seg) + '/'!r}\n"
        f"load_from = {str(checkpoint(model))!r}\n"
        f"work_dir = {str(tmp / 'work')!r}\n"
        "log_level = 'WARNING'\n" + body)
    return cfg


def runner(cfg_file: Path, demo_root: Path):
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from panbench.ops import install

    install()  # mmcv-lite: panbench's stand-in for mmcv._ext before mmdet's models import mmcv.ops
    cfg = Config.fromfile(str(cfg_file))
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = str(demo_root) + "/"
        cfg[loader].num_workers, cfg[loader].persistent_workers = 0, False
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    return Runner.from_cfg(cfg)


# the first 8 of the 60 demo val images: each holds things and stuff, so all nine numbers (PQ_th and PQ_st too) are
# numbers, never NaN, and the two metrics are compared on both kinds of segment
TEST_BODY = """
test_dataloader = dict(dataset=dict(indices=8))
test_evaluator = [  # panbench's first: mmdet's metric writes VOID into the shared sem_seg maps in place
    dict(type='PanbenchPanopticMetric', ann_file=ann, seg_prefix=seg, prefix='panbench'),
    dict(type='CocoPanopticMetric', ann_file=ann, seg_prefix=seg)]
"""


@pytest.mark.parametrize("model", MODELS)
def test_runner_test_gives_mmdetections_numbers_on_a_demo_model(model, demo_root, tmp_path) -> None:
    out = runner(user_config(tmp_path, model, demo_root, TEST_BODY), demo_root).test()
    assert len(out) == 2 * len(KEYS)
    for k in KEYS:
        ours, theirs = out[f"panbench/{k}"], out[f"coco_panoptic/{k}"]
        assert not math.isnan(theirs) and abs(ours - theirs) <= 1e-9, (model, k, ours, theirs)
    assert out["coco_panoptic/PQ"] > 0


TRAIN_BODY = """
train_dataloader = dict(batch_size=2)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=1)
val_dataloader = dict(dataset=dict(indices=4))
val_evaluator = dict(_delete_=True, type='PanbenchPanopticMetric', ann_file=ann, seg_prefix=seg)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000))
"""


def test_runner_train_validates_with_the_panbench_metric_each_interval(demo_root, tmp_path) -> None:
    from panbench.integrations.mmdet import PanbenchPanopticMetric

    r = runner(user_config(tmp_path, "maskformer", demo_root, TRAIN_BODY), demo_root)
    r.train()
    (metric,) = r.val_loop.evaluator.metrics
    assert isinstance(metric, PanbenchPanopticMetric) and metric.keep_ground_truth
    for k in KEYS:  # two validation rounds, each with the nine numbers
        values, _ = r.message_hub.get_scalar(f"val/coco_panoptic/{k}").data
        assert len(values) == 2 and not any(math.isnan(v) for v in values), (k, values)


def test_a_model_whose_label_order_differs_from_dataset_meta_gets_a_warning_naming_the_mapping(demo_root,
                                                                                             tmp_path) -> None:
    """The metric's keys and values stay what MMEngine expects (numbers); the diagnosis is a warning."""
    from helpers import rolled_checkpoint

    from panbench import DiagnosisWarning

    rolled = rolled_checkpoint(checkpoint("mask2former"), tmp_path)
    body = (f"load_from = {str(rolled)!r}\ntest_dataloader = dict(dataset=dict(indices=8))\n"
            "test_evaluator = dict(type='PanbenchPanopticMetric', ann_file=ann, seg_prefix=seg)\n")
    with pytest.warns(DiagnosisWarning, match="category_mapping: predicted categories follow another class order"):
        out = runner(user_config(tmp_path, "mask2former", demo_root, body), demo_root).test()
    assert set(out) == {f"coco_panoptic/{k}" for k in KEYS} and out["coco_panoptic/PQ"] < 5
