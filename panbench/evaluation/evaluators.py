"""The evaluator contract of a run, as detectron2's ``DatasetEvaluator``, with shares that add exactly (docs/api.md,
"Your own evaluator"), and :class:`RunEvaluators`, one run's list: PQ (:class:`PQEvaluator`, its shares cached as
columns), the analyses and the per-image export (:class:`AnalysesEvaluator`), AP, the semantic confusion, then the
user's (``--evaluator``, :func:`load_evaluator`); the runner, the cache, the forked processes, the ranks and the
record see only the list (docs/architecture.md)."""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import sys
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from panbench.analysis.ap import APAccumulator, Instances, ap_fields, gt_annotations
from panbench.analysis.ap_files import read_instances
from panbench.analysis.scoring import analyses_of
from panbench.analysis.semantic import SemanticConfusion, miou_fields
from panbench.errors import InputError, PanbenchError
from panbench.evaluation.storage import StatsCache
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.coco_format import GroundTruthJSON
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.result import ImageResult, reorder_columns


@dataclass(frozen=True)
class ImageData:
    """One scored image, as every evaluator reads it: its position in the dataset (``index``), COCO id, the
    dataset's categories, the ground truth and the prediction (id maps and segments), the prediction's PQ result,
    and the model's instances (with AP on) and semantic map (category ids), None when the run has none."""

    index: int
    image_id: Any
    categories: CategoryTable
    gt_ids: np.ndarray
    gt_segments: list[dict[str, Any]]
    pred_ids: np.ndarray
    pred_segments: list[dict[str, Any]]
    result: ImageResult
    instances: Instances | None = None
    semantic: np.ndarray | None = None


@runtime_checkable
class Evaluator(Protocol):
    """What an evaluator of a run does (module docstring); ``name`` and ``version`` are optional attributes."""

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


class APEvaluator:
    """COCO mask AP of the thing categories from the model's instances, which ``source`` (one of
    :data:`~panbench.analysis.ap.AP_SOURCES`) gave: the record's ``ap`` and ``ap_source``."""

    name, version = "AP", "1"

    def __init__(self, categories: CategoryTable, source: str | None = None) -> None:
        self.categories, self.source = categories, source
        self.reset()

    def reset(self) -> None:
        self.accumulator = APAccumulator.for_table(self.categories)

    def process(self, image: ImageData) -> dict[str, Any]:
        """The image's share, as the cache keeps it: COCO id, size, converted ground truth and predictions."""
        h, w = np.shape(image.gt_ids)[:2]
        # COCO's evaluation numbers images; a string id (Cityscapes, ADE20K) is its position, from 1
        coco_id = int(image.image_id) if isinstance(image.image_id, (int, np.integer)) else image.index + 1
        if coco_id in self.accumulator.images:
            raise PanbenchError(f"internal: image {coco_id} scored twice for AP; please report")
        inst = image.instances if image.instances is not None else Instances.empty()
        return {"image_id": coco_id, "size": [int(h), int(w)],
                "gt": gt_annotations(coco_id, image.gt_ids, image.gt_segments, self.accumulator.thing_ids),
                "dt": {"rles": inst.rles, "scores": inst.scores.tolist(), "category_ids": inst.category_ids.tolist()}}

    def add(self, share: dict[str, Any]) -> None:
        dt, (h, w) = share["dt"], share["size"]
        self.accumulator.add(int(share["image_id"]), (int(h), int(w)), share["gt"],
                             Instances(dt["rles"], dt["scores"], dt["category_ids"]))

    def merge(self, other: APEvaluator) -> None:
        self.accumulator = self.accumulator + other.accumulator

    def evaluate(self) -> dict[str, Any]:
        return ap_fields(self.accumulator, self.source) if self.source is not None else {}


class SemanticEvaluator:
    """The pixel confusion of the model's semantic output (an image without one adds nothing): the record's mIoU."""

    name, version = "SemanticConfusion", "1"

    def __init__(self, categories: CategoryTable) -> None:
        self.categories = categories
        self.reset()

    def reset(self) -> None:
        self.confusion = SemanticConfusion([int(c) for c in self.categories.ids])

    def process(self, image: ImageData) -> dict[str, list[int]] | None:
        """The image's confusion, sparse: the flat cells of the (C + 1) x (C + 1) matrix and their pixels."""
        if image.semantic is None:
            return None
        one = SemanticConfusion(self.confusion.category_ids)
        one.add_image(image.gt_ids, image.gt_segments, image.semantic)
        flat = one.conf.ravel()
        cells = np.flatnonzero(flat)
        return {"idx": cells.tolist(), "n": flat[cells].tolist()}

    def add(self, share: dict[str, list[int]] | None) -> None:
        if share is not None:
            np.add.at(self.confusion.conf.reshape(-1), np.asarray(share["idx"], np.int64),
                      np.asarray(share["n"], np.int64))
            self.confusion.n_images += 1

    def merge(self, other: SemanticEvaluator) -> None:
        self.confusion = self.confusion + other.confusion

    def evaluate(self) -> dict[str, Any]:
        """The record's ``miou`` and ``miou_source`` of the model's semantic output; none without one (the run
        then reads the panoptic output's, :meth:`RunEvaluators.evaluate`)."""
        return miou_fields({}, self.confusion) if self.confusion.n_images else {}


class PQEvaluator:
    """PQ (with boundary PQ's part where ``boundary``) in a :class:`~panbench.pq.accumulator.PanopticAccumulator`;
    a share is ``(position, result)``, or many images' columns with their positions (a resume)."""

    name, version = "PQ", "1"

    def __init__(self, categories: CategoryTable, boundary: bool = False, keep_images: bool = True) -> None:
        self.categories, self.boundary, self.keep_images = categories, boundary, keep_images
        self.reset()

    def reset(self) -> None:
        self.accumulator = PanopticAccumulator(self.categories, self.keep_images, self.boundary)

    def process(self, image: ImageData) -> tuple[int, ImageResult]:
        return image.index, image.result

    def add(self, share: tuple[int | np.ndarray, Any]) -> None:
        at, images = share
        self.accumulator.add(images, at)

    def merge(self, other: PQEvaluator) -> None:
        self.accumulator.merge(other.accumulator)

    def evaluate(self) -> dict[str, Any]:
        return self.accumulator.evaluate()


class AnalysesEvaluator:
    """The analyses and the per-image export (``analysis``, the :class:`~panbench.analysis.AnalysisSet` saved beside
    the record) of ``pq``'s per-image results (:func:`~panbench.analysis.scoring.analyses_of`; ``own_threshold``: the
    model's own score threshold); its own state is each image's COCO id by position, a share
    ``[position, image_id]``."""

    name, version = "Analyses", "1"

    def __init__(self, pq: PQEvaluator, own_threshold: float | None = None) -> None:
        self.pq, self.own_threshold = pq, own_threshold
        self.reset()

    def reset(self) -> None:
        self.image_ids: dict[int, Any] = {}

    def process(self, image: ImageData) -> list[Any]:
        image_id = image.image_id.item() if isinstance(image.image_id, np.generic) else image.image_id
        return [int(image.index), image_id]

    def add(self, share: list[Any]) -> None:
        self.image_ids[int(share[0])] = share[1]

    def merge(self, other: AnalysesEvaluator) -> None:
        self.image_ids.update(other.image_ids)

    def evaluate(self) -> dict[str, Any]:
        if (n := len(self.image_ids)) and max(self.image_ids) != n - 1:
            raise PanbenchError(f"internal: the analyses hold {n} images, the last at position {max(self.image_ids)}; "
                                "please report")
        aset, fields = analyses_of(self.pq.accumulator, [self.image_ids[i] for i in range(n)],
                                   own_threshold=self.own_threshold)
        return {"analysis": aset, **fields}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "pq"}  # PQ's results cross as PQ's state


BUILT_IN_EVALUATORS = ("PQ", AnalysesEvaluator.name, APEvaluator.name, SemanticEvaluator.name)  # not for the user's
_BUILT_IN = (AnalysesEvaluator, APEvaluator, SemanticEvaluator)  # their shares are JSON as made


def _state(ev: Any) -> bytes | None:
    """An evaluator's state as bytes, to tell whether a call changed it (None where it does not pickle)."""
    try:
        return pickle.dumps(ev, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - refused when it is loaded
        return None


class RunEvaluators:
    """The evaluators of one run (or of one process's share), as the module docstring lists them; with ``cache``, each
    image is written through to the resume cache (:class:`~panbench.evaluation.storage.StatsCache`), which
    :meth:`resume` takes images back from."""

    def __init__(self, categories: CategoryTable, boundary: bool = False, strict: bool = False,
                 cache: StatsCache | None = None, ap: bool = False, extra: Sequence[Any] = (),
                 ap_source: str | None = None, analyses: bool = True, own_threshold: float | None = None) -> None:
        self.categories, self.boundary, self.strict, self.cache = categories, boundary, strict, cache
        self.own_threshold = own_threshold
        self.pq = PQEvaluator(categories, boundary, keep_images=analyses or cache is not None)
        self.ap = APEvaluator(categories, ap_source) if ap else None
        self.extra = list(extra)
        check_names(self.extra)
        self.members: list[Any] = [*([AnalysesEvaluator(self.pq, own_threshold)] if analyses else []),
                                   *([self.ap] if self.ap is not None else []), SemanticEvaluator(categories),
                                   *self.extra]  # every evaluator but PQ, in order
        self._checked: set[int] = set()  # the user's evaluators whose process() was seen to leave the state alone

    def empty(self) -> RunEvaluators:
        """Evaluators with nothing in them, scoring as these and writing to the same cache (a forked process's)."""
        extra = [fresh_copy(ev) for ev in self.extra]
        return RunEvaluators(self.categories, self.boundary, self.strict, self.cache, self.ap is not None, extra,
                             self.ap.source if self.ap is not None else None,
                             any(isinstance(ev, AnalysesEvaluator) for ev in self.members), self.own_threshold)

    def score(self, index: int, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
              where: str, image_id: Any = 0, instances: Instances | None = None,
              semantic: np.ndarray | None = None) -> ImageResult:
        """Score image ``index`` (COCO id ``image_id``) and hand it to every evaluator (:meth:`take`).  Returns its
        result; bad input raises before any evaluator changes."""
        result = score_pair(self.categories, gt_ids, gt_segs, pred_ids, pred_segs, where, self.strict, self.boundary)
        self.take(ImageData(index, image_id, self.categories, gt_ids, gt_segs, pred_ids, pred_segs, result, instances,
                            semantic), where)
        return result

    def take(self, image: ImageData, where: str) -> None:
        """Hand one scored image to every evaluator: every share made first (an image one refuses changes none),
        then each added, then the image written through to the cache."""
        members = self.members
        shares = [self._process(ev, where, image) for ev in members]
        # the user's through JSON, as the cache gives them back (a share that is not JSON: refused here)
        encoded = [s if isinstance(ev, _BUILT_IN) else _json(ev, s, "process() returned a share that is",
                                                               "numbers, strings, lists and dicts")
                   for ev, s in zip(members, shares)]
        self.pq.add(self.pq.process(image))
        for ev, e in zip(members, encoded):
            _call(ev, "add", where, e)
        if self.cache is not None:
            self.cache.add(image.index, image.result, {cache_key_of(ev): e for ev, e in zip(members, encoded)})

    def _process(self, ev: Any, where: str, image: ImageData) -> Any:
        """``ev.process(image)``; an evaluator of the user's that changes its state there (detectron2's habit) is
        refused at its first image: a resume gives back only what :meth:`add` adds."""
        if isinstance(ev, _BUILT_IN) or id(ev) in self._checked:
            return _call(ev, "process", where, image)
        before = _state(ev)
        share = _call(ev, "process", where, image)
        if _state(ev) != before:
            raise PanbenchError(f"evaluator {name_of(ev)}: process() changed its state; return the image's share "
                                "from process() and add it in add() (a resume gives back only the shares)")
        self._checked.add(id(ev))
        return share

    def resume(self, indices: Iterable[int], rerun: Container[int]) -> tuple[frozenset[int], dict[str, int]]:
        """Take the images of ``indices`` that the cache holds, with a share of every evaluator, and ``rerun``
        lacks; returns them (need not run) and, for each evaluator, how many cached images lacked its share
        (those run again)."""
        if self.cache is None:
            return frozenset(), {}
        cached = self.cache.load()
        where = cached.positions()
        keys = [cache_key_of(ev) for ev in self.members]
        held = [i for i in indices if i in where and i not in rerun]
        missing = {k: sum(1 for i in held if k not in (cached.extras[where[i]] or {})) for k in keys}
        if not (taken := [i for i in held if all(k in (cached.extras[where[i]] or {}) for k in keys)]):
            return frozenset(), {k: n for k, n in missing.items() if n}
        pos = np.array([where[i] for i in taken], np.int64)
        self.pq.add((np.array(taken, np.int64), reorder_columns(cached.columns, pos)))
        for ev, k in zip(self.members, keys):
            for p in pos.tolist():
                j = cached.extras[p][k]
                _call(ev, "add", f"the share of image {cached.indices[p]} in the resume cache (changed the share? "
                      "bump the evaluator's version, or --no-resume)", j)
        return frozenset(taken), {k: n for k, n in missing.items() if n}

    def flush(self) -> None:
        if self.cache is not None:
            self.cache.flush()

    def part(self) -> list[Any]:
        """What these evaluators hold, to cross to another process or rank (:meth:`reduce` takes it)."""
        return [self.pq, *self.members]

    def reduce(self, parts: Iterable[list[Any]]) -> None:
        """Add the parts of the other processes or ranks (disjoint images)."""
        for p in parts:
            for mine, theirs in zip([self.pq, *self.members], p):
                _call(mine, "merge", "another process's or rank's state", theirs)

    def evaluate(self, diagnose: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """PQ's metrics (:meth:`PQEvaluator.evaluate`) and the record fields of the others (the analyses', AP's, mIoU's,
        the user's ``evaluators``) and, with ``diagnose``, the ``diagnosis`` findings PQ's sums show."""
        res = self.pq.evaluate()
        out: dict[str, Any] = miou_fields(res)
        for ev in self.members:
            if isinstance(ev, _BUILT_IN):
                out.update(ev.evaluate())
        if (fields := self.fields()) is not None:
            out["evaluators"] = fields
        if diagnose and (found := self.pq.accumulator.diagnosis()):
            out["diagnosis"] = found
        return res, out

    def fields(self) -> dict[str, dict[str, Any]] | None:
        """The user's evaluators' fields by name (the record's ``evaluators``), None without any."""
        if not self.extra:
            return None
        out = {}
        for ev in self.extra:
            got = _call(ev, "evaluate", "the run's images")
            if not isinstance(got, dict):
                raise PanbenchError(f"evaluator {name_of(ev)}: evaluate() returned {type(got).__name__}, not a dict "
                                    "of fields; return {name: value}")
            out[name_of(ev)] = _json(ev, got, "evaluate() returned fields that are",
                                     "numbers (None for one not defined), strings, lists and dicts")
        return out


def fresh_copy(ev: Any) -> Any:
    """A copy of the user's evaluator ``ev``, reset (a forked process's, a grid's other settings')."""
    try:
        twin = copy.deepcopy(ev)
    except Exception as e:  # noqa: BLE001 - the user's state
        raise PanbenchError(f"evaluator {name_of(ev)}: it does not copy ({type(e).__name__}: {e}); keep plain "
                            "values in its state") from None
    _call(twin, "reset", "a copy")
    return twin


def _call(ev: Any, method: str, where: str, *args: Any) -> Any:
    """``ev.method(*args)``; an exception of an evaluator of the user's (not panbench's own) becomes one line naming
    the evaluator, the method and the image (the traceback under ``--debug``)."""
    try:
        return getattr(ev, method)(*args)
    except PanbenchError:
        raise
    except Exception as e:
        if type(ev).__module__.startswith("panbench."):
            raise
        raise PanbenchError(f"evaluator {name_of(ev)}: {method}() failed on {where} ({type(e).__name__}: {e}); fix "
                            "the evaluator (--debug shows where)") from e


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON")


def _json(ev: Any, value: Any, what: str, kinds: str) -> Any:
    """``value`` through JSON; refused in one line naming the evaluator where it is not JSON."""
    try:
        return json.loads(json.dumps(value, default=_plain, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise PanbenchError(f"evaluator {name_of(ev)}: {what} not JSON ({e}); return {kinds}") from None


def check_names(evaluators: Sequence[Any]) -> None:
    """Refuse two evaluators of one name, or one named as a built-in."""
    seen: set[str] = set()
    for ev in evaluators:
        n = name_of(ev)
        if n in BUILT_IN_EVALUATORS:
            raise PanbenchError(f"evaluator {n}: the name of a built-in evaluator; set the class's `name` to another")
        if n in seen:
            raise PanbenchError(f"evaluator {n}: given twice; give each once, or set `name` to tell them apart")
        seen.add(n)


def load_evaluators(specs: Sequence[Any]) -> list[Any]:
    """The user's evaluators of ``specs`` (``--evaluator``, ``EvalOptions.evaluators``), each loaded and reset, their
    names checked: what cannot be is refused in one line."""
    evaluators = [load_evaluator(s) for s in specs]
    check_names(evaluators)
    return evaluators


_METHODS = ("reset", "process", "add", "merge", "evaluate")


def load_evaluator(spec: str | type | Any) -> Any:
    """A user's evaluator, reset: ``module:Class`` (importable), ``path/to/file.py:Class``, a class, or an instance.
    A module or class that cannot be loaded, or that lacks a method of the contract, is refused in one line."""
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
    _call(ev, "reset", "loading")
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


class ScoredFiles:
    """``score --instances`` and ``--evaluator``: AP of a COCO instance results JSON and the user's evaluators, fed
    by the scoring's one decode of each PNG (:meth:`each`, :class:`~panbench.pq.score.Scoring`'s ``each``), without
    a semantic map; an image's maps are valid while it is processed (an evaluator keeping one copies it)."""

    def __init__(self, specs: Sequence[Any], truth: GroundTruthJSON, instances: str | Path | None = None,
                 strict: bool = False, boundary: bool = False) -> None:
        self.instances_json = instances
        self.instances = None if instances is None else read_instances(instances, set(truth.annotations))
        self.evaluators = RunEvaluators(truth.categories, boundary, strict, ap=instances is not None,
                                        extra=[load_evaluator(s) for s in specs], ap_source="instances JSON",
                                        analyses=False)

    def each(self, pair: tuple[dict[str, Any], dict[str, Any]], read: tuple[np.ndarray, list, np.ndarray, list, str],
             result: ImageResult) -> None:
        gt_ids, gt_segs, pred_ids, pred_segs, where = read
        image_id, inst = pair[0]["image_id"], None
        if self.instances is not None:
            inst = self.instances.get(image_id, Instances.empty())
            if wrong := {tuple(r["size"]) for r in inst.rles} - {gt_ids.shape}:
                raise InputError(f"{self.instances_json}: image {image_id} has masks of size {sorted(wrong)[0]} "
                                 f"(height, width); the ground truth is {gt_ids.shape}: give masks at the image's "
                                 "full size")
        index = self.evaluators.pq.accumulator.n_images
        self.evaluators.take(ImageData(index, image_id, self.evaluators.categories, gt_ids, gt_segs, pred_ids,
                                       pred_segs, result, inst), where)

    def fields(self) -> dict[str, Any]:
        """The record's ``ap`` and ``ap_source`` (with instances) and ``evaluators`` (with the user's)."""
        ap, user = self.evaluators.ap, self.evaluators.fields()
        return {**(ap.evaluate() if ap is not None else {}), **({"evaluators": user} if user is not None else {})}
