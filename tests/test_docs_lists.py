"""Every list that README.md and docs/*.md make of a table's rows is that table: the output formats
(``WRITERS``), the analyses' ``panbench table`` options (``ANALYSES``) and the datasets ``panbench data`` adds
(``DATASETS``, coco and demo built in).  A row added to a table fails here until each list names it (docs/cli.md
is generated from the parsers: tests/cli/test_cli_reference.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from panbench.analyses import ANALYSES
from panbench.data.catalog import DATASETS
from panbench.package import REPO_ROOT
from panbench.reporting.formats import WRITERS

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
BUILT_IN = {"coco", "demo"}  # every dataset's layout and the offline one: named everywhere by right
# sentences that name particular datasets on purpose, not as the list of them: what one test runs on, what
# one converter does (a substring of the sentence's first line)
ON_PURPOSE = ("Cityscapes/ADE20K conversion, then `eval` and `score`",  # testing.md: test_converted_eval.py
              "converted Cityscapes/ADE20K data, and",  # huggingface.md: the tiny models' label names
              "`panbench eval --dataset cityscapes|ade20k` with a random-init",  # datasets.md: its test
              "Cityscapes or ADE20K data and no trained model",  # datasets.md: what was not run
              "Cityscapes and ADE20K keep the names their official converters give",  # datasets.md: converters
              "Mapillary Vistas and COCONut (unlike Cityscapes and ADE20K) ship their",  # datasets.md: two kinds
              "converts again over an earlier conversion (for Cityscapes and ADE20K;",  # datasets.md: --force
              )


def lists(text: str, words: set[str], wrapped: bool = False, flags: int = 0) -> Iterator[tuple[int, set[str]]]:
    """(line, the words) of each list of two or more of ``words`` in ``text``: joined by commas, slashes, pipes
    (``md|csv``, ``md\\|csv`` in a table), ``and``/``or`` or spaces, each word in backticks or brackets when
    ``wrapped`` (so that ``--ci --errors`` written as one example is not a list)."""
    alt = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    item = rf"[`\[](?:{alt})[`\]]" if wrapped else rf"[`\[]?(?:{alt})[`\]]?(?![\w-])"
    sep = r"(?:[ \t]*(?:,|/|\\?\|)\s*(?:(?:and|or)\s+)?|\s+(?:(?:and|or)\s+)?)"
    for m in re.finditer(rf"(?<![\w.-]){item}(?:{sep}{item})+", text, flags):
        found = {w.lower() for w in re.findall(rf"(?<![\w-])({alt})(?![\w-])", m[0], flags)}
        yield text.count("\n", 0, m.start()) + 1, found


def wrong_lists(words: set[str], want: set[str], wrapped: bool = False, flags: int = 0,
                canon: dict[str, str] | None = None) -> list[str]:
    """``file:line`` of each list of the docs that names two or more of ``want`` but not all of them (``canon``: a
    word's name in ``want``, a dataset's display name its name)."""
    bad = []
    for path in DOCS:
        text = path.read_text()
        for line, said_words in lists(text, words, wrapped, flags):
            found = {(canon or {}).get(w, w) for w in said_words}
            said = text.splitlines()[line - 1]
            if len(found & want) >= 2 and found & want != want and not any(s in said for s in ON_PURPOSE):
                bad.append(f"{path.name}:{line}: {sorted(found & want)}, not {sorted(want)}")
    return bad


def test_every_list_of_output_formats_in_the_docs_is_the_writers() -> None:
    assert wrong_lists(set(WRITERS), set(WRITERS)) == []


def test_every_list_of_analysis_options_in_the_docs_is_the_analyses() -> None:
    options = {a.option for a in ANALYSES}
    assert wrong_lists(options, options, wrapped=True) == []


def test_every_list_of_datasets_in_the_docs_names_each_added_one() -> None:
    added = {name for name in DATASETS if name not in BUILT_IN}
    words = {*DATASETS, *(d.display for d in DATASETS.values())}
    canon = {d.display.lower(): d.name for d in DATASETS.values()}
    assert wrong_lists(words, {w.lower() for w in added}, flags=re.I, canon=canon) == []


def test_the_list_check_finds_a_list_without_a_row(tmp_path: Path) -> None:
    text = "`--format md|csv|html`, the table's `--ci`, `--by-size`; Cityscapes and ADE20K\n"
    assert [s for _, s in lists(text, set(WRITERS))] == [{"md", "csv", "html"}]
    assert [s for _, s in lists(text, {a.option for a in ANALYSES}, wrapped=True)] == [{"--ci", "--by-size"}]
    assert [s for _, s in lists("`--ci --errors` combine", {a.option for a in ANALYSES}, wrapped=True)] == []
    words = {*DATASETS, *(d.display for d in DATASETS.values())}
    assert [s for _, s in lists(text, words, flags=re.I)] == [{"cityscapes", "ade20k"}]
