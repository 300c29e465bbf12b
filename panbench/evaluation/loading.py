"""A model ready to evaluate: config, checked weights (the user's, the zoo's or the committed demo
weights), class mapping and test pipeline, carried as one :class:`LoadedModel` around the model family's
:class:`panbench.models.protocol.PanopticModel` (MMDetection's or transformers')."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.errors import InputError, PanbenchError
from panbench.evaluation.distributed import download_wait
from panbench.models import checkpoints
from panbench.models.mmdet import mm
from panbench.models.mmdet.family import MMDetModel
from panbench.models.mmdet.fusion import panoptic_only
from panbench.models.protocol import PanopticModel
from panbench.models.registry import ModelSpec
from panbench.resources import committed_checkpoints


@dataclass
class Weights:
    path: Path | None
    sha256: str | None
    url: str | None


def resolve_weights(spec: ModelSpec, checkpoint: str | None) -> Weights:
    """The user's ``--checkpoint`` (verified if its name carries a zoo digest or a MANIFEST.json lists it),
    else the zoo download, else the committed demo weights (verified against their MANIFEST.json)."""
    if checkpoint:
        p = Path(checkpoint)
        if not p.is_file():
            raise PanbenchError(f"{p}: checkpoint not found; check --checkpoint")
        return Weights(p, checkpoints.verify(p, checkpoints.expected_digest(p)), None)
    if spec.checkpoint:
        path, digest = checkpoints.fetch(spec.checkpoint, spec.sha256_prefix, any_rank=download_wait)
        return Weights(path, digest, spec.checkpoint)
    committed = committed_checkpoints(spec.name, spec.dataset)
    if committed:  # the demo models' weights live in the repository
        p = committed[-1]
        return Weights(p, checkpoints.verify(p, checkpoints.expected_digest(p)), None)
    raise PanbenchError(f"{spec.config}: no checkpoint URL in the config's panbench block and none under "
                        f"checkpoints/{spec.dataset}/; pass --checkpoint PATH")


@dataclass
class LoadedModel:
    """A model ready for inference (its family's :class:`~panbench.models.protocol.PanopticModel`), with what
    the run records about it."""

    family: PanopticModel  # what inference drives: pipeline, forward, to_segments, the fusion timer
    weights: Weights  # where the weights came from, their sha256
    cfg_text: str  # the resolved config, as recorded
    cfg_hash: str  # its sha256, first 16 hex digits
    pipeline: Any = None  # image file -> model input: the family's, or `viz --corruption`'s wrapper of it
    named: tuple[str, str] | None = None  # (architecture, backbone) read from an unregistered model's own config

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

    @property
    def num_classes(self) -> int:
        """Model labels; label ``num_classes`` is VOID in mmdet's panoptic encoding."""
        return len(self.names)


def load_model(spec: ModelSpec, categories: Any, checkpoint: str | None, trust: bool, device: str,
               cfg_options: dict[str, Any] | None = None, ap: bool = False) -> LoadedModel:
    """Config (with ``--cfg-options`` merged) -> model with checked weights on ``device``, its class
    mapping and test pipeline."""
    if spec.hf:
        refuse_cfg_options(spec, cfg_options)
        return _load_hf(spec, spec.hf, categories, checkpoint, device)
    cfg = mm.load_config(spec.config, cfg_options)
    panoptic_only(cfg, keep_instances=ap)
    cfg_text, cfg_hash = mm.config_text_and_hash(cfg)
    names = mm.class_names(cfg)
    label2cat = mm.label_to_category(names, categories, str(spec.config))
    model = mm.build_model(cfg, spec.config)
    mm.check_thing_split(model, names, categories, str(spec.config))
    weights = resolve_weights(spec, checkpoint)
    assert weights.path is not None  # resolve_weights names a file or refuses
    state, meta = checkpoints.load_checkpoint(weights.path, trust=trust)
    mm.load_weights(model, state, weights.path, names, meta)
    del state
    model.to(device)
    family = MMDetModel(model, names, label2cat, mm.test_pipeline(cfg))
    if ap:
        family.enable_instances()
    return LoadedModel(family, weights, cfg_text, cfg_hash)


def refuse_cfg_options(spec: ModelSpec, cfg_options: dict[str, Any] | None) -> None:
    """``--cfg-options`` with a transformers model (``hf:``), which has no MMDetection config: refused."""
    if spec.hf and cfg_options:
        raise InputError(f"{spec.name}: --cfg-options changes MMDetection configs; a transformers model "
                         "(hf:) has none: leave --cfg-options out")


def _load_hf(spec: ModelSpec, ref: str, categories: Any, checkpoint: str | None, device: str) -> LoadedModel:
    """A transformers model (``hf:``): the family's :class:`panbench.models.hf.model.HFPanoptic`."""
    from panbench.models.hf import load as hf

    if checkpoint:
        raise PanbenchError(f"--checkpoint does not apply to hf:{ref}; pass the model's directory as hf:DIR")
    m = hf.load(ref, categories, device, any_rank=download_wait)
    named = (m.architecture, m.backbone) if spec.architecture == "transformers" else None  # an unregistered hf:
    weights = Weights(m.directory, m.sha256, m.hub_id)
    return LoadedModel(m.module, weights, m.cfg_text, m.cfg_hash, named=named)
