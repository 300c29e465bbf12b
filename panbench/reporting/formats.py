"""The output formats of the tables (``--format``): one :class:`Writer` per format in :data:`WRITERS`."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from panbench.analyses import ANALYSES
from panbench.errors import PanbenchError

# headers in words; a name not here reads as its words (:func:`header`)
HEADERS = {
    "n_images": "images", "images_per_s": "images/s", "params_M": "params (M)", "GFLOPs": "GFLOPs",
    "postprocess": "post-processing", "cfg_options": "--cfg-options", "ops": "mmcv ops", "mIoU_from": "mIoU from",
    "mIoU_panoptic": "mIoU (panoptic output)", "pixel_acc": "pixel acc.", "N_all": "categories",
    "N_th": "thing categories", "N_st": "stuff categories", "published": "published numbers from",
    "PQ_diff_vs": "paired difference to", "PQ_diff": "PQ difference",  # the paired difference (columns.py)
    **{k: v for a in ANALYSES for k, v in a.headers.items()},  # an analysis's own
}
PART = {"th": "things", "st": "stuff", "pub": "published", "delta": "minus published", "N": "categories"}
# the words of the record's field names: a column name made of them reads as words, any other (a run's label) as is
WORDS = {*PART, "PQ", "SQ", "RQ", "category", "id", "mIoU", "mDice", "diff", "mark",
         *(w for a in ANALYSES for w in a.words)}


def header(col: str) -> str:
    """A column's header for readers (``PQ_th`` "PQ things"); a name that is not a field's (a run's label) as it is."""
    return HEADERS[col] if col in HEADERS else " ".join(_words(w) for w in col.split(" "))


def _words(name: str) -> str:
    from panbench.reporting.columns import declared, rule_of_column

    if name in HEADERS:
        return HEADERS[name]
    if (ruled := rule_of_column(name)) is not None:  # a metric under another rule: "PQ things [eomt]"
        return f"{_words(ruled[0])} [{ruled[1]}]"
    if (c := declared().get(name)) is not None and c.kind == "delta" and c.of != (name,):  # an oracle gain
        return f"{_words(c.of[0])}: delta PQ"
    parts = name.split("_")
    if len(parts) == 1 or not all(p in WORDS or p in HEADERS for p in parts):
        return name
    return " ".join(PART.get(p, p) for p in parts)


def is_number(text: str) -> bool:
    """Whether a formatted cell reads as a number (an integer, a signed difference, an interval, a number its rule
    leaves undefined: ``n/a``): aligned right."""
    from panbench.reporting.labels import UNDEFINED

    return text == UNDEFINED or re.match(r"\[?[-+]?\d", text) is not None


def whole_counts(df: Any) -> Any:
    """``df`` with its declared counts (kind ``count``, :mod:`panbench.reporting.columns`) as nullable integers:
    pandas holds a column of whole numbers with a blank row as floats, which would print 282 as 282.000."""
    from panbench.reporting.columns import of_kind

    counts = [c.name for c in of_kind(df.columns, "count") if df[c.name].dtype.kind == "f"
              and (df[c.name].dropna() % 1 == 0).all()]
    return df.astype({c: "Int64" for c in counts}) if counts else df


def cells(df: Any, digits: int, with_index: bool = False) -> Any:
    """Every cell as text (None where missing), floats with ``digits`` decimals (never a negative zero), counts
    whole (:func:`whole_counts`); ``with_index``: the index first."""
    import numbers

    import pandas as pd

    from panbench.reporting.labels import decimals

    df = whole_counts(df)

    def cell(v: Any) -> str | None:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, numbers.Integral):
            return str(int(v))
        if isinstance(v, numbers.Real):
            return decimals(float(v), f".{digits}f")
        return str(v)

    rows = [[cell(v) for v in row] for row in df.astype(object).itertuples(index=False)]
    index = pd.Index([cell(i) or "" for i in df.index], name=df.index.name)
    out = pd.DataFrame(rows, columns=df.columns, index=index, dtype=object)
    return out.reset_index(names=df.index.name) if with_index and df.index.name is not None else out


@dataclass(frozen=True)
class Writer:
    """A format: its ``table(df, digits, notes)`` and verdict ``block(heading, table, reading)`` (None: plain lines)."""

    table: Callable[[Any, int, Sequence[str]], str]
    block: Callable[[str, str, str], str] | None = None
    notes_apart: bool = False
    max_digits: int | None = None  # decimals at most (LaTeX: 2, as papers print them)
    fields: bool = False  # the record's field names and columns (an interval as two columns): for machines


def md_escape(text: str) -> str:
    """Text for a Markdown table cell: ``|`` escaped (it would end the cell), line breaks as spaces."""
    return text.replace("|", r"\|").replace("\n", " ")


def _md(df: Any, digits: int, notes: Sequence[str]) -> str:
    from tabulate import tabulate

    c = cells(df, digits, with_index=True)
    rows = [["-" if v is None else md_escape(v) for v in row] for row in c.itertuples(index=False)]
    numeric = [all(v is None or is_number(v) for v in c[k]) and c[k].notna().any() for k in c.columns]
    text = tabulate(rows, [md_escape(header(str(k))) for k in c.columns], tablefmt="pipe", disable_numparse=True,
                    colalign=["right" if n else "left" for n in numeric])
    return text + "".join(f"\n\n{n}" for n in notes)


def latex_escape(text: str) -> str:
    """Plain text for LaTeX: special characters escaped (``|`` too), ``--`` two hyphens, non-ASCII signs as LaTeX."""
    out = text.replace("\\", r"\textbackslash ")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    out = out.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")
    out = out.replace("--", "-{}-").replace("<", r"\textless{}").replace(">", r"\textgreater{}")
    out = out.replace("|", r"\textbar{}")  # OT1, LaTeX's default font encoding, prints a bare | as a dash
    for sign, tex in (("−", "$-$"), ("×", r"$\times$"), ("≤", r"$\leq$"), ("≥", r"$\geq$"), ("²", "$^2$"),
                      ("·", r"$\cdot$"), ("†", r"\textdagger{}"), ("±", r"$\pm$")):
        out = out.replace(sign, tex)
    return out


def latex_number(text: str) -> str:
    """A number cell for LaTeX: its minus signs as math minus (a hyphen is shorter), the rest escaped."""
    return re.sub(r"(?<![\w.])-(?=\d)", "$-$", latex_escape(text))


def latex_prose(text: str) -> str:
    """Text for a LaTeX paragraph: escaped, minus as math minus, a line break allowed after '_' (long model names)."""
    return latex_number(text).replace(r"\_", r"\_\allowbreak{}")


def latex_paragraph(text: str) -> str:
    return f"\\par\\noindent{{\\sloppy {latex_prose(text)}\\par}}\n"  # sloppy: long names break the line


def _latex_head(text: str, align: str) -> str:
    """A header cell; a long one on two lines (before "95% CI", else at the space nearest its middle)."""
    if (len(text) <= 9 and " 95% CI" not in text) or " " not in text:
        return latex_escape(text).replace(" - ", " $-$ ")
    spaces = [k for k, ch in enumerate(text) if ch == " "]
    cut = text.index(" 95% CI") if " 95% CI" in text else min(spaces, key=lambda k: abs(2 * k - len(text)))
    top, bottom = (latex_escape(t).replace(" - ", " $-$ ") for t in (text[:cut], text[cut + 1:]))
    # {} after the line break: a '[' that follows is text, not the break's optional length
    return f"\\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}{top}\\\\{{}}{bottom}\\end{{tabular}}"


def _latex_text(text: str) -> str:
    """A text cell; a long one a ragged 10em paragraph that may break after '_', '-', '/', '.' or '='."""
    if len(text) <= 24:
        return latex_escape(text)
    broken = re.sub(r"(\\_|[-/.=,;])", r"\1\\allowbreak{}", latex_escape(text))
    return f"\\parbox[t]{{10em}}{{\\raggedright {broken}}}"


STACK = "\n"  # between a number and its interval in a LaTeX cell: two lines


def _stack_intervals(c: Any) -> Any:
    """A number and the ``95% CI`` column after it as one column, the interval under the number (half as wide)."""
    for k in [k for k in c.columns if f"{k} 95% CI" in c.columns]:
        ci = c.pop(f"{k} 95% CI")
        c[k] = [v if i is None else f"{v or '-'}{STACK}{i}" for v, i in zip(c[k], ci)]
        c = c.rename(columns={k: f"{k} 95% CI"})
    return c.astype(object).where(c.notna(), None)


def _latex_cell(v: str) -> str:
    """A cell: a number (its minus signs math minus), text (wrapped when long), or a number over its interval."""
    if STACK in v:
        top, bottom = (latex_number(t) for t in v.split(STACK))
        return f"\\begin{{tabular}}[t]{{@{{}}r@{{}}}}{top}\\\\{{}}{bottom}\\end{{tabular}}"
    return latex_number(v) if is_number(v) else _latex_text(v)


def _latex(df: Any, digits: int, notes: Sequence[str]) -> str:
    """A booktabs tabular in footnote size that fits a landscape page, the footnotes as small paragraphs after it."""
    c = _stack_intervals(cells(df, digits, with_index=True))
    numeric = [all(v is None or is_number(v) for v in c[k]) and c[k].notna().any() for k in c.columns]
    head = " & ".join(_latex_head(header(str(k)), "r" if n else "l") for k, n in zip(c.columns, numeric))
    body = [" & ".join("-" if v is None else _latex_cell(v) for v in row) + r" \\"
            for row in c.itertuples(index=False)]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = ["\\par\\smallskip\\noindent{\\footnotesize\\setlength{\\tabcolsep}{3pt}%",
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule", head + r" \\", r"\midrule", *body, r"\bottomrule",
             r"\end{tabular}\par}\smallskip"]
    return "\n".join(lines) + "\n" + "".join(f"{{\\footnotesize {latex_paragraph(n)}}}" for n in notes)


def _latex_block(heading: str, table: str, reading: str) -> str:
    head = f"\\par\\medskip\\noindent{{\\sloppy\\textbf{{{latex_prose(heading)}}}\\par}}\n"
    return head + table + latex_paragraph(reading)


def breakable(text: str) -> str:
    """Escaped text that a browser may wrap after ``_``, ``.``, ``;`` or ``=``."""
    return re.sub(r"([_;=]|\.(?=[A-Za-z]))", r"\1<wbr>", html.escape(text))


def _html(df: Any, digits: int, notes: Sequence[str]) -> str:
    """An HTML table in a ``<div class='wide'>``, text in ``<span class='t'>``, footnotes as ``<p class='note'>``."""
    c = cells(df, digits, with_index=True)

    def cell(v: str | None) -> str:
        if v is None:
            return "-"
        return breakable(v) if is_number(v) else f"<span class='t'>{breakable(v)}</span>"

    out = c.map(cell)
    out.columns = [breakable(header(str(k))) for k in c.columns]
    table = out.to_html(index=False, escape=False)
    return f"<div class='wide'>{table}</div>" + "".join(f"\n<p class='note'>{html.escape(n)}</p>" for n in notes)


def _html_block(heading: str, table: str, reading: str) -> str:
    return (f"<p class='verdict-head'>{html.escape(heading)}</p>{table}"
            f"<p class='verdict'>{html.escape(reading)}</p>")


WRITERS: dict[str, Writer] = {
    "md": Writer(_md, lambda heading, table, reading: f"**{heading}**\n\n{table}\n\n{reading}"),
    "csv": Writer(lambda df, digits, notes: whole_counts(df).to_csv(index=df.index.name is not None), None,
                  notes_apart=True, fields=True),
    "latex": Writer(_latex, _latex_block, max_digits=2),
    "html": Writer(_html, _html_block),
}


def writer(fmt: str) -> Writer:
    """The writer of ``fmt``; an unknown format is a one-line error naming the known ones."""
    if fmt not in WRITERS:
        raise PanbenchError(f"--format {fmt}: use one of {', '.join(WRITERS)}")
    return WRITERS[fmt]
