"""What each column of a table is, declared as data: a :class:`Column` names its kind (:data:`KINDS`) and the
columns it belongs to.  The tables (:mod:`panbench.reporting.tables`) make their frames of record field names
(the data step); the presentation step (``format_table``, and the report's compact analysis tables) reads
the kinds here to show a column, never its name's suffix.  The kinds of the tables' own columns are
:data:`BUILT_IN`; an analysis declares those of its columns in its row of :data:`panbench.analyses.ANALYSES`
(``kinds``: a function of its module returning column -> (kind, the column it belongs to))."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from panbench.analyses import ANALYSES, function
from panbench.pq.matching import METRIC_KEYS
from panbench.reporting.fps import FPS

KINDS = {
    "interval_low": "the low end of the 95% interval of the column it belongs to (outside CSV: one 'X 95% CI' "
                    "column with its interval_high)",
    "interval_high": "the high end of that interval",
    "count": "a number of errors of one type (the report's compact table: one column with its delta)",
    "delta": "the oracle delta PQ of one error type; without a count, a column of its own, put last",
    "shared": "whether the speeds it belongs to were measured beside other work (outside CSV: a mark after them)",
    "mark": "the mark of a signed difference (outside CSV: after the difference, which is written signed)",
    "published": "a published number or the difference to it (dropped when no row has one)",
}


@dataclass(frozen=True)
class Column:
    """A column of a table that is not shown as it is: its name (a record field's, as CSV writes it), its kind
    (a key of :data:`KINDS`) and the columns it belongs to (an interval's metric, the speeds a mark is for)."""

    name: str
    kind: str
    of: tuple[str, ...] = ()


BUILT_IN = (
    Column("PQ_low", "interval_low", ("PQ",)), Column("PQ_high", "interval_high", ("PQ",)),  # the default table's
    Column("PQ_diff_low", "interval_low", ("PQ_diff",)), Column("PQ_diff_high", "interval_high", ("PQ_diff",)),
    Column("PQ_diff_mark", "mark", ("PQ_diff",)),  # the paired difference (reporting/columns.py)
    Column("images_per_s_shared", "shared", ("images_per_s",)), Column("FPS_shared", "shared", (FPS, "FPS_e2e_b1")),
    *(Column(f"{k}_{part}", "published", (k,)) for k in METRIC_KEYS for part in ("pub", "delta")),  # --vs-published
)


def declared() -> dict[str, Column]:
    """Every declared column by name: :data:`BUILT_IN` and each analysis's (its row's ``kinds``)."""
    out = {c.name: c for c in BUILT_IN}
    for a in ANALYSES:
        if a.kinds:
            out.update({name: Column(name, kind, (of,)) for name, (kind, of) in function(a.kinds)().items()})
    return out


def of_kind(names: Iterable[Any], kind: str, columns: dict[str, Column] | None = None) -> list[Column]:
    """The declared columns among ``names`` (a frame's columns) of ``kind``, in their order (``columns``: the
    declared ones, default :func:`declared`)."""
    columns = declared() if columns is None else columns
    return [columns[n] for n in names if n in columns and columns[n].kind == kind]
