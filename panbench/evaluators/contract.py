"""The evaluator contract (docs/api.md, "Your own evaluator"): detectron2's ``DatasetEvaluator`` with a per-image
share that adds exactly (reset / process / add / merge / evaluate), what a member declares it needs of an image
(:data:`NEEDS`), the optional abilities a member declares by subclassing (or ``register``-ing with) their base
classes, each with methods of its own (:data:`ABILITIES`: :class:`BuiltIn`, :class:`TakesScored`,
:class:`HoldsPositions`, :class:`ProvidesColumns`, :class:`UsesSums`, :class:`UsesColumns`, :class:`ResultShare`,
:class:`HasInstances`), checked once when the composite is built, and the loading, naming and checking of the
user's evaluators."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from panbench.analysis.ap import Instances
from panbench.errors import InputError, PanbenchError
from panbench.pq.accumulator import PanopticAccumulator
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


class Ability(ABC):  # noqa: B024 - the abilities' common base: each below declares its methods
    """An optional ability of an evaluator: a member declares it by subclassing its class (or by the class's
    ``register``), and the composite calls its methods; a member that declares one without its methods is refused
    when the composite is built (:func:`abilities_of`)."""

    #: how the ability's methods are called, for the one line that refuses a member lacking them
    signature: ClassVar[str] = ""


class BuiltIn(Ability):
    """One of panbench's own members: built anew from its settings (:meth:`fresh`: a forked process's, a grid's
    other setting's copy), its calls not guarded as a user's are (its shares are not checked as JSON), its fields
    the result's own keys (a user's go under ``evaluators``, by name), and it may take a built-in's name."""

    signature = "fresh()"

    @abstractmethod
    def fresh(self) -> BuiltIn:
        """A member of these settings, empty."""


class TakesScored(Ability):
    """Takes images scored in bulk at once (``score``'s C batch path, with no image data): their sums and, where
    kept, per-image columns in a :class:`~panbench.pq.accumulator.PanopticAccumulator` at positions
    ``0 .. len(image_ids) - 1``, with the sums under ``counted_rules``' quirk states that the scoring counts for it
    (``rule_states``)."""

    signature = "add_scored(scored, image_ids)"
    #: the rules whose state sums it reads from the scored images (the scoring counts them from each image's table)
    counted_rules: tuple[str, ...] = ()

    @abstractmethod
    def add_scored(self, scored: PanopticAccumulator, image_ids: Mapping[int, Any]) -> None:
        """Add the images of ``scored`` (``image_ids``: each position's COCO id)."""


class HoldsPositions(Ability):
    """Holds images by their position: the composite merges another process's or rank's state into it with
    :meth:`merge_at`, their positions moved on by ``offset`` (the Python API's, which number images in the order they
    came), never with ``merge``."""

    signature = "merge_at(other, offset)"

    @abstractmethod
    def merge_at(self, other: Any, offset: int) -> None:
        """Add ``other``'s images (of the same evaluator, disjoint), their positions moved on by ``offset``."""


class ProvidesColumns(Ability):
    """Keeps the run's PQ sums and, where a member :class:`UsesColumns`, its per-image columns (PQ): one member of a
    composite at most."""

    signature = "columns()"

    @abstractmethod
    def columns(self) -> PanopticAccumulator:
        """The run's PQ sums and per-image columns (read them; images enter through the contract)."""


class UsesSums(Ability):
    """Reads PQ's sums at the end: evaluated by :meth:`evaluate_with` with what the :class:`ProvidesColumns` member
    keeps, in place of ``evaluate``."""

    signature = "evaluate_with(pq)"

    @abstractmethod
    def evaluate_with(self, pq: PanopticAccumulator) -> dict[str, Any]:
        """Its fields, given the run's PQ state ``pq``."""

    def evaluate(self) -> dict[str, Any]:
        raise PanbenchError(f"internal: {name_of(self)} reads PQ's sums: call evaluate_with(pq); please report")


class UsesColumns(UsesSums):
    """Reads PQ's per-image columns too (the analyses): the :class:`ProvidesColumns` member keeps them."""


class ResultShare(Ability):
    """Its share is the image's PQ result, which the observer (the resume cache) keeps as columns, not as a share: a
    resume hands the cached images' columns back through :meth:`add_results`."""

    signature = "add_results(positions, columns)"

    @abstractmethod
    def add_results(self, positions: Any, columns: dict[str, Any]) -> None:
        """Add cached images' results: their positions and their columns (:mod:`panbench.pq.result`)."""


class HasInstances(Ability):
    """Scores the model's instances (AP): :meth:`instance_results` lists them, as COCO's results JSON."""

    signature = "instance_results()"

    @abstractmethod
    def instance_results(self) -> list[dict[str, Any]]:
        """The instances scored, as COCO's results JSON lists them."""


#: every ability, in the order a refusal names them (the narrower first)
ABILITIES: tuple[type[Ability], ...] = (BuiltIn, TakesScored, HoldsPositions, ProvidesColumns, UsesColumns, UsesSums,
                                        ResultShare, HasInstances)


def abilities_of(ev: Any) -> tuple[type[Ability], ...]:
    """The abilities ``ev`` declares; one declared without its methods (a class ``register``-ed with an ability, or
    one of them set to something else) is refused in one line."""
    declared = tuple(a for a in ABILITIES if isinstance(ev, a))
    for a in declared:
        _refuse_lacking(name_of(ev), a, sorted(n for n in a.__abstractmethods__ if not callable(getattr(ev, n, None))))
    return declared


def _refuse_lacking(name: str, ability: type[Ability], lacking: list[str]) -> None:
    if lacking:
        raise PanbenchError(f"evaluator {name}: declares {ability.__name__} but lacks {', '.join(lacking)}; define "
                            f"{ability.signature} or leave out {ability.__name__} (docs/api.md#your-own-evaluator)")


def check_composite(members: Sequence[Any]) -> None:
    """Refuse in one line what the members of one composite cannot be: two of one name or one of the user's named as
    a built-in (:func:`check_names`), an ability declared without its methods (:func:`abilities_of`), two members
    that keep PQ's columns, one that reads them where none keeps them, or two that take scored images under
    different rules (the scoring counts one set of rules)."""
    check_names(members)
    for m in members:
        abilities_of(m)
    providers = [name_of(m) for m in members if isinstance(m, ProvidesColumns)]
    if len(providers) > 1:
        raise PanbenchError(f"evaluators {providers[0]} and {providers[1]} both declare ProvidesColumns; one member "
                            "keeps PQ's columns (leave it out of the other)")
    if not providers and (readers := [name_of(m) for m in members if isinstance(m, UsesSums)]):
        raise PanbenchError(f"evaluator {readers[0]}: declares UsesSums but no member provides PQ's columns; run it "
                            "beside PQ, or leave out UsesSums")
    counting = [(name_of(m), tuple(m.counted_rules)) for m in members if isinstance(m, TakesScored) and m.counted_rules]
    if len({rules for _, rules in counting}) > 1:
        (a, ra), (b, rb) = counting[0], next(c for c in counting if c[1] != counting[0][1])
        raise PanbenchError(f"evaluators {a} and {b} take scored images under different rules ({', '.join(ra)} and "
                            f"{', '.join(rb)}); give them the same counted_rules (the scoring counts one set)")


def name_of(ev: Any) -> str:
    """An evaluator's name: its ``name`` attribute, else its class's."""
    return str(getattr(ev, "name", None) or type(ev).__name__)


def check_evaluator_name(ev: Any) -> None:
    """Refuse in one line an evaluator whose ``name`` is set to something other than a string, or to an empty one
    (the record's key); an evaluator without the attribute takes its class's name."""
    if not hasattr(ev, "name"):
        return
    name = ev.name
    said = "is not a string" if not isinstance(name, str) else "is empty" if not name.strip() else None
    if said is not None:
        raise PanbenchError(f"evaluator {type(ev).__name__}: name = {_short(repr(name))} {said}; set `name` to a "
                            "string (the key of its fields in the record), or leave it out for the class's name")


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[:most - 3] + "..."


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
        check_evaluator_name(ev)
        n = name_of(ev)
        if n in BUILT_IN_NAMES and not isinstance(ev, BuiltIn):
            raise PanbenchError(f"evaluator {n}: the name of a built-in evaluator; set the class's `name` to another")
        if n in seen:
            raise PanbenchError(f"evaluator {n}: given twice; give each once, or set `name` to tell them apart")
        seen.add(n)


def fresh_copy(ev: Any) -> Any:
    """A copy of evaluator ``ev``, reset (a forked process's, a grid's other settings')."""
    if isinstance(ev, BuiltIn):  # built anew from its settings
        return ev.fresh()
    try:
        twin = copy.deepcopy(ev)
    except Exception as e:  # noqa: BLE001 - the user's state
        raise PanbenchError(f"evaluator {name_of(ev)}: it does not copy ({type(e).__name__}: {e}); keep plain "
                            "values in its state") from None
    call(twin, "reset", "a copy")
    return twin


def load_evaluators(specs: Sequence[Any] | Iterable[Any] | str | None) -> list[Any]:
    """The user's evaluators of ``specs`` (``--evaluator``, ``EvalOptions.evaluators``, ``evaluators=`` of the
    metrics and the integrations: a list, a tuple or another iterable of them, one named alone as a string, None for
    none), each loaded and reset, their names checked: what cannot be is refused in one line (an
    :class:`~panbench.errors.InputError`)."""
    try:
        evaluators = [load_evaluator(s) for s in _spec_list(specs)]
        check_names(evaluators)
    except InputError:
        raise
    except PanbenchError as e:
        raise InputError(str(e)) from None
    return evaluators


def _spec_list(specs: Any) -> list[Any]:
    """The evaluators ``specs`` gives, as a list; a class, an evaluator or a mapping given where the list goes, or an
    item that is None, refused in one line."""
    if specs is None:
        return []
    if isinstance(specs, str):  # one evaluator named alone
        return [specs]
    if isinstance(specs, type):
        name = specs.__name__
        raise PanbenchError(f"evaluators={name}: a class, not a list of evaluators; pass an instance in a list: "
                            f"evaluators=[{name}()]")
    if callable(getattr(specs, "process", None)):
        raise PanbenchError(f"evaluators={type(specs).__name__}(...): one evaluator, not a list of evaluators; pass "
                            "it in a list: evaluators=[evaluator]")
    if isinstance(specs, Mapping) or not isinstance(specs, Iterable):
        raise PanbenchError(f"evaluators={_short(repr(specs))}: {type(specs).__name__}, not a list of evaluators; "
                            "pass a list: evaluators=[MyEvaluator()] (each named by its `name`)")
    out = list(specs)
    if (k := next((k for k, s in enumerate(out) if s is None), None)) is not None:
        raise PanbenchError(f"evaluators[{k}] is None; give each evaluator as an instance, a class, module:Class or "
                            "path/to/file.py:Class, and leave out the ones not to run")
    return out


_METHODS = ("reset", "process", "add", "merge", "evaluate")


def load_evaluator(spec: str | type | Any) -> Any:
    """A user's evaluator, reset: ``module:Class`` (importable), ``path/to/file.py:Class``, a class, or an instance.
    A module or class that cannot be loaded, that lacks a method of the contract or of an ability it declares, or
    whose ``needs`` names something else, is refused in one line."""
    if isinstance(spec, str):
        where, _, cls_name = spec.rpartition(":")
        if not where or not cls_name:
            raise PanbenchError(f"evaluator {spec!r}: give module:Class or path/to/file.py:Class")
        if (cls := getattr(_module(spec, where), cls_name, None)) is None:
            raise PanbenchError(f"evaluator {spec!r}: {where} has no {cls_name}; name a class it defines")
        spec = cls
    label = spec if isinstance(spec, str) else getattr(spec, "__name__", type(spec).__name__)
    if isinstance(spec, type) and inspect.isabstract(spec):  # an ability's method not defined: it cannot be built
        for a in ABILITIES:
            if issubclass(spec, a):
                _refuse_lacking(label, a, sorted(set(a.__abstractmethods__) & spec.__abstractmethods__))
    if isinstance(spec, type):
        try:
            ev = spec()
        except SystemExit as e:
            raise PanbenchError(f"evaluator {label}: {label}() called sys.exit({e.code!r}); it must build with no "
                                "arguments, and raise where it cannot") from None
        except Exception as e:  # noqa: BLE001 - the user's code: its words, in one line
            raise PanbenchError(f"evaluator {label}: {label}() failed ({type(e).__name__}: {e}); it must build with "
                                "no arguments") from None
    else:
        ev = spec
    check_evaluator_name(ev)
    if lacking := [m for m in _METHODS if not callable(getattr(ev, m, None))]:
        raise PanbenchError(f"evaluator {name_of(ev)}: lacks {', '.join(lacking)}; an evaluator defines "
                            f"{', '.join(_METHODS)} (docs/api.md#your-own-evaluator)")
    needs_of(ev)
    abilities_of(ev)
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
            raise PanbenchError(f"evaluator {spec!r}: {where} not found; give the path of a Python file")
        name = "panbench_user_evaluator_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]  # the same in every rank
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # its classes pickle by this name (forked processes, ranks)
        try:
            module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - not KeyboardInterrupt: Ctrl-C stops panbench
            del sys.modules[name]
            raise _import_error(spec, where, e, "failed to import", "fix the file") from None
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:  # the `panbench` script: the current folder, as -m
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(where)
    except (Exception, SystemExit) as e:  # noqa: BLE001
        raise _import_error(spec, f"module {where}", e, "cannot be imported",
                            "check the name, or give path/to/file.py:Class") from None


def _import_error(spec: str, what: str, e: BaseException, fails: str, fix: str) -> PanbenchError:
    """The one line of a user's evaluator module that failed to import, or called ``sys.exit`` as it was imported
    (a script's ``if __name__ == "__main__"`` guard left out, an argument parser run at its top)."""
    if isinstance(e, SystemExit):
        return PanbenchError(f"evaluator {spec!r}: {what} called sys.exit({e.code!r}) while it was imported; keep "
                             "what runs as a script under `if __name__ == \"__main__\":`, so that importing it only "
                             "defines the class")
    return PanbenchError(f"evaluator {spec!r}: {what} {fails} ({type(e).__name__}: {e}); {fix}")
