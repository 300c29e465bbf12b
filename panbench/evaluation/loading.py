"""A model ready to evaluate, loaded through its family's handle (:meth:`panbench.models.protocol.Family.open`):
checked weights, class mapping and pipeline, carried as one :class:`LoadedModel` around the family's
:class:`panbench.models.protocol.PanopticModel` with what the run records about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from panbench.data.catalog import DATASETS
from panbench.evaluation.runtime import download_wait
from panbench.models.families import family, open_model
from panbench.models.numerics import layout_free, reproducible_blas
from panbench.models.protocol import ForDataset, ModelHandle, PanopticModel, Weights, check_model
from panbench.models.registry import ModelSpec

__all__ = ["LoadedModel", "Weights", "load_model"]


@dataclass
class LoadedModel:
    """A model ready for inference (its family's ``PanopticModel``), with what the run records about it."""

    family: PanopticModel  # what inference drives: pipeline, forward, to_segments, the fusion timer
    weights: Weights  # where the weights came from, their sha256
    cfg_text: str  # the resolved config, as recorded
    cfg_hash: str  # its sha256, first 16 hex digits
    pipeline: Any = None  # image file -> model input: the family's, or `viz --corruption`'s wrapper of it
    named: tuple[str, str] | None = None  # (architecture, backbone) read from an unregistered model's own config
    packages: tuple[str, ...] = ()  # what the model runs on: its family's packages and its backbone's
    inference: str | None = None  # an hf: model's --pipeline (original or transformers); None: its family's own

    def __post_init__(self) -> None:
        if self.pipeline is None:
            self.pipeline = self.family.pipeline

    @property
    def model(self) -> Any:
        """The torch module on its device, weights loaded and checked."""
        return self.family.module

    @property
    def names(self) -> list[str]:
        """The model's class names, in label order."""
        return self.family.names

    @property
    def label2cat(self) -> list[int]:
        """Model label -> dataset category id."""
        return self.family.label2cat


def load_model(spec: ModelSpec, categories: Any, checkpoint: str | None, trust: bool, device: str,
               cfg_options: dict[str, Any] | None = None, ap: bool = False,
               handle: ModelHandle | None = None, dataset: str = "coco") -> LoadedModel:
    """``spec``'s model on ``device`` through its family's handle (``handle``, the run's, else opened here): weights
    checked, classes mapped to ``categories``, ``--cfg-options`` merged; ``ap``: its instance output on; its
    test-time inference ``dataset``'s.  On the
    CPU its forward gives the same bits on any process layout (:mod:`panbench.models.numerics`)."""
    reproducible_blas()
    fam = family(spec.framework)
    handle = open_model(spec) if handle is None else handle
    target = ForDataset(dataset, dict(DATASETS[dataset].card.label_aliases) if dataset in DATASETS else {})
    built = handle.load_model(categories, checkpoint, trust, device, cfg_options, ap, download_wait, target)
    check_model(built.model, fam.name)
    if device.split(":")[0] == "cpu":  # a GPU's kernels are the same on every rank: nothing to route or pay for
        layout_free(built.model.module)
    packages = tuple(dict.fromkeys((*fam.packages, *built.packages)))
    return LoadedModel(built.model, built.weights, built.cfg_text, built.cfg_hash, named=built.named, packages=packages,
                       inference=built.pipeline)
