"""The model families, one :class:`~panbench.models.protocol.Family` subclass each, registered by name in
:data:`FAMILIES`: MMDetection's (``models/mmdet/``) and transformers' (``models/hf/``).  Their classes' modules are
light; what runs a model is imported when one is opened and loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from panbench.errors import PanbenchError
from panbench.models.hf import TransformersFamily
from panbench.models.mmdet import MMDetFamily
from panbench.models.protocol import Family

if TYPE_CHECKING:
    from panbench.models.protocol import ModelHandle
    from panbench.models.spec import ModelSpec

#: every family by its name (``ModelSpec.framework``); a new family is its subclass of ``Family`` and its entry here
FAMILIES: dict[str, Family] = {f.name: f for f in (MMDetFamily(), TransformersFamily())}


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


def open_model(spec: ModelSpec) -> ModelHandle:
    """``spec``'s model opened by its family (:meth:`Family.open`): the one handle a run checks, describes and loads
    it through."""
    return family(spec.framework).open(spec)


def by_prefix(raw: str) -> tuple[Family, str] | None:
    """``hf:<ref>`` -> (the family of that prefix, the reference); None when ``raw`` names no prefix."""
    head, sep, ref = raw.partition(":")
    return next(((f, ref) for f in FAMILIES.values() if sep and f.prefix == head), None)
