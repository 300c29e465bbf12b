"""An analysis is its row of ``ANALYSES`` (panbench/analyses.py: no function named there), its fields of
``RunRecord`` (panbench/records/schema.py), its compute function registered by ``@computes(key)`` in its module
under panbench/analysis/ (imported by the package's ``__init__``) and its table columns and terminal text registered
by ``@columns_of(key)`` / ``@text_of(key)`` in panbench/reporting/analysis_views.py.

* every row has its functions and its fields are record fields (``ANALYSIS_FIELDS`` reads them);
* an analysis's record fields and column names are written nowhere else in the package but in the places
  :data:`BEYOND_THE_ROW` lists (what reads an analysis that its row does not hold: the plots, the default
  table's PQ interval, boundary PQ's own scoring pass);
* a toy analysis written so (a copy of the package with one module added, its import line and its row, field and
  views) shows up in ``panbench score``'s text, JSON and record and in ``panbench table``; without its decorator
  ``score`` names the missing function.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panbench.analyses import ANALYSES, Analysis
from panbench.analysis.collect import computes
from panbench.data.synth import coco_like_categories, perturb, random_image, write_panoptic
from panbench.package import REPO_ROOT
from panbench.records.schema import ANALYSIS_FIELDS, RECORD_FIELDS
from panbench.reporting.analysis_views import columns_of, kinds_of, text_of

PACKAGE = REPO_ROOT / "panbench"
ROW_FILES = {"panbench/analyses.py", "panbench/records/schema.py", "panbench/analysis/__init__.py"}  # + exports
REGISTRIES = (computes, columns_of, text_of)  # every row has one of each; kinds_of is optional
# files that name an analysis beyond its 3: what reads it that its row does not hold, and why (an analysis not
# listed is read nowhere else: a new one needs no entry)
BEYOND_THE_ROW = {
    "ci": {"panbench/reporting/analysis_plots.py",  # its plot
           "panbench/reporting/grid_plots.py",  # a grid figure's interval bands
           "panbench/reporting/tables.py",  # the default table's PQ interval; the paired difference's cell
           "panbench/reporting/labels.py",  # a run too small for an interval: re-running does not help
           "panbench/reporting/grids.py"},  # a grid's PQ bands against each value, its settings' intervals
    "by_size": {"panbench/reporting/analysis_plots.py"},  # its plot
    "errors": {"panbench/reporting/analysis_plots.py"},  # its plot
    # boundary PQ is also a scoring pass over the pixels (the image result's boundary part), asked by --boundary
    "boundary": {"panbench/cli/options.py", "panbench/evaluation/options.py",  # --boundary of score and eval
                 "panbench/pq/result.py",  # the image result's boundary part
                 "panbench/evaluation/record_fields.py"},  # a resume cache made without it lacks its sums
    "dagger": set(),
    "score_threshold": {"panbench/reporting/analysis_plots.py",  # its figure
                        "panbench/cli/compare.py"},  # B - A at each run's best threshold
    "calibration": {"panbench/reporting/analysis_plots.py"},  # its figure
}


def row_files(a: Analysis) -> set[str]:
    """The files an analysis is: its row's, its record field's and its registered functions' modules."""
    fns = [r[a.key] for r in REGISTRIES] + [f for f in [kinds_of.functions.get(a.key)] if f is not None]
    return ROW_FILES | {f.__module__.replace(".", "/") + ".py" for f in fns}


def names_outside(a: Analysis, allowed: set[str]) -> list[str]:
    """``file:line`` of each place outside ``allowed`` that writes one of the analysis's record fields (quoted, or
    read off a record) or its columns' names."""
    words = [*a.fields, *a.headers]
    pat = re.compile("|".join([rf"""["']{re.escape(w)}["']""" for w in words]
                              + [rf"\b(?:r|rec|record|res)\.{re.escape(f)}\b" for f in a.fields]))
    hits = []
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(REPO_ROOT).as_posix()
        if rel not in allowed:
            hits += [f"{rel}:{i}" for i, line in enumerate(p.read_text().splitlines(), 1) if pat.search(line)]
    return hits


def test_every_row_resolves_and_its_fields_are_the_records() -> None:
    for a in ANALYSES:
        for registry in REGISTRIES:
            assert callable(registry[a.key]), (registry.what, a.key)
        assert set(a.fields) <= set(RECORD_FIELDS), a.key
    assert all(set(r.functions) <= {a.key for a in ANALYSES} for r in (*REGISTRIES, kinds_of))
    assert list(ANALYSIS_FIELDS[:-1]) == [f for a in ANALYSES for f in a.fields]
    assert len({a.key for a in ANALYSES}) == len(ANALYSES) and set(BEYOND_THE_ROW) <= {a.key for a in ANALYSES}


def test_a_function_registered_for_no_row_or_a_second_time_is_refused() -> None:
    with pytest.raises(LookupError, match="no analysis 'nope' in panbench/analyses.py's ANALYSES; add its row"):
        computes("nope")
    ci = computes["ci"]
    with pytest.raises(LookupError, match="two compute functions for analysis 'ci': panbench.analysis.bootstrap"):
        computes("ci")(lambda inp: {})
    assert computes["ci"] is ci


def test_an_analysis_is_named_only_in_its_files() -> None:
    for a in ANALYSES:
        assert names_outside(a, row_files(a) | BEYOND_THE_ROW.get(a.key, set())) == [], a.key


def test_the_name_check_finds_a_field_written_elsewhere() -> None:
    """What the check above guards: a file reading ``pq_dagger`` off a record by hand is found."""
    (a,) = [a for a in ANALYSES if a.key == "dagger"]
    allowed = row_files(a) - {"panbench/analysis/metrics.py"}  # as if metrics.py were any other module
    assert any(h.startswith("panbench/analysis/metrics.py:") for h in names_outside(a, allowed))


TOY_MODULE = '''
"""A toy analysis: the number of true positives."""
from panbench.analysis.collect import computes


@computes("toy")
def fields(inp):
    return {"toy_tp": int(len(inp.aset.tp_cats))}
'''
TOY_VIEWS = '''

@columns_of("toy")
def toy_columns(r: RunRecord) -> dict[str, Any]:
    return {"PQ": r.metrics["PQ"], "toy_tp": r.toy_tp}


@text_of("toy")
def toy_text(res: Mapping[str, Any]) -> list[str]:
    return [f"toy TPs {res['toy_tp']}"] if res.get("toy_tp") is not None else []
'''
TOY_ROW = '''    Analysis("toy", ("toy_tp",), "toy: true positives", "--toy", "the toy's true positives",
             headers={"toy_tp": "toy TPs"}),
)


class Registry:'''
TOY_IMPORT = "from panbench.analysis import scoring, toy  # noqa: F401\n"
TOY_FIELD = "    toy_tp: int | None = None  # the toy analysis: true positives\n"


def toy_package(root: Path, decorated: bool = True) -> Path:
    """A copy of the package with the toy analysis: one module added (``decorated``: its function registered) and
    imported, one row, one record field, its columns and text."""
    pkg = root / "panbench"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "analysis" / "toy.py").write_text(TOY_MODULE if decorated else TOY_MODULE.replace('@computes("toy")', ""))
    init = pkg / "analysis" / "__init__.py"
    init.write_text(re.sub(r"from panbench.analysis import scoring .*\n", TOY_IMPORT, init.read_text(), count=1))
    views = pkg / "reporting" / "analysis_views.py"
    views.write_text(views.read_text() + TOY_VIEWS)
    rows = pkg / "analyses.py"
    rows.write_text(rows.read_text().replace(")\n\n\nclass Registry:", TOY_ROW, 1))
    schema = pkg / "records" / "schema.py"
    text = schema.read_text()
    at = text.index("    corruption: CorruptionBlock")
    schema.write_text(text[:at] + TOY_FIELD + text[at:])
    return pkg


def changed_files(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out = [f"{n}" for n in cmp.left_only + cmp.right_only + cmp.diff_files]
    for name, sub in cmp.subdirs.items():
        out += [f"{name}/{n}" for n in changed_files(Path(sub.left), Path(sub.right))]
    return sorted(out)


def toy_files(tmp_path: Path) -> tuple[list[str], Path]:
    """``score``'s arguments of 3 synthetic images, and the results folder."""
    cats = coco_like_categories()
    rng = np.random.default_rng(0)
    gt = [(i, random_image(rng, 40 + 3 * i, 50, cats)) for i in range(1, 4)]
    gj, gd = write_panoptic(tmp_path, "gt", gt, cats)
    pj, pd = write_panoptic(tmp_path, "pred", [(i, perturb(rng, g, cats)) for i, g in gt], cats)
    return ["score", "--gt-json", str(gj), "--gt-dir", str(gd), "--pred-json", str(pj), "--pred-dir", str(pd)], \
        tmp_path / "results"


def run_copy(pkg: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pkg.parent)}
    return subprocess.run([sys.executable, "-m", "panbench", *args], env=env, cwd=cwd, text=True,
                          capture_output=True)


def test_a_toy_analysis_registered_where_it_is_defined_shows_in_score_and_table(tmp_path: Path) -> None:
    pkg = toy_package(tmp_path / "copy")
    assert changed_files(PACKAGE, pkg) == ["analyses.py", "analysis/__init__.py", "analysis/toy.py",
                                           "records/schema.py", "reporting/analysis_views.py"]
    score, results = toy_files(tmp_path)

    def panbench(*args: str) -> str:
        done = run_copy(pkg, tmp_path, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = json.loads(panbench(*score, "--json", "--name", "toy run", "--results", str(results)))
    assert out["toy_tp"] > 0
    assert f"toy TPs {out['toy_tp']}" in panbench(*score)
    (record,) = (results / "runs").glob("*.json")
    assert json.loads(record.read_text())["toy_tp"] == out["toy_tp"]
    table = panbench("table", "--results", str(results), "--toy", "--format", "csv")
    assert table.splitlines()[0].endswith("toy_tp") and table.splitlines()[1].endswith(str(out["toy_tp"]))
    assert "toy TPs" in panbench("table", "--results", str(results), "--toy")
    assert "--toy" in panbench("table", "--help")


def test_a_toy_analysis_without_its_decorator_fails_naming_the_decorator(tmp_path: Path) -> None:
    pkg = toy_package(tmp_path / "copy", decorated=False)
    score, _ = toy_files(tmp_path)
    done = run_copy(pkg, tmp_path, *score, "--json")
    assert done.returncode != 0
    assert "analysis 'toy' of panbench/analyses.py has no compute function; decorate one with " \
           "@panbench.analysis.collect.computes('toy')" in done.stderr
