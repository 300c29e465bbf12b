"""Compile a `panbench table --format latex` output with pdflatex (skipped when pdflatex is not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def assert_compiles(tex: str, tmp_path: Path) -> None:
    """The table in an article with booktabs compiles without error."""
    compile_log(tex, tmp_path)


def compile_log(tex: str, folder: Path, landscape: bool = False) -> str:
    """Compile the table in an article with booktabs (A4, landscape with 2 cm margins when ``landscape``), assert
    that it compiles without error and return pdflatex's log (its overfull-box warnings say what overflows)."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        msg = ("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended; "
               ".ci/run installs it)")
        if os.environ.get("CI") == "true":  # on CI the compile check must run, never skip
            pytest.fail(msg)
        pytest.skip(msg)
    folder.mkdir(parents=True, exist_ok=True)
    page = r"\usepackage[a4paper,landscape,margin=2cm]{geometry}" if landscape else ""
    doc = folder / "t.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}" + page + "\\begin{document}\n" + tex +
                   "\\end{document}\n")
    res = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:]
    return (folder / "t.log").read_text(errors="replace")
