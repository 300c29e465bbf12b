"""Small decisions of the eval path: how many forked CPU processes, and panoptic-only heads."""

from __future__ import annotations

import os

from mmengine.config import Config

from panbench.evaluation.inference import cpu_procs_for
from panbench.evaluation.options import EvalOptions
from panbench.models.mmdet import family as fusion


def test_cpu_procs_default_is_one_per_core() -> None:
    assert cpu_procs_for(EvalOptions(), "cpu", world=1, n_images=1000) == (os.cpu_count() or 1)


def test_cpu_procs_explicit_and_capped_by_images() -> None:
    assert cpu_procs_for(EvalOptions(cpu_procs=3), "cpu", world=1, n_images=1000) == 3
    assert cpu_procs_for(EvalOptions(cpu_procs=8), "cpu", world=1, n_images=6) == 3  # at least 2 images each
    assert cpu_procs_for(EvalOptions(cpu_procs=8), "cpu", world=1, n_images=1) == 1


def test_one_process_on_gpu_under_torchrun_or_when_asked() -> None:
    assert cpu_procs_for(EvalOptions(cpu_procs=4), "cuda", world=1, n_images=100) == 1
    assert cpu_procs_for(EvalOptions(cpu_procs=4), "cpu", world=2, n_images=100) == 1
    assert cpu_procs_for(EvalOptions(cpu_procs=1), "cpu", world=1, n_images=100) == 1


def test_panoptic_only_switches_off_unused_outputs() -> None:
    cfg = Config(dict(model=dict(test_cfg=dict(panoptic_on=True, semantic_on=False, instance_on=True))))
    assert fusion.panoptic_only(cfg) == ["model.test_cfg.instance_on"]
    assert cfg.model.test_cfg.instance_on is False and cfg.model.test_cfg.panoptic_on is True


def test_panoptic_only_leaves_other_heads_alone() -> None:
    rcnn = dict(rcnn=dict(score_thr=0.6), panoptic=dict(mask_overlap=0.5))
    cfg = Config(dict(model=dict(test_cfg=rcnn)))
    assert fusion.panoptic_only(cfg) == [] and cfg.model.test_cfg.to_dict() == rcnn
