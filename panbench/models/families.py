"""The model families, one row each in :data:`FAMILIES`; a family is one subpackage whose ``__init__`` holds the
functions of :class:`panbench.models.protocol.FamilyEntry`, imported only when one of its models is used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from panbench.errors import PanbenchError
from panbench.package import named


class FamilyModule:
    """A family's subpackage as :class:`panbench.models.protocol.FamilyEntry`: its functions, with the defaults of the
    ones a family may leave out written here, once (``config_files`` and ``grid_kind``: None, not known)."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def _own(self, name: str) -> Any:
        return vars(self.module).get(name)

    def config_files(self, spec: Any) -> list[Path] | None:
        own = self._own("config_files")
        return own(spec) if own is not None else None

    def grid_kind(self, spec: Any) -> str | None:
        own = self._own("grid_kind")
        return own(spec) if own is not None else None


@dataclass(frozen=True)
class Family:
    """One model family: its name, how ``--model`` names its models, its subpackage, the packages it runs on."""

    name: str  # the registry's ``ModelSpec.framework``, the record's ``framework``
    prefix: str | None  # ``--model PREFIX:<ref>`` (``ModelSpec.ref``); None: registered configs and config paths
    package: str  # the subpackage whose functions load and check its models
    in_all: bool  # ``--model all`` runs its registered models (False: they are downloads chosen by name)
    packages: tuple[str, ...] = ("torch",)  # what its models run on: their versions are in a run's provenance
    # (package, version) the tests ran on and scripts/setup.sh pins; ``panbench doctor`` notes another.  Not torch:
    # the set-up keeps the torch an environment has (Colab, a CUDA image)
    tested: tuple[tuple[str, str], ...] = ()
    # (import name, extra of pyproject.toml that installs it): the fix a missing package's error names
    extras: tuple[tuple[str, str], ...] = ()
    ref_help: str = "<ref>"  # what follows ``PREFIX:`` in ``--model``'s help
    registered: str | None = None  # "module:function" giving its registered ModelSpecs kept in its subpackage
    # "module:function": (the doctor's probes, panbench.cli.doctor.Probes) -> its lines of `panbench doctor`
    doctor: str | None = None

    def entry(self) -> FamilyModule:
        """Its subpackage, imported now (:class:`panbench.models.protocol.FamilyEntry`, :class:`FamilyModule`)."""
        return FamilyModule(importlib.import_module(self.package))

    def registered_models(self) -> list:
        """The ``ModelSpec`` rows its subpackage lists (:attr:`registered`)."""
        return list(named(self.registered)()) if self.registered else []

    def doctor_checks(self, probes: object) -> list:
        """Its lines of ``panbench doctor`` (:attr:`doctor`), run with the doctor's ``probes``."""
        return list(named(self.doctor)(probes)) if self.doctor else []


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mmdet", None, "panbench.models.mmdet", in_all=True, packages=("torch", "mmcv", "mmengine", "mmdet"),
           tested=(("mmcv", "2.1.0"), ("mmengine", "0.10.7"), ("mmdet", "3.3.0")),
           extras=(("torch", "mmdet"), ("mmcv", "mmdet"), ("mmengine", "mmdet"), ("mmdet", "mmdet")),
           doctor="panbench.models.mmdet:checks"),
    # timm (DETR's hub checkpoints' backbone) is in the cuda extra beside torchvision, which it requires
    Family("transformers", "hf", "panbench.models.hf", in_all=False, packages=("torch", "transformers"),
           tested=(("transformers", "5.24.0"),),
           extras=(("transformers", "hf"), ("huggingface_hub", "hf"), ("timm", "cuda")),
           ref_help="<hub id or directory> (a Hugging Face transformers model, docs/huggingface.md)",
           registered="panbench.models.hf.types:models", doctor="panbench.models.hf:checks"),
)}


def extras() -> dict[str, str]:
    """Every family's (import name -> extra that installs it) (:attr:`Family.extras`)."""
    return {name: extra for f in FAMILIES.values() for name, extra in f.extras}


def model_help() -> str:
    """``--model``'s words for the families' prefixes: ``hf:<hub id or directory> (...)``, one per prefix."""
    return ", ".join(f"{f.prefix}:{f.ref_help}" for f in FAMILIES.values() if f.prefix)


def tested_versions() -> dict[str, str]:
    """Every family's tested package versions (:attr:`Family.tested`), by import name: what scripts/setup.sh pins."""
    return {name: version for f in FAMILIES.values() for name, version in f.tested}


def family(name: str) -> Family:
    """The family of a ``ModelSpec.framework``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise PanbenchError(f"model family '{name}' is not one of {', '.join(FAMILIES)}; fix the config's "
                            "panbench block (framework=...)") from None


def by_prefix(raw: str) -> tuple[Family, str] | None:
    """``hf:<ref>`` -> (the family of that prefix, the reference); None when ``raw`` names no prefix."""
    head, sep, ref = raw.partition(":")
    return next(((f, ref) for f in FAMILIES.values() if sep and f.prefix == head), None)
