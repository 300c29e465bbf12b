"""A model that panbench can evaluate, :class:`ModelSpec`: what the registry (:mod:`panbench.models.registry`) reads
from a config's ``panbench = dict(...)`` block or a family lists, frozen.  A leaf: the families build their
registered models' specs with it, and the registry finds a spec's family by its ``framework``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    """A model that panbench can evaluate: its config file (or reference) and metadata."""

    name: str
    config: Path
    architecture: str = "custom"
    backbone: str = "?"
    aliases: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    sha256_prefix: str | None = None
    published: dict[str, float | None] = field(default_factory=dict)
    dataset: str = "coco"
    params: int | None = None
    # its family (a key of panbench.models.families.FAMILIES): what runs the model, the record's ``framework``
    framework: str = "mmdet"
    ref: str | None = None  # a model named by reference (``--model hf:<ref>``: a hub id or local directory)
    unregistered: bool = False  # a reference the registry does not list: its own config names the rest
    published_source: str | None = None  # where ``published`` comes from (paper table, model zoo page)
    input_size: str | None = None  # the published test input, e.g. "640x640" (None: the config's own pipeline)
    published_fps: float | None = None  # the published images per second, on the device ``published_source`` names
    published_fps_device: str | None = None  # that device (``panbench speed`` shows the FPS beside its own there)
    # the PQ rules ``published`` was computed under (panbench.pq.rule_names.RULES: "panopticapi" for the MMDetection
    # zoo and detectron2-trained models, "eomt" for EoMT's checkpoints); None: unknown
    published_rules: str | None = None
    # the inference ``published`` was made by, for a family with more than one (an hf: model's --pipeline:
    # "original", its original repository's own); None: the family has one (the mmdet zoo's numbers are mmdet's)
    published_pipeline: str | None = None

    @property
    def checkpoint_filename(self) -> str | None:
        return self.checkpoint.rsplit("/", 1)[-1] if self.checkpoint else None
