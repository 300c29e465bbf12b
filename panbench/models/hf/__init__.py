"""The Hugging Face ``transformers`` family (``--model hf:<hub id or directory>``, run by :mod:`.model`):
:class:`TransformersFamily` and the handle of one of its models; torch and transformers are imported only when a
model loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.errors import PanbenchError
from panbench.models.hf.types import (
    BACKBONE_NEEDS,
    PIPELINE_KEY,
    by_architecture,
    cfg_settings,
    describe,
    models,
    pipeline_of,
    postprocess_refusal,
)
from panbench.models.protocol import Family, ModelHandle
from panbench.ops.pairing import install_command

if TYPE_CHECKING:
    from panbench.models.protocol import Built, ForDataset
    from panbench.models.spec import ModelSpec


class TransformersFamily(Family):
    """transformers' panoptic models, named ``hf:<hub id or directory>``; its registered checkpoints are
    :func:`panbench.models.hf.types.models`."""

    name = "transformers"
    prefix = "hf"
    packages = ("torch", "transformers")
    tested = (("transformers", "5.24.0"),)
    # timm (DETR's hub checkpoints' backbone) is in the cuda extra beside torchvision, which it requires
    extras = (("transformers", "hf"), ("huggingface_hub", "hf"), ("timm", "cuda"))
    ref_help = "<hub id or directory> (a Hugging Face transformers model, docs/huggingface.md)"

    def open(self, spec: ModelSpec) -> TransformersHandle:
        return TransformersHandle(spec)

    def registered_models(self) -> list[ModelSpec]:
        return models()

    def unavailable(self, spec: ModelSpec) -> str | None:
        """A registered checkpoint whose backbone needs a package that is not installed (DiNAT's natten)."""
        import importlib.util

        if spec.unregistered or (need := BACKBONE_NEEDS.get(spec.backbone)) is None:
            return None
        package, why = need
        if importlib.util.find_spec(package) is not None:
            return None
        return (f"{spec.name}: {why}, and the {package} package is not installed; install a {package} build for the "
                f"installed torch (pip install {package}; it compiles against torch)")

    def weights_state(self, spec: ModelSpec) -> str:
        """``cached`` when the model is in huggingface_hub's cache (or is a local directory), else ``download``."""
        if Path(str(spec.ref)).expanduser().is_dir():
            return "cached"
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return "download"
        return "cached" if isinstance(try_to_load_from_cache(str(spec.ref), "config.json"), str) else "download"

    def doctor_checks(self, probes: Any) -> list[Any]:
        """Its line of ``panbench doctor``: timm, for DETR's backbone."""
        timm = probes.version("timm", required=False, fix=f"{install_command('timm', probes.pip)}; DETR's hub "
                              "checkpoints, hf-detr_*, build their backbone with timm (docs/huggingface.md)")
        if timm.ok:
            timm.detail += " (DETR's hub checkpoints)"
        return [timm]


class TransformersHandle(ModelHandle):
    """An ``hf:`` model: its configuration is read as it loads (:func:`panbench.models.hf.model.load_hf_model`)."""

    def load_model(self, categories: Any, checkpoint: str | None, trust: bool, device: str,
                   cfg_options: dict[str, Any] | None, ap: bool, any_rank: Callable[[bool], bool] | None,
                   dataset: ForDataset) -> Built:
        """``hf:<ref>`` -> :func:`panbench.models.hf.model.load_hf_model` (unregistered: names from its config);
        ``cfg_options``: its post-processing's settings (:func:`panbench.models.hf.types.cfg_settings`)."""
        from dataclasses import replace

        from panbench.models.hf.model import load_hf_model

        spec = self.spec
        cfg_settings(spec.name, cfg_options)
        if checkpoint:
            raise PanbenchError(f"--checkpoint does not apply to hf:{spec.ref}; pass the model's directory as "
                                "hf:DIR")
        assert spec.ref is not None
        built = load_hf_model(spec.ref, categories, device, any_rank=any_rank, cfg_options=cfg_options,
                              dataset=dataset)
        if ap:  # AP from its instance post-processing, mIoU from its semantic one
            built.model.module.enable_instances()
        return built if spec.unregistered else replace(built, named=None)

    def config_text(self, cfg_options: dict[str, Any] | None, ap: bool) -> tuple[str, str]:
        """The configuration text and its hash :meth:`load_model` records with ``cfg_options`` (a grid's setting
        names what a separate run of it would), from the model's load in this process."""
        from panbench.models.hf.model import recorded_config

        return recorded_config(str(self.spec.ref), cfg_settings(self.spec.name, cfg_options),
                               (cfg_options or {}).get(PIPELINE_KEY))

    def grid_kind(self) -> str:
        """``hf``: transformers' post-processing arguments (:data:`panbench.models.grid.GRID_KEYS`)."""
        return "hf"

    def check_options(self, categories: Any, cfg_options: dict[str, Any] | None, postprocess: str) -> None:
        """``--cfg-options`` are post-processing settings it takes; a local directory's model type has a
        description, and ``--postprocess`` is one it allows (the type from its config.json, or a registered
        checkpoint's architecture; other hub ids: the loader)."""
        spec = self.spec
        cfg_settings(spec.name, cfg_options)
        if (why := TransformersFamily().unavailable(spec)) is not None:
            raise PanbenchError(f"{why}, or leave the model out of --model (nothing was run)")
        kind = _local_model_type(spec)
        mtype = by_architecture(spec.architecture) if kind is None else describe(kind, f"hf:{spec.ref}")
        refusal = None if mtype is None else postprocess_refusal(str(spec.ref), postprocess, spec.name, mtype)
        pipeline_of(spec.name, cfg_options, mtype)  # a pipeline the model type cannot run, refused before any model
        if refusal is not None:
            raise PanbenchError(f"{refusal}; leave --postprocess out, or the model out of --model (nothing was run)")

    def random_model(self, device: str) -> None:
        """None: a transformers model is counted once downloaded (its record has the count)."""
        return None


def _local_model_type(spec: ModelSpec) -> str | None:
    """The ``model_type`` of a local directory's config.json (None: no directory, or a broken file)."""
    import json

    cfg = Path(str(spec.ref)).expanduser() / "config.json"
    if not cfg.is_file():
        return None
    try:
        kind = json.loads(cfg.read_text()).get("model_type")
    except (ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None
