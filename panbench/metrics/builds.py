"""What decides the shape of a metric's state, :class:`MetricBuild`, and the words for two builds that differ:
what :meth:`~panbench.metrics.panoptic.BasePanopticQuality.sync` compares over the ranks before any state crosses
(ranks built differently would otherwise wait on collectives that never meet), and ``merge()`` between two metrics."""

from __future__ import annotations

from typing import NamedTuple


class MetricBuild(NamedTuple):
    """A metric's category ids, whether it keeps the analyses, its rules, its evaluators (``name@version``) and each
    category's thing flag and name (in the order of the ids): what PQ_th and PQ_st average over, and what names them."""

    categories: tuple[int, ...]
    analyses: bool
    rules: tuple[str, ...]
    evaluators: tuple[str, ...]
    isthing: tuple[bool, ...] = ()
    names: tuple[str, ...] = ()


def build_difference(mine: MetricBuild, theirs: MetricBuild, here: str, there: str,
                     merging: bool = False) -> str | None:
    """The first way two builds differ, in words naming both (``here``, ``there``: "on rank 0", "here", ...), or
    None where they are alike; ``merging``: what ``merge()`` takes passes (the other with the analyses or the rules
    of a metric that has none: their images add PQ's part)."""
    if mine.categories != theirs.categories:
        a, b = mine.categories, theirs.categories
        if len(a) != len(b):
            return f"different categories ({len(a)} {here}, {len(b)} {there})"
        k = next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)
        return f"different categories (at position {k}: id {a[k]} {here}, id {b[k]} {there})"
    if differs := _category_difference(mine, theirs, here, there):
        return differs
    if mine.analyses != theirs.analyses and not (merging and not mine.analyses):
        return f"different analyses (analyses={mine.analyses} {here}, analyses={theirs.analyses} {there})"
    if mine.rules != theirs.rules and not (merging and not mine.rules):
        return f"different rules ({_named(mine.rules)} {here}, {_named(theirs.rules)} {there})"
    if mine.evaluators != theirs.evaluators:
        return f"different evaluators ({_named(mine.evaluators)} {here}, {_named(theirs.evaluators)} {there})"
    return None


def _category_difference(mine: MetricBuild, theirs: MetricBuild, here: str, there: str) -> str | None:
    """The first category of the same id whose thing flag (then name) differs, in words; None where none does."""
    for k, (a, b) in enumerate(zip(mine.isthing, theirs.isthing)):
        if a != b:
            return (f"different categories (category {mine.categories[k]} is {_kind(a)} {here}, {_kind(b)} "
                    f"{there})")
    for k, (x, y) in enumerate(zip(mine.names, theirs.names)):
        if x != y:
            return f"different categories (category {mine.categories[k]} is named {x!r} {here}, {y!r} {there})"
    return None


def _kind(isthing: bool) -> str:
    return "a thing" if isthing else "stuff"


def _named(names: tuple[str, ...]) -> str:
    return str(list(names)) if names else "none"
