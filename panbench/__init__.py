"""panbench: how panoptic segmentation models really compare.  docs/architecture.md says what each package holds
and may import (``tests/test_architecture_layers.py`` checks it)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Python API's names for type checkers; at run time __getattr__ imports them on first use
    from panbench.metrics import (
        ClassPQ,
        CocoPanopticQuality,
        DiagnosisWarning,
        Finding,
        PanopticQuality,
        PQResult,
        PQValues,
        pq_compute,
    )
    from panbench.models.mmdet.grids import GridResult, postprocess_grid
    from panbench.package import __version__

# The Python API (docs/api.md), imported on first use so that ``import panbench`` stays light.
_API = {"__version__": "panbench.package", "pq_compute": "panbench.metrics", "PanopticQuality": "panbench.metrics",
        "CocoPanopticQuality": "panbench.metrics", "PQResult": "panbench.metrics", "PQValues": "panbench.metrics",
        "ClassPQ": "panbench.metrics", "Finding": "panbench.metrics", "DiagnosisWarning": "panbench.metrics",
        "postprocess_grid": "panbench.models.mmdet.grids", "GridResult": "panbench.models.mmdet.grids"}
__all__ = ["ClassPQ", "CocoPanopticQuality", "DiagnosisWarning", "Finding", "GridResult", "PQResult", "PQValues",
           "PanopticQuality", "__version__", "postprocess_grid", "pq_compute"]


def __getattr__(name: str) -> object:
    if name in _API:
        from panbench.package import named

        return named(f"{_API[name]}:{name}")
    raise AttributeError(f"module 'panbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
