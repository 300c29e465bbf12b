"""panbench: how panoptic segmentation models really compare.  docs/architecture.md says what each package holds
and may import (``tests/test_architecture_layers.py`` checks it)."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the Python API's names for type checkers; at run time __getattr__ imports them on first use
    from panbench.metrics import (
        ClassPQ,
        CocoPanopticQuality,
        DiagnosisWarning,
        Finding,
        PanopticQuality,
        PQResult,
        PQValues,
    )
    from panbench.models.grid import GridResult, postprocess_grid
    from panbench.pq.score import pq_compute

__version__ = "0.3.1"

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout: configs/, checkpoints/, results/

# The Python API (docs/api.md), imported on first use so that ``import panbench`` stays light.
_API = {"pq_compute": "panbench.pq.score", "PanopticQuality": "panbench.metrics",
        "CocoPanopticQuality": "panbench.metrics", "PQResult": "panbench.metrics", "PQValues": "panbench.metrics",
        "ClassPQ": "panbench.metrics", "Finding": "panbench.metrics", "DiagnosisWarning": "panbench.metrics",
        "postprocess_grid": "panbench.models.grid", "GridResult": "panbench.models.grid"}
__all__ = ["ClassPQ", "CocoPanopticQuality", "DiagnosisWarning", "Finding", "GridResult", "PQResult", "PQValues",
           "PanopticQuality", "__version__", "postprocess_grid", "pq_compute"]


def named(ref: str) -> Any:
    """What a table's row names as ``"module:function"``, imported now.  Not part of the Python API."""
    import importlib

    module, sep, name = ref.partition(":")
    if not sep or not name:
        raise ValueError(f"{ref!r} is no \"module:function\" reference")
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> object:
    if name in _API:
        return named(f"{_API[name]}:{name}")
    raise AttributeError(f"module 'panbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
