"""panbench: how panoptic segmentation models really compare.

The package is layered by what each part may import; docs/architecture.md draws the data flow and its
table "The packages and what each may import" says the rules (``tests/test_architecture_layers.py`` holds them as
code and checks them):

* :mod:`panbench.pq`: panoptic quality itself: the one matching rule, the per-category sums, COCO-panoptic
  JSON and PNG reading, ``score_pair`` (one image to its ``ImageResult``), whole-folder ``score``.  numpy
  (plus its C extensions); never torch or mmdet.
* :mod:`panbench.records`: the run record declared once (``RunRecord``), its reading and atomic writing,
  provenance, the speed record.
* :mod:`panbench.analysis`: beyond one PQ, from the per-image matches: bootstrap intervals, PQ by size,
  PQ-dagger, the error breakdown, boundary PQ's sums, per-image PQ; mask AP and mIoU beside PQ.  Never torch.
* :mod:`panbench.data`: the table of datasets, datasets in the COCO panoptic layout, the COCO download, the
  synthetic demo set, the converters of other datasets.
* :mod:`panbench.ops`: the compiled mmcv functions inference needs, for mmcv-lite.
* :mod:`panbench.models`: what a model family gives the evaluation (``PanopticModel``), the table of
  families, one subpackage each (``mmdet/``, ``hf/``), the registry, checkpoints.  torch and the model
  libraries inside the modules that run a model.
* :mod:`panbench.robustness`: the COCO-C corruptions and the clean/mPC/rPC summaries.
* :mod:`panbench.evaluation`: one run of a model on a dataset (``Run``), in floors (its ``__init__``).
* :mod:`panbench.metrics`: the Python API's streaming metrics (``PanopticQuality``, ``CocoPanopticQuality``) on
  the PQ core's ``PanopticAccumulator``; ``pq_compute`` (panopticapi's entry point) is in :mod:`panbench.pq.score`.
* :mod:`panbench.reporting`: tables (pandas), plots (matplotlib), overlays, the HTML report, terminal text.
  Reads records; never runs a model, except ``viz``, which draws one image.
* :mod:`panbench.cluster`: sweeps on Slurm through submitit.
* :mod:`panbench.cli`: the ``panbench`` command, one module per command.  Imports each layer only when its
  command runs, so ``panbench --help`` and ``panbench score`` never import torch.

Beside them: :mod:`panbench.errors` (the one error type the CLI prints in one line, exit 2),
:mod:`panbench.downloads` (downloads with progress and resume), :mod:`panbench.analyses` (the table of
analyses) and :mod:`panbench.resources` (where the configs and demo weights are); standard library only.
"""

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
    from panbench.pq.score import pq_compute

__version__ = "0.3.1"

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout: configs/, checkpoints/, results/

# The Python API (docs/api.md), imported on first use so that ``import panbench`` stays light.
_API = {"pq_compute": "panbench.pq.score", "PanopticQuality": "panbench.metrics",
        "CocoPanopticQuality": "panbench.metrics", "PQResult": "panbench.metrics", "PQValues": "panbench.metrics",
        "ClassPQ": "panbench.metrics", "Finding": "panbench.metrics", "DiagnosisWarning": "panbench.metrics"}
__all__ = ["ClassPQ", "CocoPanopticQuality", "DiagnosisWarning", "Finding", "PQResult", "PQValues", "PanopticQuality",
           "__version__", "pq_compute"]


def named(ref: str) -> Any:
    """What a registry row names as ``"module:function"`` (the analyses', the model families' and the datasets'
    tables: a function of a module imported only when it is used), imported now.  Not part of the Python API."""
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
