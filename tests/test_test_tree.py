"""The test tree.

- The test folders have no __init__.py, so pytest imports each test module (and each conftest.py) by its bare
  file name: two files of one name in different folders shadow each other (a collection error, or a
  ``from conftest import ...`` that reads the wrong file).
- The Makefile's two targets split it: ``make test`` runs every test not marked ``system``, ``make test-system``
  those marked, in the files its ``SYSTEM_FILES`` names, so each collected test runs in exactly one of them; the
  system tests' files are those that docs/testing.md lists, every test on the Slurm cluster is one, and none is in
  the torchvision tier."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def test_no_two_test_files_share_a_name() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if "fixtures" not in p.parts)
    assert sorted(n for n, k in names.items() if k > 1) == []


# ---- the two targets: `make test` (the package) and `make test-system` (the machine; marker `system`) ----

ROOT = TESTS.parent

def row(item: pytest.Item) -> dict:
    """A collected test's node id, marker names and fixture names."""
    return {"id": item.nodeid, "marks": sorted({m.name for m in item.iter_markers()}),
            "fixtures": sorted(getattr(item, "fixturenames", ()))}


# one collection of every test (no -m) in a child pytest
COLLECT = """
import json, sys
import pytest

class Record:
    def pytest_collection_finish(self, session):
        from test_test_tree import row  # importable once pytest has collected tests/

        rows = [row(i) for i in session.items]
        with open(sys.argv[1], "w") as f:
            json.dump(rows, f)

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"], plugins=[Record()]))
"""


@pytest.fixture(scope="module")
def collected(request, tmp_path_factory) -> list[dict]:
    """Every test of the tree: the session's own collection when it collected the whole tree (``make test``
    does), else a child pytest's."""
    from conftest import COLLECTED

    config = request.config
    if [Path(a).resolve() for a in config.args] == [TESTS] and COLLECTED in config.stash:
        return [row(i) for i in config.stash[COLLECTED]]
    out = tmp_path_factory.mktemp("collect") / "tests.json"
    r = subprocess.run([sys.executable, "-c", COLLECT, str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


def makefile() -> str:
    """The Makefile, its continued lines joined."""
    return re.sub(r"\\\n\t+", "", (ROOT / "Makefile").read_text())


def make_variable(name: str) -> list[str]:
    return re.search(rf"^{name} := (.+)$", makefile(), re.M)[1].split()


def make_targets() -> dict[str, str]:
    """The ``-m`` expression of each Makefile target that runs pytest over tests (test, test-system, test-vision):
    its first such recipe line's."""
    return {m[1]: m[2] or m[3] for m in
            re.finditer(r'^([\w-]+):.*\n(?:\t.*\n)*?\t.*-m pytest -q -m (?:"([^"]+)"|(\w+)) ', makefile(), re.M)}


def test_make_test_runs_every_test_of_its_own_on_workers_in_one_step() -> None:
    """``make test``: one pytest over tests/ on pytest-xdist's workers, a file's tests in one worker (two steps, each
    starting workers and ending on a tail, took longer: docs/testing.md, "How long")."""
    recipe = re.search(r"^test: setup\n((?:\t.*\n)+)", makefile(), re.M)[1].splitlines()
    assert recipe == ['\t$(PY) -m pytest -q -m "not system" -n auto --dist loadfile tests']


def selects(expression: str, marks: list[str]) -> bool:
    """Whether ``pytest -m EXPRESSION`` runs a test with these markers (pytest's own parser of -m)."""
    from _pytest.mark.expression import Expression

    return Expression.compile(expression).evaluate(lambda name, **kwargs: name in marks)


def test_make_test_system_runs_its_timed_files_beside_each_other_after_the_others_on_workers() -> None:
    """``make test-system``'s three steps, the first two on pytest-xdist's workers, each handing out its files in the
    order of ``SYSTEM_FILES``: those but the ``TIMED_SYSTEM`` and ``ALONE_SYSTEM`` files, then the ``TIMED_SYSTEM``
    files (they time Ctrl-C and a checkpoint against the load) beside each other only, then ``ALONE_SYSTEM`` (the
    gaps in the commands' output) alone."""
    system, timed, alone = (make_variable(v) for v in ("SYSTEM_FILES", "TIMED_SYSTEM", "ALONE_SYSTEM"))
    assert system[-2:] == ["$(TIMED_SYSTEM)", "$(ALONE_SYSTEM)"]
    defined = [m[1] for m in re.finditer(r"^(\w+) :=", makefile(), re.M)]  # `:=` expands what is defined above only
    assert defined.index("SYSTEM_FILES") > max(defined.index("TIMED_SYSTEM"), defined.index("ALONE_SYSTEM"))
    assert timed and alone and all((ROOT / f).is_file() for f in timed + alone)
    recipe = re.search(r"^test-system: setup\n((?:\t.*\n)+)", makefile(), re.M)[1].splitlines()
    workers = "$(PY) -m pytest -q -m system -n auto --dist loadfile --no-loadscope-reorder"
    assert recipe == [f"\t{workers} $(filter-out $(TIMED_SYSTEM) $(ALONE_SYSTEM),$(SYSTEM_FILES))",
                      f"\t{workers} $(TIMED_SYSTEM)", "\t$(PY) -m pytest -q -m system $(ALONE_SYSTEM)"]


def system_files(collected: list[dict]) -> set[str]:
    """The files holding a test that ``make test-system``'s ``-m`` expression selects."""
    system = make_targets()["test-system"]
    return {t["id"].split("::")[0] for t in collected if selects(system, t["marks"])}


@pytest.mark.slow
def test_the_system_files_of_the_makefile_are_those_that_hold_a_system_test_each_once(collected) -> None:
    listed = make_variable("SYSTEM_FILES")[:-2] + make_variable("TIMED_SYSTEM") + make_variable("ALONE_SYSTEM")
    marked = system_files(collected)
    assert sorted(marked - set(listed)) == [] and sorted(set(listed) - marked) == []
    assert [f for f in listed if listed.count(f) > 1] == []


@pytest.mark.slow
def test_make_test_and_make_test_system_together_run_every_test_once(collected) -> None:
    targets = make_targets()
    assert {"test", "test-system", "test-vision"} <= set(targets), targets
    runs = {t["id"]: [k for k in ("test", "test-system") if selects(targets[k], t["marks"])] for t in collected}
    assert [i for i, k in runs.items() if len(k) != 1] == []  # none lost, none run twice
    assert sum(k == ["test-system"] for k in runs.values()) > 0 and sum(k == ["test"] for k in runs.values()) > 0


@pytest.mark.slow
def test_the_system_target_holds_the_files_docs_testing_md_lists(collected) -> None:
    row = next(line for line in (ROOT / "docs" / "testing.md").read_text().splitlines()
               if line.startswith("| `make test-system`"))
    listed = set(re.findall(r"`(tests/[\w/]+\.py)`", row))
    marked = system_files(collected)
    assert sorted(marked - listed) == [] and sorted(listed - marked) == []


@pytest.mark.slow
def test_the_slurm_tests_are_system_tests_and_the_torchvision_tier_holds_none(collected) -> None:
    assert [t["id"] for t in collected if "slurm" in t["fixtures"] and "system" not in t["marks"]] == []
    # the torchvision modules skip as a whole in .venv (not collected here): their marks are read from the source
    both = [p.name for p in TESTS.rglob("test_*.py")
            if applies_mark(text := p.read_text(), "torchvision") and applies_mark(text, "system")]
    assert both == []  # make test-vision runs `-m torchvision` in .venv-vision: no set-up or Slurm test there


def applies_mark(source: str, name: str) -> bool:
    """Whether a test module applies ``pytest.mark.<name>``: a decorator or its ``pytestmark``."""
    return re.search(rf"^\s*(?:@|pytestmark\s*=.*)pytest\.mark\.{name}\b", source, re.M) is not None
