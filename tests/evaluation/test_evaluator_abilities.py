"""The evaluator contract's optional abilities (panbench.evaluators.contract): a member declares one by subclassing
its class (or by its ``register``), the composite checks it once when it is built and calls its methods, a user's
member as a built-in; a member that declares an ability without its methods, two members that keep PQ's columns,
one that reads them where none keeps them, two that take scored images under different rules, and two members giving
one key of the result are refused in one line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from panbench.errors import PanbenchError
from panbench.evaluators import Evaluators
from panbench.evaluators.contract import (
    BuiltIn,
    ProvidesColumns,
    TakesScored,
    UsesColumns,
    load_evaluator,
    load_evaluators,
)
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.matching import CategoryTable

CATS = CategoryTable([1, 2], ["a", "b"], [True, False])


class Plain:
    """The five methods of the contract, counting images."""

    def reset(self) -> None:
        self.images = 0

    def process(self, image: Any) -> int:
        return 1

    def add(self, share: int) -> None:
        self.images += share

    def merge(self, other: Any) -> None:
        self.images += other.images

    def evaluate(self) -> dict[str, Any]:
        return {"images": self.images}


class Registered(Plain):
    """Registered with TakesScored below, without its add_scored."""


TakesScored.register(Registered)


class Bulk(Plain, TakesScored):
    """A user's member that takes images scored in bulk, needing everything of an image otherwise."""

    def add_scored(self, scored: PanopticAccumulator, image_ids: Mapping[int, Any]) -> None:
        self.images += len(image_ids)


class Lacking(Plain, UsesColumns):
    """Declares UsesColumns and defines no evaluate_with: the class cannot be built."""


class Reader(Plain, UsesColumns):
    """Reads PQ's per-image columns at the end, and the segments of an image."""

    needs = frozenset({"segments"})

    def evaluate_with(self, pq: PanopticAccumulator) -> dict[str, Any]:
        return {"pq_images": pq.n_images, "kept": pq.n_kept()}


class Keeper(Plain, ProvidesColumns):
    def columns(self) -> PanopticAccumulator:
        return PanopticAccumulator(CATS)


class Shadow(Plain, BuiltIn):
    """A built-in's kind of member (its fields the result's own keys) that gives PQ's key."""

    name = "Shadow"

    def fresh(self) -> Shadow:
        return Shadow()

    def evaluate(self) -> dict[str, Any]:
        return {"metrics": {"PQ": 100.0}}


def _built(*members: Any) -> Evaluators:
    for m in members:
        m.reset()
    return Evaluators.for_run(CATS, analyses=False, semantic=False, extra=list(members))


def _one_line(e: pytest.ExceptionInfo[PanbenchError]) -> str:
    assert len(str(e.value).splitlines()) == 1, str(e.value)
    return str(e.value)


def test_a_member_declaring_an_ability_without_its_method_is_refused_when_the_composite_is_built() -> None:
    with pytest.raises(PanbenchError) as e:
        _built(Registered())
    assert _one_line(e) == ("evaluator Registered: declares TakesScored but lacks add_scored; define "
                            "add_scored(scored, image_ids) or leave out TakesScored "
                            "(docs/api.md#your-own-evaluator)")


def test_a_class_declaring_an_ability_without_its_method_is_refused_in_one_line_when_loaded() -> None:
    with pytest.raises(PanbenchError) as e:
        load_evaluator(Lacking)
    assert _one_line(e).startswith("evaluator Lacking: declares UsesColumns but lacks evaluate_with; define "
                                   "evaluate_with(pq) or leave out UsesColumns")


def test_two_members_giving_one_key_of_the_result_are_refused_naming_both_and_the_key() -> None:
    evaluators = _built(Shadow())
    with pytest.raises(PanbenchError) as e:
        evaluators.evaluate()
    assert _one_line(e).startswith("evaluators PQ and Shadow both give 'metrics'; give each of a run's results a key")


def test_a_second_keeper_of_pq_s_columns_is_refused_and_a_reader_needs_one() -> None:
    with pytest.raises(PanbenchError) as e:
        _built(Keeper())
    assert _one_line(e).startswith("evaluators PQ and Keeper both declare ProvidesColumns")
    with pytest.raises(PanbenchError) as e:
        Evaluators(CATS, [load_evaluator(Reader)])
    assert _one_line(e).startswith("evaluator Reader: declares UsesSums but no member provides PQ's columns")


def test_a_user_s_member_is_called_through_the_abilities_it_declares_and_its_fields_go_under_its_name() -> None:
    bulk, reader = load_evaluators([Bulk, Reader])
    evaluators = Evaluators.for_run(CATS, analyses=False, semantic=False, extra=[bulk, reader])
    assert evaluators.takes_scored and evaluators.keeps_columns  # a member declaring nothing would need each image
    evaluators.add_scored(PanopticAccumulator(CATS), [10, 11, 12])
    out = evaluators.evaluate()
    assert out["evaluators"] == {"Bulk": {"images": 3}, "Reader": {"pq_images": 0, "kept": 0}}
    assert set(out) == {"metrics", "evaluators"}  # one mapping, each key of one member


def test_what_the_members_declare_decides_the_composite_s_needs_rules_and_columns() -> None:
    plain = load_evaluator(Plain)
    evaluators = Evaluators.for_run(CATS, analyses=False, semantic=False, rules=("torchmetrics",), extra=[plain])
    assert not evaluators.takes_scored and not evaluators.keeps_columns and evaluators.rules == ("torchmetrics",)
    assert evaluators.needs >= {"id_maps", "segments", "result"}
    assert np.array_equal(evaluators.columns().stats.tp, [0, 0])


class EomtCounter(Bulk):
    """A user's member reading the scored images' state sums under EoMT's rule."""

    counted_rules = ("eomt",)


def test_two_members_taking_scored_images_under_different_rules_are_refused_naming_both() -> None:
    with pytest.raises(PanbenchError) as e:
        Evaluators.for_run(CATS, analyses=False, semantic=False, rules=("torchmetrics",),
                           extra=load_evaluators([EomtCounter]))
    assert _one_line(e).startswith("evaluators Rules and EomtCounter take scored images under different rules "
                                   "(torchmetrics and eomt); give them the same counted_rules")
    same = Evaluators.for_run(CATS, analyses=False, semantic=False, rules=("eomt",),
                              extra=load_evaluators([EomtCounter]))
    assert same.rules == ("eomt",)
