"""A model of the MMDetection family opened for a run (:class:`MMDetHandle`): its config file read once, every
config a run, a grid's setting or a count needs a copy of it; the weights it loads found and checked
(:func:`resolve_weights`).  torch and mmdet are imported inside the methods."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import panbench.models.mmdet.mm as mm
from panbench.errors import PanbenchError
from panbench.models import checkpoints
from panbench.models.mmdet.family import MMDetModel, panoptic_only
from panbench.models.protocol import Built, ForDataset, ModelHandle, Weights
from panbench.resources import committed_checkpoints

if TYPE_CHECKING:
    from panbench.models.spec import ModelSpec

#: the fusion heads whose keys a grid may vary, by the kind of grid (:data:`panbench.models.grid.GRID_KEYS`)
GRID_KINDS = {"MaskFormerFusionHead": "maskformer", "HeuristicFusionHead": "heuristic"}


class MMDetHandle(ModelHandle):
    """One config, read on first use and once (:attr:`config`); every config a run needs is a copy of it with the
    run's or a setting's ``--cfg-options`` merged in."""

    @property
    def path(self) -> Path:
        return Path(self.spec.config)

    @cached_property
    def config(self) -> Any:
        """The config file as mmengine reads it, no options merged; never changed (each use takes a copy)."""
        return mm.load_config(self.path)

    def is_file(self) -> bool:
        """Whether the spec names a config file (else nothing is read before the load, which refuses it)."""
        return self.path.suffix == ".py" and self.path.is_file()

    def run_config(self, cfg_options: dict[str, Any] | None, ap: bool) -> Any:
        """The config a run builds: ``--cfg-options`` merged, the outputs beside the panoptic one off (AP's on with
        ``ap``)."""
        cfg = mm.merged(self.config, cfg_options, self.path)
        panoptic_only(cfg, keep_instances=ap)
        return cfg

    def load_model(self, categories: Any, checkpoint: str | None, trust: bool, device: str,
                   cfg_options: dict[str, Any] | None, ap: bool, any_rank: Callable[[bool], bool] | None,
                   dataset: ForDataset) -> Built:
        """Config (with ``--cfg-options``) -> model with checked weights on ``device``, class mapping, pipeline (the
        config's own on every dataset)."""
        spec = self.spec
        cfg = self.run_config(cfg_options, ap)
        cfg_text, cfg_hash = mm.config_text_and_hash(cfg)
        names = mm.class_names(cfg)
        label2cat = mm.label_to_category(names, categories, str(spec.config))
        model = mm.build_model(cfg, spec.config)
        mm.check_thing_split(model, names, categories, str(spec.config))
        weights = resolve_weights(spec, checkpoint, any_rank)
        assert weights.path is not None  # resolve_weights names a file or refuses
        state, meta = checkpoints.load_checkpoint(weights.path, trust=trust)
        mm.load_weights(model, state, weights.path, names, meta)
        del state
        model.to(device)
        family = MMDetModel(model, names, label2cat, mm.test_pipeline(cfg), where=str(spec.config))
        if ap:
            family.enable_instances()
        return Built(family, weights, cfg_text, cfg_hash)

    def config_text(self, cfg_options: dict[str, Any] | None, ap: bool) -> tuple[str, str]:
        """The resolved config text and its hash as :meth:`load_model` records them with ``cfg_options`` (a grid's
        setting names what a separate run of it would)."""
        return mm.config_text_and_hash(self.run_config(cfg_options, ap))

    def grid_kind(self) -> str | None:
        """The fusion whose keys a grid of the model may vary (:data:`GRID_KINDS`), from its config."""
        if not self.is_file():
            return None
        head = (self.config.model.get("panoptic_fusion_head") or {}).get("type")
        return GRID_KINDS.get(head if isinstance(head, str) else getattr(head, "__name__", ""))

    def check_options(self, categories: Any, cfg_options: dict[str, Any] | None, postprocess: str) -> None:
        """The config loads, its classes map and it takes ``--postprocess`` (``--model all`` stops at none)."""
        if not self.is_file():
            return
        cfg = mm.merged(self.config, cfg_options, self.path) if cfg_options else self.config
        mm.label_to_category(mm.class_names(cfg), categories, str(self.path))
        if postprocess == "default":
            return
        from mmdet.registry import MODELS

        head = (cfg.model.get("panoptic_fusion_head") or {}).get("type")
        cls = MODELS.get(head) if isinstance(head, str) else head
        if not hasattr(cls, "panoptic_postprocess"):  # what --postprocess replaces: MaskFormerFusionHead's merging
            raise PanbenchError(f"{self.path}: --postprocess {postprocess} needs a MaskFormer or Mask2Former "
                                f"model (query masks), and {self.spec.name} is {self.spec.architecture}; leave it "
                                "out of --model (nothing was run)")

    def random_model(self, device: str) -> MMDetModel:
        """The config's model, random weights from seed 0 (PanopticFPN's FLOPs follow them), panoptic only, no
        dataset."""
        import torch

        cfg = self.run_config(None, ap=False)
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            torch.manual_seed(0)
            detector = mm.build_model(cfg, self.spec.config).to(device).eval()
        return MMDetModel(detector, mm.class_names(cfg), [], mm.test_pipeline(cfg), where=str(self.spec.config))


def resolve_weights(spec: ModelSpec, checkpoint: str | None, any_rank: Callable[[bool], bool] | None = None) -> Weights:
    """The user's ``--checkpoint``, else the zoo's download, else the committed demo weights, each verified."""
    if checkpoint:
        p = Path(checkpoint)
        if not p.is_file():
            raise PanbenchError(f"{p}: checkpoint not found; check --checkpoint")
    elif spec.checkpoint:
        path, digest = checkpoints.fetch(spec.checkpoint, spec.sha256_prefix, any_rank=any_rank)
        return Weights(path, digest, spec.checkpoint)
    elif committed := committed_checkpoints(spec.name, spec.dataset):  # the demo models' weights, in the repository
        p = committed[-1]
    else:
        raise PanbenchError(f"{spec.config}: no checkpoint URL in the config's panbench block and none under "
                            f"checkpoints/{spec.dataset}/; pass --checkpoint PATH")
    return Weights(p, checkpoints.verify(p, checkpoints.expected_digest(p)), None)


def weights_state(spec: ModelSpec) -> str:
    """``cached``, ``download`` or ``committed`` (a model without a URL whose weights are in the repository)."""
    if spec.checkpoint_filename:
        return "cached" if (checkpoints.cache_dir() / spec.checkpoint_filename).exists() else "download"
    return "committed" if committed_checkpoints(spec.name, spec.dataset) else "none"
