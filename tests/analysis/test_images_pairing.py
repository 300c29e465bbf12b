"""`panbench images --run A --vs B` with model names pairs the runs as `compare` does: the latest run of A that has
a run of B on the same images, not the latest of each (a later `--limit` run of A made it refuse, with a fix that
did not help); without `--vs`, the run `table` leads with; it names the runs it read (on stderr), and writes
`--per-image` only for runs it can pair."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_analysis_cli import _name, _write

from panbench.cli import main


@pytest.fixture
def results(tmp_path: Path, capsys) -> Path:
    """sys-a and sys-b on the same 12 images, then sys-a alone on 5 other images (its latest run)."""
    res = tmp_path / "res"
    full = _write(tmp_path / "full")
    _name(full, capsys, res, "sys-a", 0)
    _name(full, capsys, res, "sys-b", 1)
    _name(_write(tmp_path / "few", n=5, seed=3, systems=1), capsys, res, "sys-a", 0)
    return res


def test_vs_pairs_the_runs_on_the_same_images(results, capsys) -> None:
    assert main(["images", "--run", "sys-a", "--vs", "sys-b", "--results", str(results)]) == 0, \
        capsys.readouterr().err
    cap = capsys.readouterr()
    assert "12 images" in cap.err and "A: sys-a" in cap.err and "B: sys-b" in cap.err  # the runs it read, on stderr
    rows = [x for x in cap.out.splitlines() if x.strip()[:1].isdigit()]
    assert len(rows) == 10  # --worst 10 of the 12 paired images


def test_without_vs_the_run_the_table_leads_with_is_taken_and_named(results, capsys) -> None:
    """The table ranks the 12-image runs first (the dataset it saw first): `images --run sys-a` reads sys-a's run
    there, the table's first row of sys-a, not its latest (the 5-image run)."""
    assert main(["table", "--results", str(results), "--format", "csv"]) == 0
    first = next(x for x in capsys.readouterr().out.splitlines()[1:] if x.startswith("sys-a,"))
    assert ",12," in first  # the table's first row of sys-a: its 12-image run
    assert main(["images", "--run", "sys-a", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert "A: sys-a on syn (12 images" in err, err


def test_runs_on_other_images_are_refused_before_any_file_is_written(results, tmp_path, capsys) -> None:
    latest_a = sorted((results / "runs").glob("*sys-a*.json"))[-1]  # the 5-image run, as a path: that run
    out = tmp_path / "per_image.csv"
    rc = main(["images", "--run", str(latest_a), "--vs", "sys-b", "--per-image", str(out), "--results", str(results)])
    err = capsys.readouterr().err
    assert rc == 2 and "different images" in err and "--only-dataset" not in err, err
    assert not out.exists()
