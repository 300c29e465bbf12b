"""The evaluator contract (docs/api.md, "Your own evaluator"): detectron2's ``DatasetEvaluator`` with a per-image
share that adds exactly (reset / process / add / merge / evaluate), what a member declares it needs of an image
(:data:`NEEDS`), and the loading, naming and checking of the user's evaluators."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from panbench.analysis.ap import Instances
from panbench.errors import InputError, PanbenchError
from panbench.pq.matching import CategoryTable
from panbench.pq.result import ImageResult

#: What an evaluator may declare it reads of an image (its ``needs``): ``result`` (the image's PQ result),
#: ``segments`` (``gt_segments`` and ``pred_segments``, as the JSON lists them), ``id_maps`` (``gt_ids`` and
#: ``pred_ids``), ``instances`` and ``semantic`` (the model's); ``index``, ``image_id`` and ``categories`` come
#: always. An evaluator that declares nothing gets everything the run has.
NEEDS = frozenset({"result", "segments", "id_maps", "instances", "semantic"})


@dataclass(frozen=True)
class ImageData:
    """One scored image, as every evaluator reads it: its position in the dataset (``index``), COCO id, the
    dataset's categories, the ground truth and the prediction (id maps and segments), the prediction's PQ result,
    and the model's instances (with AP on) and semantic map (category ids); None where the run has none, and may be
    None where no evaluator of the run declared that it needs it (:data:`NEEDS`)."""

    index: int
    image_id: Any
    categories: CategoryTable
    gt_ids: np.ndarray | None
    gt_segments: Sequence[dict[str, Any]] | None
    pred_ids: np.ndarray | None
    pred_segments: Sequence[dict[str, Any]] | None
    result: ImageResult | None
    instances: Instances | None = None
    semantic: np.ndarray | None = None


@runtime_checkable
class Evaluator(Protocol):
    """What an evaluator does (module docstring); ``name``, ``version`` and ``needs`` are optional attributes."""

    def reset(self) -> None: ...
    def process(self, image: ImageData) -> Any: ...
    def add(self, share: Any) -> None: ...
    def merge(self, other: Any) -> None: ...
    def evaluate(self) -> dict[str, Any]: ...


def name_of(ev: Any) -> str:
    """An evaluator's name: its ``name`` attribute, else its class's."""
    return str(getattr(ev, "name", None) or type(ev).__name__)


def cache_key_of(ev: Any) -> str:
    """Where the resume cache keeps an evaluator's shares: ``name@version``."""
    version = getattr(ev, "version", None)
    return f"{name_of(ev)}@{'1' if version is None else version}"


def needs_of(ev: Any) -> frozenset[str]:
    """What ``ev`` reads of an image (its ``needs``; everything where it declares nothing); a declaration naming
    something else is refused in one line."""
    declared = getattr(ev, "needs", None)
    if declared is None:
        return NEEDS
    if isinstance(declared, str) or not all(isinstance(n, str) for n in declared):
        raise PanbenchError(f"evaluator {name_of(ev)}: needs = {declared!r}; declare a set of names, e.g. "
                            "needs = {'segments'}")
    if unknown := sorted(set(declared) - NEEDS):
        raise PanbenchError(f"evaluator {name_of(ev)}: needs names {', '.join(map(repr, unknown))}; name only "
                            f"{', '.join(sorted(NEEDS))}")
    return frozenset(declared)


def call(ev: Any, method: str, where: str, *args: Any, **kwargs: Any) -> Any:
    """``ev.method(*args)``; an exception of an evaluator of the user's (not panbench's own) becomes one line naming
    the evaluator, the method and the image (the traceback under ``--debug``), and so does its ``sys.exit``; what it
    prints goes to stderr (stdout is panbench's: ``score --json``'s JSON)."""
    if type(ev).__module__.startswith("panbench."):
        return getattr(ev, method)(*args, **kwargs)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return getattr(ev, method)(*args, **kwargs)
    except PanbenchError:
        raise
    except SystemExit as e:
        raise PanbenchError(f"evaluator {name_of(ev)}: {method}() called sys.exit({e.code!r}) on {where}; an "
                            "evaluator returns its share or fields, or raises (--debug shows where)") from None
    except Exception as e:
        raise PanbenchError(f"evaluator {name_of(ev)}: {method}() failed on {where} ({type(e).__name__}: {e}); fix "
                            "the evaluator (--debug shows where)") from e


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON")


def as_json(ev: Any, value: Any, what: str, kinds: str) -> Any:
    """``value`` through JSON; refused in one line naming the evaluator where it is not JSON."""
    try:
        return json.loads(json.dumps(value, default=_plain, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise PanbenchError(f"evaluator {name_of(ev)}: {what} not JSON ({e}); return {kinds}") from None


def state_bytes(ev: Any) -> bytes | None:
    """An evaluator's state as bytes, to tell whether a call changed it (None where it does not pickle)."""
    try:
        return pickle.dumps(ev, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - refused when it is loaded
        return None


#: the built-in evaluators' names (panbench.evaluators.builtin), which no evaluator of the user's may take
BUILT_IN_NAMES = ("PQ", "Analyses", "AP", "SemanticConfusion", "Rules")


def check_names(evaluators: Sequence[Any]) -> None:
    """Refuse two evaluators of one name, or one of the user's named as a built-in."""
    seen: set[str] = set()
    for ev in evaluators:
        n = name_of(ev)
        if n in BUILT_IN_NAMES and not getattr(ev, "built_in", False):
            raise PanbenchError(f"evaluator {n}: the name of a built-in evaluator; set the class's `name` to another")
        if n in seen:
            raise PanbenchError(f"evaluator {n}: given twice; give each once, or set `name` to tell them apart")
        seen.add(n)


def fresh_copy(ev: Any) -> Any:
    """A copy of evaluator ``ev``, reset (a forked process's, a grid's other settings')."""
    if callable(fresh := getattr(ev, "fresh", None)):  # a built-in: built anew from its settings
        return fresh()
    try:
        twin = copy.deepcopy(ev)
    except Exception as e:  # noqa: BLE001 - the user's state
        raise PanbenchError(f"evaluator {name_of(ev)}: it does not copy ({type(e).__name__}: {e}); keep plain "
                            "values in its state") from None
    call(twin, "reset", "a copy")
    return twin


def load_evaluators(specs: Sequence[Any]) -> list[Any]:
    """The user's evaluators of ``specs`` (``--evaluator``, ``EvalOptions.evaluators``, ``evaluators=`` of the
    metrics and the integrations), each loaded and reset, their names checked: what cannot be is refused in one
    line (an :class:`~panbench.errors.InputError`)."""
    if isinstance(specs, str):  # one evaluator named alone
        specs = [specs]
    try:
        evaluators = [load_evaluator(s) for s in specs]
        check_names(evaluators)
    except InputError:
        raise
    except PanbenchError as e:
        raise InputError(str(e)) from None
    return evaluators


_METHODS = ("reset", "process", "add", "merge", "evaluate")


def load_evaluator(spec: str | type | Any) -> Any:
    """A user's evaluator, reset: ``module:Class`` (importable), ``path/to/file.py:Class``, a class, or an instance.
    A module or class that cannot be loaded, that lacks a method of the contract, or whose ``needs`` names
    something else, is refused in one line."""
    if isinstance(spec, str):
        where, _, cls_name = spec.rpartition(":")
        if not where or not cls_name:
            raise PanbenchError(f"--evaluator {spec}: give module:Class or path/to/file.py:Class")
        if (cls := getattr(_module(spec, where), cls_name, None)) is None:
            raise PanbenchError(f"--evaluator {spec}: {where} has no {cls_name}; name a class it defines")
        spec = cls
    label = spec if isinstance(spec, str) else getattr(spec, "__name__", type(spec).__name__)
    if isinstance(spec, type):
        try:
            ev = spec()
        except Exception as e:  # noqa: BLE001 - the user's code: its words, in one line
            raise PanbenchError(f"evaluator {label}: {label}() failed ({type(e).__name__}: {e}); it must build with "
                                "no arguments") from None
    else:
        ev = spec
    if lacking := [m for m in _METHODS if not callable(getattr(ev, m, None))]:
        raise PanbenchError(f"evaluator {name_of(ev)}: lacks {', '.join(lacking)}; an evaluator defines "
                            f"{', '.join(_METHODS)} (docs/api.md#your-own-evaluator)")
    needs_of(ev)
    call(ev, "reset", "loading")
    try:  # forked processes and ranks send it back (pickle): a class that does not pickle is refused now
        pickle.loads(pickle.dumps(ev))
    except Exception as e:  # noqa: BLE001
        raise PanbenchError(f"evaluator {name_of(ev)}: its state does not pickle ({type(e).__name__}: {e}); forked "
                            "processes and ranks send it: keep plain values in it, and define the class at the top "
                            "of a module (give path/to/file.py:Class)") from None
    return ev


def _module(spec: str, where: str) -> Any:
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise PanbenchError(f"--evaluator {spec}: {where} not found; give the path of a Python file")
        name = "panbench_user_evaluator_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]  # the same in every rank
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # its classes pickle by this name (forked processes, ranks)
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001
            del sys.modules[name]
            raise PanbenchError(f"--evaluator {spec}: {where} failed to import ({type(e).__name__}: {e}); fix the "
                                "file") from None
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:  # the `panbench` script: the current folder, as -m
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(where)
    except Exception as e:  # noqa: BLE001
        raise PanbenchError(f"--evaluator {spec}: module {where} cannot be imported ({type(e).__name__}: {e}); "
                            "check the name, or give path/to/file.py:Class") from None
