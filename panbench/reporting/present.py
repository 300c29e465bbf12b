"""The presentation step of the tables: a frame of the data step (:mod:`panbench.reporting.tables`, its columns
named as the record's fields, their kinds in :mod:`panbench.reporting.kinds`) written in a format by that
format's writer (:data:`panbench.reporting.formats.WRITERS`): CSV as it is; for readers, the columns that say
the same in every row folded into a note, each declared column shown by its kind, headers in words."""

from __future__ import annotations

from typing import Any

from panbench.records.rows import SHARED_SPEED_MARK
from panbench.reporting import verdict as vd
from panbench.reporting.formats import cells, header, writer
from panbench.reporting.kinds import declared, of_kind


def format_table(df: Any, fmt: str, digits: int = 3, notes: list[str] | tuple = ()) -> str:
    """The table in ``fmt`` (:data:`panbench.reporting.formats.WRITERS`: md, csv, latex, html); a missing value
    (unmeasured speed, unpublished number, absent category, missing analysis) is '-' (empty in csv).  CSV keeps
    every digit (``digits`` rounds the other formats).
    Outside CSV the columns of :mod:`panbench.reporting.kinds` are shown by their kind (an interval one column
    ``X 95% CI``, a difference with its mark, a speed with its mark) and the headers are words; ``notes`` follow
    the table as footnotes (CSV has none: the caller prints them apart).  The presentation step: ``df`` is the
    data step's frame (:func:`comparison`, :func:`per_class`), its columns named as the record's fields."""
    w = writer(fmt)
    if w.fields:  # CSV: every digit of the record, for machines
        return w.table(df, digits, notes)
    digits = min(digits, w.max_digits or digits)
    df = df.round(digits)
    df, same = _drop_constant(df, digits)
    return w.table(_display(df, digits), digits, [*same, *notes])


# the columns that say which run a row is: one that is the same in every row is a note under the table instead
FOLDED = ("postprocess", "framework", "settings", "dataset", "n_images", "selection", "batch", "amp", "cfg_options",
          "ops", "device", "mIoU_from")


def _drop_constant(df: Any, digits: int) -> tuple[Any, list[str]]:
    """``df`` without the :data:`FOLDED` columns that have one value in every row (of two rows or more), and the
    note that gives those values once ("In every row: dataset demo 8cda6b4f; images 12; mmcv ops panbench");
    a column blank in every row goes without a word."""
    if len(df) < 2:
        return df, []
    same = [c for c in df.columns if c in FOLDED and df[c].nunique(dropna=False) == 1]
    if not same:
        return df, []
    first = cells(df[same].iloc[:1], digits).iloc[0]
    said = [f"{header(c)} {first[c]}" for c in same if first[c] is not None]
    return df.drop(columns=same), [f"In every row: {'; '.join(said)}."] if said else []


def _display(df: Any, digits: int) -> Any:
    """The columns of :mod:`panbench.reporting.kinds` shown for readers: an interval as one '[low, high]' column
    named 'X 95% CI'; a speed measured beside other work marked; a difference signed, with its mark."""
    import pandas as pd

    df = df.copy()
    kinds = declared()
    highs = {c.of: c.name for c in of_kind(df.columns, "interval_high", kinds)}
    for low in [c for c in of_kind(df.columns, "interval_low", kinds) if c.of in highs]:
        lo, hi = df[low.name], df[highs[low.of]]
        cell = [None if pd.isna(a) or pd.isna(b) else f"[{a:.{digits}f}, {b:.{digits}f}]" for a, b in zip(lo, hi)]
        df.insert(list(df.columns).index(low.name), f"{low.of[0]} 95% CI", cell)
        df = df.drop(columns=[low.name, highs[low.of]])
    for shared in of_kind(df.columns, "shared", kinds):  # speeds measured beside another run, marked
        marks = df.pop(shared.name).fillna(False).astype(bool)
        for c in [c for c in shared.of if c in df.columns]:
            df[c] = [None if pd.isna(v) else f"{v:.{digits}f}{SHARED_SPEED_MARK if sh else ''}"
                     for v, sh in zip(df[c], marks)]
    for mark in of_kind(df.columns, "mark", kinds):
        (c,) = mark.of
        df[c] = [None if pd.isna(d) else f"{d:+.{digits}f}{mk or ''}" for d, mk in zip(df[c], df.pop(mark.name))]
    return df


def verdict_text(verdicts: list[Any], fmt: str) -> str:
    """The verdicts (:mod:`panbench.reporting.verdict`) in ``fmt``: per group its heading, the ranking as a
    table and the one-line reading; plain text lines for a format without a verdict block (CSV: the caller
    prints them apart)."""
    block = writer(fmt).block
    if block is None:
        return "\n".join(line for v in verdicts for line in vd.lines(v))
    return "\n\n".join(block(v.heading(), format_table(vd.verdict_frame(v), fmt, digits=2), v.reading)
                       for v in verdicts)


def counts_with_deltas(df: Any) -> Any:
    """Each count column with its delta column as one column "X: count, delta PQ" (half as wide), at the end; a
    delta without a count after them (:mod:`panbench.reporting.kinds`): the report's compact analysis tables."""
    import pandas as pd

    kinds = declared()
    deltas = {c.of: c.name for c in of_kind(df.columns, "delta", kinds)}
    for count in [c for c in of_kind(df.columns, "count", kinds) if c.of in deltas]:
        n, d = df.pop(count.name), df.pop(deltas.pop(count.of))  # an error type in one column: half as wide
        df[f"{count.of[0]}: count, delta PQ"] = [None if pd.isna(x) else f"{int(x)}, {y:+.2f}" for x, y in zip(n, d)]
    for alone in deltas.values():  # a delta without a count (perfect masks): last
        df[alone] = df.pop(alone)
    return df
