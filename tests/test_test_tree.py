"""The test folders have no __init__.py, so pytest imports each test module (and each conftest.py) by its bare
file name: two files of one name in different folders shadow each other (a collection error, or a
``from conftest import ...`` that reads the wrong file)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_two_test_files_share_a_name() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if "fixtures" not in p.parts)
    assert sorted(n for n, k in names.items() if k > 1) == []
