"""The table of analyses: one :class:`Analysis` row per analysis of the per-image results, holding what the
other layers read instead of naming the analysis (docs/architecture.md, "Change -> files to touch": add an
analysis).  Standard library only, so that ``panbench --help`` builds the options without numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

RERUN = "records written before schema 2, or runs without the analysis; re-run them"


@dataclass(frozen=True)
class Analysis:
    """One analysis: what ``score``/``eval`` write, ``table``/``report`` show and the terminal prints of it."""

    key: str  # the table option's dest and the report section's key
    fields: tuple[str, ...]  # the RunRecord fields it fills; the first is the one whose absence means "not run"
    title: str  # the report section's title
    option: str  # panbench table's option
    help: str  # its help (argparse: % written %%)
    inline: bool = False  # its text joins the line of the other inline rows
    headers: Mapping[str, str] = field(default_factory=dict)  # column -> header in words (reporting/formats.py)
    words: frozenset[str] = frozenset()  # the words of its column names that read as they are
    aliases: tuple[str, ...] = ()  # deprecated spellings of the option
    how: str = RERUN  # how to get it when a record lacks it (the table's note)
    paired: bool = False  # the table adds each row's paired PQ difference to the reference run
    note: str = ""  # a footnote wherever its table or figure shows it


ANALYSES: tuple[Analysis, ...] = (
    Analysis("ci", ("ci",), "confidence intervals (95%, image bootstrap) and paired differences", "--ci",
             "PQ, SQ, RQ, PQ_th, PQ_st with their 95%% bootstrap intervals, and each row's paired PQ difference "
             "to the reference run on the same images",
             words=frozenset({"low", "high"}), paired=True),
    Analysis("by_size", ("by_size",), "PQ by object size (things)", "--by-size",
             "PQ/SQ/RQ of things by object size (small, medium, large: COCO's area limits)",
             words=frozenset({"small", "medium", "large", "segments"})),
    Analysis("dagger", ("pq_dagger",), "PQ-dagger", "--dagger", "PQ-dagger beside PQ", inline=True,
             headers={"PQ_dagger": "PQ-dagger"}),
    Analysis("errors", ("errors", "mask_quality"), "error breakdown (count and oracle delta PQ)", "--errors",
             "the error breakdown: count and oracle delta PQ per error type",
             headers={"mask_quality_delta_PQ": "perfect masks: delta PQ"},
             words=frozenset({"count", "classification", "segmentation", "duplicate", "background", "missed",
                              "other"})),
    Analysis("boundary", ("boundary",), "boundary PQ", "--boundary-pq", "boundary PQ (runs scored with --boundary)",
             inline=True, words=frozenset({"boundary"}),
             aliases=("--boundary",), how="re-run `panbench eval` or `panbench score` with --boundary"),
    Analysis("score_threshold", ("score_threshold",), "PQ against the segment score threshold", "--score-threshold",
             "PQ with the predicted segments scoring below a threshold removed: the best threshold (chosen on these "
             "images) and the model's own",
             headers={"threshold_best": "best threshold", "PQ_best": "PQ at best threshold",
                      "threshold_own": "own threshold", "PQ_own": "PQ at own threshold",
                      "PQ_gain": "PQ gain (best - own)", "scored_segments": "scored segments"},
             how="re-run `panbench eval` or `panbench score` with predictions that keep each segment's \"score\"",
             note="the best threshold is chosen on these images: a threshold picked on val is not a test result"),
    Analysis("calibration", ("calibration",), "calibration of the segment scores (ECE)", "--calibration",
             "the expected calibration error (ECE, 0-1) of the predicted segments' scores, with its 95%% bootstrap "
             "interval; equal-width and equal-mass bins",
             headers={"ece": "ECE", "ece_th": "ECE things", "ece_st": "ECE stuff", "ece_mass": "ECE (equal mass)",
                      "ece_mass_th": "ECE things (equal mass)", "ece_mass_st": "ECE stuff (equal mass)"},
             how="re-run `panbench eval` or `panbench score` with predictions that keep each segment's \"score\""),
)


class Registry:
    """One function per analysis, registered by its row's key where it is defined: ``@registry(key)``."""

    def __init__(self, what: str, decorator: str) -> None:
        self.what, self.decorator = what, decorator  # what the function gives; the decorator's import path
        self.functions: dict[str, Callable[..., Any]] = {}

    def __call__(self, key: str) -> Callable[[_Fn], _Fn]:
        if key not in {a.key for a in ANALYSES}:
            raise LookupError(f"@{self.decorator}({key!r}): no analysis {key!r} in panbench/analyses.py's ANALYSES; "
                              "add its row there")

        def register(fn: _Fn) -> _Fn:
            name = f"{fn.__module__}.{fn.__qualname__}"
            if (old := self.functions.get(key)) is not None and f"{old.__module__}.{old.__qualname__}" != name:
                raise LookupError(f"two {self.what} functions for analysis {key!r}: {old.__module__}."
                                  f"{old.__qualname__} and {name}; keep one")
            self.functions[key] = fn
            return fn
        return register

    def __getitem__(self, key: str) -> Callable[..., Any]:
        if (fn := self.functions.get(key)) is None:
            raise LookupError(f"analysis {key!r} of panbench/analyses.py has no {self.what} function; decorate "
                              f"one with @{self.decorator}({key!r})")
        return fn


def by_key(key: str) -> Analysis:
    """The row of option ``key`` (``panbench table``'s dest)."""
    return next(a for a in ANALYSES if a.key == key)
