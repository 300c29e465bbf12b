"""Compile a `panbench table --format latex` output with pdflatex (skipped when pdflatex is not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def assert_compiles(tex: str, tmp_path: Path) -> None:
    """The table in an article with booktabs compiles without error."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        msg = ("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended; "
               ".ci/run installs it)")
        if os.environ.get("CI") == "true":  # on CI the compile check must run, never skip
            pytest.fail(msg)
        pytest.skip(msg)
    doc = tmp_path / "t.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex + "\\end{document}\n")
    res = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:]
