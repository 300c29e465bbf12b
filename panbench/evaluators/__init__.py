"""The evaluators of a run, one layer below ``evaluation`` (``eval``) and ``metrics`` (the Python API) and beside
``score``'s driver: the contract a member meets (``contract.py``: detectron2's ``DatasetEvaluator`` with shares that
add exactly, what a member ``needs`` of an image, the optional abilities it declares by their classes, the loading
of the user's), the built-in members (``builtin.py``:
PQ, the analyses, AP, the semantic confusion), the one composite that drives them (``composite.py``:
:class:`Evaluators`) and ``score``'s driver (``files.py``). Imports only ``panbench.pq``, ``panbench.analysis`` and
the leaf modules (docs/architecture.md)."""

from panbench.evaluators.composite import Evaluators
from panbench.evaluators.contract import NEEDS, Evaluator, ImageData, load_evaluator, load_evaluators

__all__ = ["NEEDS", "Evaluator", "Evaluators", "ImageData", "load_evaluator", "load_evaluators"]
