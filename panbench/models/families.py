"""The model families, one row each in :data:`FAMILIES`: what the registry and the loader read to find the
family of a ``--model`` entry.  A family is one subpackage of :mod:`panbench.models` whose ``__init__`` holds
the functions of :class:`panbench.models.protocol.FamilyEntry` (``load_model``, ``check_options``, ``weights_state``,
``random_model``); it is imported only when one of its models is used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from panbench.errors import PanbenchError


@dataclass(frozen=True)
class Family:
    """One model family: its name, how ``--model`` names its models, its subpackage, the packages it runs on."""

    name: str  # the registry's ``ModelSpec.framework``, the record's ``framework``
    prefix: str | None  # ``--model PREFIX:<ref>`` (``ModelSpec.ref``); None: registered configs and config paths
    package: str  # the subpackage whose functions load and check its models
    in_all: bool  # ``--model all`` runs its registered models (False: they are downloads chosen by name)
    packages: tuple[str, ...] = ("torch",)  # what its models run on: their versions are in a run's provenance
    # (package, version) of ``packages`` that the tests ran on and scripts/setup.sh pins (.venv/panbench-
    # constraints.txt); ``panbench doctor`` notes another version.  torch is not here: the set-up keeps the torch
    # an environment has (Colab, a CUDA image)
    tested: tuple[tuple[str, str], ...] = ()

    def entry(self) -> ModuleType:
        """The family's functions (its subpackage, imported now): those of
        :class:`panbench.models.protocol.FamilyEntry`."""
        return importlib.import_module(self.package)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mmdet", None, "panbench.models.mmdet", in_all=True, packages=("torch", "mmcv", "mmengine", "mmdet"),
           tested=(("mmcv", "2.1.0"), ("mmengine", "0.10.7"), ("mmdet", "3.3.0"))),
    # the hf: path reads transformers' processors, post-processing and outputs (panbench/models/hf/)
    Family("transformers", "hf", "panbench.models.hf", in_all=False, packages=("torch", "transformers"),
           tested=(("transformers", "5.24.0"),)),
)}


def tested_versions() -> dict[str, str]:
    """Every family's tested package versions (:attr:`Family.tested`), by import name: what scripts/setup.sh pins
    (``python -c`` on this module: standard library only) and ``panbench doctor`` compares with the installed."""
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
    for f in FAMILIES.values():
        if sep and f.prefix == head:
            return f, ref
    return None
