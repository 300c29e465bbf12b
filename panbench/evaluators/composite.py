""":class:`Evaluators`, the one composite of a run's evaluators (``eval``'s, ``score``'s, ``pq_compute``'s, the
Python API's): the members in order (PQ, the analyses, AP, the semantic confusion, the rules, the user's), none
privileged, each called through the contract's methods and those of the abilities it declares
(:mod:`panbench.evaluators.contract`), which are checked once, when the composite is built; each image goes to
every member (every share made first, then each added) and then to the observer (the resume cache), which is not a
member. A member's ``needs`` (panbench.evaluators.contract.NEEDS) say what the image must carry: the composite's
``needs`` tell the driver what to decode and convert. :meth:`~Evaluators.evaluate` gives one mapping, each key of
one member."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from panbench.analysis.ap import Instances
from panbench.errors import PanbenchError
from panbench.evaluators.builtin import AnalysesEvaluator, APEvaluator, PQEvaluator, RulesEvaluator, SemanticEvaluator
from panbench.evaluators.contract import (
    BuiltIn,
    HasInstances,
    HoldsPositions,
    ImageData,
    ProvidesColumns,
    ResultShare,
    TakesScored,
    UsesColumns,
    UsesSums,
    as_json,
    cache_key_of,
    call,
    check_composite,
    fresh_copy,
    name_of,
    needs_of,
    state_bytes,
)
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.result import ImageResult, reorder_columns


class Observer(Protocol):
    """What sees each image after the members took it (the resume cache, ``evaluation.storage.StatsCache``)."""

    def add(self, index: int, result: ImageResult, shares: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...


class CachedImages(Protocol):
    """What a resume reads back of an observer's images (``evaluation.storage.Cached``)."""

    @property
    def indices(self) -> Any: ...
    @property
    def columns(self) -> dict[str, np.ndarray]: ...
    @property
    def extras(self) -> list[Any]: ...

    def positions(self) -> dict[int, int]: ...


class Evaluators:
    """The members of one run (or of one process's share of it), as the module docstring says; ``strict`` and
    ``boundary`` as :func:`~panbench.pq.evaluator.score_pair`'s, ``observer`` (the resume cache) sees every image
    taken. What the members declare, read once here: ``needs`` (what an image must carry), ``keeps_columns`` (a
    member reads PQ's per-image columns: :class:`~panbench.evaluators.contract.UsesColumns`), ``takes_scored``
    (every member takes images scored in bulk: it :class:`~panbench.evaluators.contract.TakesScored`, or needs at
    most the segments) and ``rules`` (the rules whose state sums the scoring counts for them). ``first``: the index
    of the first image it takes (a caller that scores each image in a composite of its own numbers them on: the
    MMEngine metric); :meth:`part` numbers its images from 0 all the same."""

    def __init__(self, categories: CategoryTable, members: Sequence[Any], strict: bool = False,
                 boundary: bool = False, observer: Observer | None = None, first: int = 0) -> None:
        check_composite(members)
        self.categories, self.members, self.strict, self.boundary = categories, list(members), strict, boundary
        self.observer, self.first = observer, first
        self.needs = frozenset().union(*(needs_of(m) for m in self.members))
        self.keeps_columns = any(isinstance(m, UsesColumns) for m in self.members)
        self.takes_scored = all(isinstance(m, TakesScored) or needs_of(m) <= {"segments"} for m in self.members)
        scored = [m for m in self.members if isinstance(m, TakesScored)]
        self.rules = tuple(dict.fromkeys(r for m in scored for r in m.counted_rules))
        self._provider = next((m for m in self.members if isinstance(m, ProvidesColumns)), None)
        self._checked: set[int] = set()  # the user's evaluators whose process() was seen to leave the state alone

    @classmethod
    def for_run(cls, categories: CategoryTable, *, boundary: bool = False, strict: bool = False,
                observer: Observer | None = None, analyses: bool = True, ap: bool = False,
                ap_source: str | None = None, semantic: bool = True, own_threshold: float | None = None,
                diagnose: bool = False, rules: Sequence[str] = (), extra: Sequence[Any] = (),
                first: int = 0) -> Evaluators:
        """A run's members: PQ (per-image results kept for the analyses, the observer and a member of ``extra`` that
        :class:`~panbench.evaluators.contract.UsesColumns`), the analyses (with
        ``analyses``; ``own_threshold``: the model's own score threshold), AP (with ``ap``, of ``ap_source``'s
        instances), the semantic confusion (with ``semantic``), PQ under other implementations' ``rules``
        (:data:`panbench.pq.rules.RULES`), then the user's (``extra``, loaded); ``first`` as the class's."""
        keep = analyses or observer is not None or any(isinstance(m, UsesColumns) for m in extra)
        members: list[Any] = [PQEvaluator(categories, boundary, keep, diagnose),
                              *([AnalysesEvaluator(own_threshold)] if analyses else []),
                              *([APEvaluator(categories, ap_source)] if ap else []),
                              *([SemanticEvaluator(categories)] if semantic else []),
                              *([RulesEvaluator(categories, tuple(rules))] if rules else []), *extra]
        return cls(categories, members, strict, boundary, observer, first)

    def empty(self) -> Evaluators:
        """Members with nothing in them, scoring as these and writing to the same observer (a forked process's)."""
        return type(self)(self.categories, [fresh_copy(m) for m in self.members], self.strict, self.boundary,
                          self.observer, self.first)

    def score(self, index: int, gt_ids: np.ndarray, gt_segs: list, pred_ids: np.ndarray, pred_segs: list,
              where: str, image_id: Any = 0, instances: Instances | None = None,
              semantic: np.ndarray | None = None) -> ImageResult:
        """Score image ``index`` (COCO id ``image_id``) and hand it to every member (:meth:`take`).  Returns its
        result; bad input raises before any member changes."""
        result = score_pair(self.categories, gt_ids, gt_segs, pred_ids, pred_segs, where, self.strict, self.boundary)
        self.take(ImageData(index, image_id, self.categories, gt_ids, gt_segs, pred_ids, pred_segs, result, instances,
                            semantic), where)
        return result

    def take(self, image: ImageData, where: str) -> None:
        """Hand one scored image to every member: every share made first (an image one refuses changes none), then
        each added, then the image handed to the observer, which keeps the shares by ``name@version`` (the result
        itself as columns, not the share of a member whose share it is:
        :class:`~panbench.evaluators.contract.ResultShare`)."""
        shares = [_share(m, where, image, self._checked) for m in self.members]
        for m, s in zip(self.members, shares):
            call(m, "add", where, s)
        if self.observer is not None:
            assert image.result is not None
            self.observer.add(image.index, image.result, {cache_key_of(m): s for m, s in zip(self.members, shares)
                                                          if not isinstance(m, ResultShare)})

    def add_scored(self, scored: PanopticAccumulator, image_ids: Sequence[Any],
                   segments: Callable[[int], tuple[Sequence, Sequence]] | None = None) -> None:
        """Images scored in bulk (``score``'s batch path: ``scored`` holds their sums, their sums under
        :attr:`rules`' states and, where a member reads them, their per-image results; the Python API's sums alone)
        at positions ``0 .. len(image_ids) - 1``: members that take them so
        (:class:`~panbench.evaluators.contract.TakesScored`) get them at once, the others (whose ``needs`` are at
        most ``segments``) image by image, with ``segments(i)`` (the ground truth's and the prediction's segments of
        image ``i``). The observer sees none of them."""
        if not self.takes_scored:
            raise PanbenchError("internal: images scored in bulk handed to members that need each image; please "
                                "report")
        per_image = [m for m in self.members if not isinstance(m, TakesScored)]
        ids = dict(enumerate(image_ids))
        for m in self.members:
            if isinstance(m, TakesScored):
                call(m, "add_scored", "the images scored in bulk", scored, ids)
        for i, image_id in enumerate(image_ids if per_image else ()):
            gt_segs, pred_segs = segments(i) if segments is not None else (None, None)
            image = ImageData(i, image_id, self.categories, None, gt_segs, None, pred_segs, None)
            where = f"image {image_id}"
            shares = [_share(m, where, image, self._checked) for m in per_image]
            for m, s in zip(per_image, shares):
                call(m, "add", where, s)

    def resume(self, cached: CachedImages, indices: Iterable[int],
               rerun: Container[int]) -> tuple[frozenset[int], dict[str, int]]:
        """Take the images of ``indices`` that ``cached`` (the observer's, read back) holds, with a share of every
        member, and ``rerun`` lacks; returns them (need not run) and, for each member, how many cached images
        lacked its share (those run again)."""
        where = cached.positions()
        keyed = [(m, cache_key_of(m)) for m in self.members if not isinstance(m, ResultShare)]
        held = [i for i in indices if i in where and i not in rerun]
        missing = {k: sum(1 for i in held if k not in (cached.extras[where[i]] or {})) for _, k in keyed}
        if not (taken := [i for i in held if all(k in (cached.extras[where[i]] or {}) for _, k in keyed)]):
            return frozenset(), {k: n for k, n in missing.items() if n}
        pos = np.array([where[i] for i in taken], np.int64)
        for m in self.members:
            if isinstance(m, ResultShare):
                call(m, "add_results", "the resume cache", np.array(taken, np.int64),
                     reorder_columns(cached.columns, pos))
        for m, k in keyed:
            for p in pos.tolist():
                call(m, "add", f"the share of image {cached.indices[p]} in the resume cache (changed the share? "
                     "bump the evaluator's version, or --no-resume)", cached.extras[p][k])
        return frozenset(taken), {k: n for k, n in missing.items() if n}

    def part(self) -> list[Any]:
        """What the members hold, to cross to another process or rank (:meth:`reduce` takes it), their images at
        positions from 0: a member that :class:`~panbench.evaluators.contract.HoldsPositions` of a composite whose
        images are numbered from :attr:`first` is handed as a copy, its positions moved back by ``first``."""
        if not self.first:
            return list(self.members)
        return [_moved(m, -self.first) if isinstance(m, HoldsPositions) else m for m in self.members]

    def reduce(self, parts: Iterable[list[Any]], offset: int = 0) -> None:
        """Add the parts of the other processes or ranks (disjoint images), their positions moved on by ``offset``
        (the Python API's, which number images in the order they came; a run's are its dataset's indices): each
        member's ``merge``, or ``merge_at`` where it :class:`~panbench.evaluators.contract.HoldsPositions`. Members
        pair by ``name@version``; a member of a part that these lack adds nothing (a metric without the analyses
        merging one with them takes its sums), one these hold that a part lacks is refused."""
        for p in parts:
            by_key = {cache_key_of(t): t for t in p}
            if lacking := [cache_key_of(m) for m in self.members if cache_key_of(m) not in by_key]:
                raise PanbenchError(f"internal: the state of {', '.join(lacking)} is missing from another process's "
                                    "or rank's evaluators; please report")
            for mine in self.members:
                theirs = by_key[cache_key_of(mine)]
                if isinstance(mine, HoldsPositions):
                    call(mine, "merge_at", "another process's or rank's state", theirs, offset)
                else:
                    call(mine, "merge", "another process's or rank's state", theirs)

    def evaluate(self) -> dict[str, Any]:
        """The run's result, one mapping: the built-in members' fields (PQ's ``metrics`` and ``diagnosis``, the
        analyses', ``ap``, ``miou``, ``rules``, ...) and the user's under ``evaluators``, by name; a member that
        :class:`~panbench.evaluators.contract.UsesSums` is evaluated with the PQ state. Two members giving one key
        are refused in one line (detectron2's ``DatasetEvaluators``' check)."""
        out: dict[str, Any] = {}
        owners: dict[str, str] = {}
        user: dict[str, Any] = {}
        for m in self.members:
            if isinstance(m, UsesSums):
                got = call(m, "evaluate_with", "the run's images", self.columns())
            else:
                got = call(m, "evaluate", "the run's images")
            if isinstance(m, BuiltIn):
                _add_fields(out, owners, name_of(m), got)
            else:
                user[name_of(m)] = _user_fields(m, got)
        if user:
            _add_fields(out, owners, "the user's evaluators", {"evaluators": user})
        return out

    def instance_results(self) -> list[dict[str, Any]] | None:
        """The instances AP scored, as COCO's results JSON lists them (None without AP)."""
        return next((call(m, "instance_results", "the run's end") for m in self.members if isinstance(m, HasInstances)),
                    None)

    def columns(self) -> PanopticAccumulator:
        """The run's PQ sums and per-image columns, which the member that
        :class:`~panbench.evaluators.contract.ProvidesColumns` keeps (read them; images enter through :meth:`take`)."""
        if self._provider is None:
            raise PanbenchError("internal: no member keeps the PQ sums; please report")
        return self._provider.columns()


def _moved(m: Any, offset: int) -> Any:
    """A copy of member ``m`` (one that holds images by position) with its images' positions moved on by ``offset``."""
    twin = fresh_copy(m)
    call(twin, "merge_at", "its part", m, offset)
    return twin


def _share(m: Any, where: str, image: ImageData, checked: set[int]) -> Any:
    """``m.process(image)``; the user's share through JSON, as the cache gives it back (one that is not JSON:
    refused here), and an evaluator of the user's that changes its state there (detectron2's habit) refused at its
    first image (``checked``: the ids of those seen not to): a resume gives back only what ``add`` adds."""
    if isinstance(m, BuiltIn):  # panbench's own: its share unchecked
        return call(m, "process", where, image)
    if id(m) in checked:
        share = call(m, "process", where, image)
    else:
        before = state_bytes(m)
        share = call(m, "process", where, image)
        if state_bytes(m) != before:
            raise PanbenchError(f"evaluator {name_of(m)}: process() changed its state; return the image's share "
                                "from process() and add it in add() (a resume gives back only the shares)")
        checked.add(id(m))
    return as_json(m, share, "process() returned a share that is", "numbers, strings, lists and dicts")


def _user_fields(m: Any, got: Any) -> Any:
    """A user's evaluator's fields as the record keeps them: a dict, through JSON (refused in one line else)."""
    if not isinstance(got, dict):
        raise PanbenchError(f"evaluator {name_of(m)}: evaluate() returned {type(got).__name__}, not a dict of fields; "
                            "return {name: value}")
    return as_json(m, got, "evaluate() returned fields that are",
                   "numbers (None for one not defined), strings, lists and dicts")


def _add_fields(out: dict[str, Any], owners: dict[str, str], owner: str, fields: dict[str, Any]) -> None:
    """``fields`` of member ``owner`` into ``out``; a key another member gave already refused in one line naming
    both."""
    for key, value in fields.items():
        if key in owners:
            raise PanbenchError(f"evaluators {owners[key]} and {owner} both give {key!r}; give each of a run's "
                                "results a key of its own (rename one evaluator's field)")
        owners[key] = owner
        out[key] = value
