"""The MMDetection family: a detector built from a config under ``configs/`` (:mod:`.mm`, with its
``--cfg-options`` checks) run as a :class:`panbench.models.protocol.PanopticModel` (:mod:`.family`, with the changes
panbench makes to its panoptic fusion head, computed in :mod:`.fast_fusion`).  Here: the family's entry
(:class:`panbench.models.protocol.FamilyEntry`): a registered config (or a config path) -> an
:class:`~panbench.models.mmdet.family.MMDetModel` with checked weights (the user's, the zoo's or the committed demo
weights), its options checked before any model runs, its weights' state, the model with random weights that
``panbench ls --params`` and the FLOPs counter measure; and its lines of ``panbench doctor`` (:func:`checks`).
Imports torch and mmdet inside the functions that need them, except :mod:`.fast_fusion` (torch)."""

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


def resolve_weights(spec: ModelSpec, checkpoint: str | None,
                    any_rank: Callable[[bool], bool] | None = None) -> Weights:
    """The user's ``--checkpoint`` (verified if its name carries a zoo digest or a MANIFEST.json lists it),
    else the zoo download, else the committed demo weights (verified against their MANIFEST.json)."""
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
               cfg_options: dict[str, Any] | None, ap: bool,
               any_rank: Callable[[bool], bool] | None) -> Built:
    """Config (with ``--cfg-options`` merged) -> model with checked weights on ``device``, its class
    mapping and test pipeline."""
    cfg = mm.load_config(spec.config, cfg_options)
    panoptic_only(cfg, keep_instances=ap)
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


def check_options(spec: ModelSpec, categories: Any, cfg_options: dict[str, Any] | None, postprocess: str) -> None:
    """The config loads with ``--cfg-options``, its classes map to the dataset's categories, and it takes
    ``--postprocess`` (so that ``--model all`` does not stop at the fifth model)."""
    path = Path(spec.config)
    if path.suffix != ".py" or not path.is_file():
        return
    cfg = mm.load_config(path, cfg_options)
    mm.label_to_category(mm.class_names(cfg), categories, str(path))
    if postprocess != "default" and not _has_query_fusion(cfg):
        raise PanbenchError(f"{path}: --postprocess {postprocess} needs a MaskFormer or Mask2Former "
                            f"model (query masks), and {spec.name} is {spec.architecture}; leave it out of "
                            "--model (nothing was run)")


def _has_query_fusion(cfg: Any) -> bool:
    """Whether the config's panoptic fusion head merges query masks (``panoptic_postprocess``, what
    ``--postprocess`` replaces), as MaskFormer's and Mask2Former's ``MaskFormerFusionHead`` does."""
    from mmdet.registry import MODELS

    head = (cfg.model.get("panoptic_fusion_head") or {}).get("type")
    cls = MODELS.get(head) if isinstance(head, str) else head
    return cls is not None and hasattr(cls, "panoptic_postprocess")


def weights_state(spec: ModelSpec) -> str:
    """``cached``, ``download`` or ``committed`` (a model without a URL whose weights are in the repository)."""
    if spec.checkpoint_filename:
        return "cached" if (checkpoints.cache_dir() / spec.checkpoint_filename).exists() else "download"
    if committed_checkpoints(spec.name, spec.dataset):
        return "committed"
    return "none"


def config_files(spec: ModelSpec) -> list[Path] | None:
    """The files ``spec``'s config is read from beside mmdet's own (``mmdet::``, fixed by mmdet's version): the
    config and the local files its ``_base_`` names, recursively; None when they cannot be told without
    mmengine (no such file, a ``_base_`` that is not a literal, a ``read_base()`` import)."""
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
                if not isinstance(bases, (str, list, tuple)):
                    return False
                for base in [bases] if isinstance(bases, str) else bases:
                    if not isinstance(base, str):
                        return False
                    if "::" not in base and not visit((path.parent / base).resolve()):
                        return False
        return True

    return found if visit(Path(spec.config).resolve()) else None


def random_model(spec: ModelSpec, device: str) -> MMDetModel:
    """The config's model with random weights drawn from seed 0 (the same every time: PanopticFPN's FLOPs follow
    its detections), panoptic output only, no dataset (no category ids to map to)."""
    import torch

    cfg = mm.load_config(spec.config)
    panoptic_only(cfg)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(0)
        detector = mm.build_model(cfg, spec.config).to(device).eval()
    return MMDetModel(detector, mm.class_names(cfg), [], mm.test_pipeline(cfg), where=str(spec.config))


def checks(probes: Any) -> list[Any]:
    """The family's lines of ``panbench doctor`` (``probes``: :class:`panbench.cli.doctor.Probes`), in the order it
    prints them: mmcv, its compiled ops on each device (compiled mmcv or panbench's), the AMP modes each
    architecture runs, pkg_resources (mmengine imports it), mmengine and mmdet."""
    out = [mmcv := probes.version("mmcv")]
    if mmcv.ok and probes.torch_ok:
        devices = ("cpu", "cuda") if probes.cuda else ("cpu",)
        out += [probes.mmcv_ops(device) for device in devices]
        if not probes.skip_amp:
            for device in devices:
                out += probes.amp(device)
    return [*out, probes.pkg_resources(), probes.version("mmengine"), probes.version("mmdet")]
