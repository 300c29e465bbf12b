"""The table of analyses: one :class:`Analysis` row per analysis of the per-image results, holding what the
other layers read instead of naming the analysis: the record fields it fills, how it is computed, its table
columns and their headers, its terminal text, its report section and its ``panbench table`` option.

An analysis is its module under ``panbench/analysis/`` (the functions a row names), its row here and its
fields in :class:`panbench.records.schema.RunRecord` (which declares them; ``ANALYSIS_FIELDS`` reads them from
here).  Standard library only, so that ``panbench --help`` builds the options without numpy; the row's
functions are named ``"module:function"`` and imported when called (:func:`function`).

* ``compute(inputs: AnalysisInputs) -> dict``: the record fields it fills (empty when it does not apply);
* ``columns(record) -> dict``: the table's columns of one record (blank when the record lacks the analysis);
* ``text(fields) -> list[str]``: its terminal lines, of a record or ``score --json``'s dict; an ``inline``
  row gives parts of one line shared with the other inline rows ("; " between them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from panbench import named

RERUN = "records written before schema 2, or runs without the analysis; re-run them"


@dataclass(frozen=True)
class Analysis:
    """One analysis: what ``score``/``eval`` write, ``table``/``report`` show and the terminal prints of it."""

    key: str  # the table option's dest and the report section's key
    fields: tuple[str, ...]  # the RunRecord fields it fills; the first is the one whose absence means "not run"
    title: str  # the report section's title
    option: str  # panbench table's option
    help: str  # its help (argparse: % written %%)
    compute: str  # "module:function" (AnalysisInputs) -> the record fields
    columns: str  # "module:function" (RunRecord) -> the table's columns
    text: str  # "module:function" (Mapping) -> terminal lines (an inline row: parts of one line)
    inline: bool = False  # its text joins the line of the other inline rows
    headers: Mapping[str, str] = field(default_factory=dict)  # column -> header in words (reporting/formats.py)
    words: frozenset[str] = frozenset()  # the words of its column names that read as they are
    aliases: tuple[str, ...] = ()  # deprecated spellings of the option
    how: str = RERUN  # how to get it when a record lacks it (the table's note)
    paired: bool = False  # the table adds each row's paired PQ difference to the reference run
    kinds: str | None = None  # "module:function" () -> {column: (kind, the column it belongs to)} of the columns
    # that are not shown as they are (panbench.reporting.columns: an interval's ends, an error type's count and delta)


ANALYSES: tuple[Analysis, ...] = (
    Analysis("ci", ("ci",), "confidence intervals (95%, image bootstrap) and paired differences", "--ci",
             "PQ, SQ, RQ, PQ_th, PQ_st with their 95%% bootstrap intervals, and each row's paired PQ difference "
             "to the reference run on the same images",
             "panbench.analysis.bootstrap:ci_fields", "panbench.analysis.bootstrap:ci_columns",
             "panbench.analysis.bootstrap:ci_text",
             words=frozenset({"low", "high"}), paired=True, kinds="panbench.analysis.bootstrap:ci_kinds"),
    Analysis("by_size", ("by_size",), "PQ by object size (things)", "--by-size",
             "PQ/SQ/RQ of things by object size (small, medium, large: COCO's area limits)",
             "panbench.analysis.metrics:by_size_fields", "panbench.analysis.metrics:by_size_columns",
             "panbench.analysis.metrics:by_size_text", words=frozenset({"small", "medium", "large", "segments"})),
    Analysis("dagger", ("pq_dagger",), "PQ-dagger", "--dagger", "PQ-dagger beside PQ",
             "panbench.analysis.metrics:dagger_fields", "panbench.analysis.metrics:dagger_columns",
             "panbench.analysis.metrics:dagger_text", inline=True, headers={"PQ_dagger": "PQ-dagger"}),
    Analysis("errors", ("errors", "mask_quality"), "error breakdown (count and oracle delta PQ)", "--errors",
             "the error breakdown: count and oracle delta PQ per error type",
             "panbench.analysis.breakdown:errors_fields", "panbench.analysis.breakdown:errors_columns",
             "panbench.analysis.breakdown:errors_text",
             headers={"mask_quality_delta_PQ": "perfect masks: delta PQ"},
             words=frozenset({"count", "classification", "segmentation", "duplicate", "background", "missed",
                              "other"}), kinds="panbench.analysis.breakdown:errors_kinds"),
    Analysis("boundary", ("boundary",), "boundary PQ", "--boundary-pq", "boundary PQ (runs scored with --boundary)",
             "panbench.analysis.scoring:boundary_fields", "panbench.analysis.scoring:boundary_columns",
             "panbench.analysis.scoring:boundary_text", inline=True, words=frozenset({"boundary"}),
             aliases=("--boundary",), how="re-run `panbench eval` or `panbench score` with --boundary"),
)


def function(ref: str) -> Callable[..., Any]:
    """The function a row names as ``"module:function"`` (:func:`panbench.named`)."""
    return named(ref)


def by_key(key: str) -> Analysis:
    """The row of option ``key`` (``panbench table``'s dest)."""
    return next(a for a in ANALYSES if a.key == key)
