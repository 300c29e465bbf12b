"""The MMDetection family's entry (:class:`panbench.models.protocol.FamilyEntry`) and its lines of ``panbench doctor``;
its model is :mod:`.family`'s, built by :mod:`.mm`.  torch and mmdet are imported inside the functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.models import checkpoints
from panbench.models.mmdet import mm
from panbench.models.mmdet.family import MMDetModel, panoptic_only
from panbench.models.protocol import Built, Weights
from panbench.models.registry import ModelSpec
from panbench.resources import committed_checkpoints


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


def load_model(spec: ModelSpec, categories: Any, checkpoint: str | None, trust: bool, device: str,
               cfg_options: dict[str, Any] | None, ap: bool, any_rank: Callable[[bool], bool] | None) -> Built:
    """Config (with ``--cfg-options``) -> model with checked weights on ``device``, class mapping, pipeline."""
    cfg = run_config(spec, cfg_options, ap)
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


def run_config(spec: ModelSpec, cfg_options: dict[str, Any] | None, ap: bool) -> Any:
    """The config a run builds: ``--cfg-options`` merged, the outputs beside the panoptic one off (AP's on with
    ``ap``)."""
    cfg = mm.load_config(spec.config, cfg_options)
    panoptic_only(cfg, keep_instances=ap)
    return cfg


def config_text(spec: ModelSpec, cfg_options: dict[str, Any] | None, ap: bool) -> tuple[str, str]:
    """The resolved config text and its hash as :func:`load_model` records them with ``cfg_options`` (a grid's
    setting names what a separate run of it would)."""
    return mm.config_text_and_hash(run_config(spec, cfg_options, ap))


def grid_kind(spec: ModelSpec) -> str | None:
    """The fusion whose keys a grid of ``spec`` may vary (:data:`panbench.models.grid.GRID_KEYS`), from its config."""
    path = Path(spec.config)
    if path.suffix != ".py" or not path.is_file():
        return None
    head = (mm.load_config(path).model.get("panoptic_fusion_head") or {}).get("type")
    name = head if isinstance(head, str) else getattr(head, "__name__", "")
    return {"MaskFormerFusionHead": "maskformer", "HeuristicFusionHead": "heuristic"}.get(name)


def check_options(spec: ModelSpec, categories: Any, cfg_options: dict[str, Any] | None, postprocess: str) -> None:
    """The config loads, its classes map and it takes ``--postprocess`` (``--model all`` stops at none)."""
    path = Path(spec.config)
    if path.suffix != ".py" or not path.is_file():
        return
    cfg = mm.load_config(path, cfg_options)
    mm.label_to_category(mm.class_names(cfg), categories, str(path))
    if postprocess == "default":
        return
    from mmdet.registry import MODELS

    head = (cfg.model.get("panoptic_fusion_head") or {}).get("type")
    cls = MODELS.get(head) if isinstance(head, str) else head
    if not hasattr(cls, "panoptic_postprocess"):  # what --postprocess replaces: MaskFormerFusionHead's query merging
        raise PanbenchError(f"{path}: --postprocess {postprocess} needs a MaskFormer or Mask2Former "
                            f"model (query masks), and {spec.name} is {spec.architecture}; leave it out of "
                            "--model (nothing was run)")


def weights_state(spec: ModelSpec) -> str:
    """``cached``, ``download`` or ``committed`` (a model without a URL whose weights are in the repository)."""
    if spec.checkpoint_filename:
        return "cached" if (checkpoints.cache_dir() / spec.checkpoint_filename).exists() else "download"
    return "committed" if committed_checkpoints(spec.name, spec.dataset) else "none"


def config_files(spec: ModelSpec) -> list[Path] | None:
    """The config and the local files its ``_base_`` names, recursively (``mmdet::`` ones are fixed by mmdet's
    version); None when they cannot be told without mmengine (a missing file, a non-literal, ``read_base()``)."""
    import ast

    found: list[Path] = []

    def visit(path: Path) -> bool:
        if path in found:
            return True
        try:
            tree = ast.parse(path.read_text())
        except (OSError, SyntaxError, ValueError):
            return False
        found.append(path)
        for node in tree.body:
            if isinstance(node, ast.With):
                return False  # `with read_base(): from .x import *`: mmengine's own reading
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_base_" for t in node.targets):
                try:
                    bases = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError):
                    return False
                bases = [bases] if isinstance(bases, str) else bases
                if not isinstance(bases, (list, tuple)) or not all(isinstance(b, str) for b in bases):
                    return False
                if not all(visit((path.parent / b).resolve()) for b in bases if "::" not in b):
                    return False
        return True

    return found if visit(Path(spec.config).resolve()) else None


def random_model(spec: ModelSpec, device: str) -> MMDetModel:
    """The config's model, random weights from seed 0 (PanopticFPN's FLOPs follow them), panoptic only, no dataset."""
    import torch

    cfg = mm.load_config(spec.config)
    panoptic_only(cfg)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(0)
        detector = mm.build_model(cfg, spec.config).to(device).eval()
    return MMDetModel(detector, mm.class_names(cfg), [], mm.test_pipeline(cfg), where=str(spec.config))


def checks(probes: Any) -> list[Any]:
    """The family's lines of ``panbench doctor`` (:class:`panbench.cli.doctor.Probes`): mmcv, its ops, AMP, mmdet."""
    out = [mmcv := probes.version("mmcv")]
    if mmcv.ok and probes.torch_ok:
        devices = ("cpu", "cuda") if probes.cuda else ("cpu",)
        out += [probes.mmcv_ops(device) for device in devices]
        if not probes.skip_amp:
            for device in devices:
                out += probes.amp(device)
    return [*out, probes.pkg_resources(), probes.version("mmengine"), probes.version("mmdet")]
