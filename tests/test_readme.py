"""README.md read as a newcomer reads it: its commands run in a shell in the order it gives them, and it answers
"why is my PQ low?" with a link that resolves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from panbench.package import REPO_ROOT

README = REPO_ROOT / "README.md"


def _bash_lines(text: str) -> list[str]:
    """Every command line of README's ```bash blocks, in order, comments cut."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines += [s for line in block.splitlines() if (s := line.split("  #")[0].strip())]
    return lines


def test_readme_puts_panbench_on_the_path_before_its_first_bare_command() -> None:
    text = README.read_text()
    lines = _bash_lines(text)
    first_bare = next(i for i, line in enumerate(lines) if line.startswith("panbench "))
    activation = [line for line in lines[:first_bare] if line.startswith(("source ", ". "))]
    assert activation, "README runs `panbench` before any line that puts it on the PATH"
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if Path(p).resolve() != Path(venv_bin).resolve())
    env = {**os.environ, "PATH": path}
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run(["bash", "-c", f"{activation[0]} && command -v panbench"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip(), out.stderr
    assert Path(out.stdout.strip()).parent.resolve() == (REPO_ROOT / ".venv" / "bin").resolve()


def test_readme_says_where_a_low_pq_is_explained() -> None:
    text = README.read_text()
    section = re.search(r"^## Why is my PQ low\?\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README has no 'Why is my PQ low?' section"
    links = re.findall(r"\]\((docs/[^)#]+)#([^)]+)\)", section[1])
    assert links
    for doc, anchor in links:
        headings = re.findall(r"^#+ (.+)$", (REPO_ROOT / doc).read_text(), re.M)
        slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
        assert anchor in slugs, f"{doc}#{anchor} does not resolve"
