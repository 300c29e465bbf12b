"""The MMDetection family: a detector built from a config under ``configs/`` (:mod:`.mm`, ``--cfg-options``
checks in :mod:`.cfg_options`) run as a :class:`panbench.models.protocol.PanopticModel` (:mod:`.family`), the
changes panbench makes to its panoptic fusion head (:mod:`.fusion`, :mod:`.fast_fusion`) and MMDetection's own
test loop as a reference (:mod:`.reference`, which imports nothing else of the family).  The functions below are
the family's entry (:class:`panbench.models.protocol.FamilyEntry`), implemented in :mod:`.loading` and imported
when called.  Imports torch and mmdet inside the functions that need them, except :mod:`.fast_fusion` (torch)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panbench.models.mmdet.family import MMDetModel
    from panbench.models.protocol import Built
    from panbench.models.registry import ModelSpec


def load_model(spec: ModelSpec, categories: Any, checkpoint: str | None, trust: bool, device: str,
               cfg_options: dict[str, Any] | None, ap: bool,
               any_rank: Callable[[bool], bool] | None) -> Built:
    """:func:`panbench.models.mmdet.loading.load_model`."""
    from panbench.models.mmdet.loading import load_model as load

    return load(spec, categories, checkpoint, trust, device, cfg_options, ap, any_rank)


def check_options(spec: ModelSpec, categories: Any, cfg_options: dict[str, Any] | None, postprocess: str) -> None:
    """:func:`panbench.models.mmdet.loading.check_options`."""
    from panbench.models.mmdet.loading import check_options as check

    check(spec, categories, cfg_options, postprocess)


def weights_state(spec: ModelSpec) -> str:
    """:func:`panbench.models.mmdet.loading.weights_state`."""
    from panbench.models.mmdet.loading import weights_state as state

    return state(spec)


def config_files(spec: ModelSpec) -> list[Path] | None:
    """:func:`panbench.models.mmdet.loading.config_files`."""
    from panbench.models.mmdet.loading import config_files as files

    return files(spec)


def random_model(spec: ModelSpec, device: str) -> MMDetModel:
    """:func:`panbench.models.mmdet.loading.random_model`."""
    from panbench.models.mmdet.loading import random_model as build

    return build(spec, device)
