"""The MMDetection family (:class:`MMDetFamily`): a model is a config file of ``configs/`` (or a path), opened as
an :class:`~panbench.models.mmdet.handle.MMDetHandle` that reads the config once and derives each run's, each
setting's and the doctor's model from it.  Its model is :mod:`.family`'s, built by :mod:`.mm`.  This module stays
light (``panbench --help`` reads the class): what loads a model is imported when one is opened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.models.protocol import Family

if TYPE_CHECKING:
    from panbench.models.mmdet.handle import MMDetHandle
    from panbench.models.spec import ModelSpec


class MMDetFamily(Family):
    """MMDetection 3.x models: the registered configs of ``configs/`` (and ``configs/demo/``) or a config path."""

    name = "mmdet"
    in_all = True
    packages = ("torch", "mmcv", "mmengine", "mmdet")
    tested = (("mmcv", "2.1.0"), ("mmengine", "0.10.7"), ("mmdet", "3.3.0"))
    extras = (("torch", "mmdet"), ("mmcv", "mmdet"), ("mmengine", "mmdet"), ("mmdet", "mmdet"))

    def open(self, spec: ModelSpec) -> MMDetHandle:
        from panbench.models.mmdet.handle import MMDetHandle

        return MMDetHandle(spec)

    def weights_state(self, spec: ModelSpec) -> str:
        from panbench.models.mmdet.handle import weights_state

        return weights_state(spec)

    def config_files(self, spec: ModelSpec) -> list[Path] | None:
        return config_files(spec)

    def doctor_checks(self, probes: Any) -> list[Any]:
        """Its lines of ``panbench doctor``: mmcv, its ops, AMP, mmengine, mmdet."""
        out = [mmcv := probes.version("mmcv")]
        if mmcv.ok and probes.torch_ok:
            devices = ("cpu", "cuda") if probes.cuda else ("cpu",)
            out += [probes.mmcv_ops(device) for device in devices]
            if not probes.skip_amp:
                for device in devices:
                    out += probes.amp(device)
        return [*out, probes.pkg_resources(), probes.version("mmengine"), probes.version("mmdet")]


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
