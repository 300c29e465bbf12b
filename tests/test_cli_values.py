"""Command-line values a new user might try: each refused in one line with exit code 2, no traceback,
before anything is loaded or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from panbench.cli import main
from panbench.demo_data import make_demo
from panbench.registry import REPO_ROOT


@pytest.fixture(scope="module")
def demo_root() -> Path:
    return make_demo(REPO_ROOT / "data" / "demo")


def _eval(demo_root: Path, results: Path, *extra: str) -> list[str]:
    return ["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
            "--results", str(results), "--workers", "0", "--no-progress", *extra]


@pytest.mark.parametrize("option,value,expected", [
    ("--batch-size", "0", "argument --batch-size: 0 is not allowed: give an integer >= 1"),
    ("--batch-size", "two", "argument --batch-size: 'two' is not an integer"),
    ("--limit", "-3", "argument --limit: -3 is not allowed: give an integer >= 1"),
    ("--limit", "0", "argument --limit: 0 is not allowed: give an integer >= 1"),
    ("--workers", "-1", "argument --workers: -1 is not allowed: give an integer >= 0"),
    ("--cpu-procs", "-2", "argument --cpu-procs: -2 is not allowed: give an integer >= 0"),
    ("--warmup", "-1", "argument --warmup: -1 is not allowed: give an integer >= 0"),
    ("--cache-every", "0", "argument --cache-every: 0 is not allowed: give an integer >= 1"),
])
def test_bad_numbers_are_refused_in_one_line(demo_root, tmp_path, capsys, option, value, expected) -> None:
    with pytest.raises(SystemExit) as e:
        main(_eval(demo_root, tmp_path / "res", option, value))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("panbench eval: error: " + expected) and "see `panbench eval --help`" in err
    assert not (tmp_path / "res").exists()  # no record, no cache


def test_edge_values_are_accepted(demo_root, tmp_path) -> None:
    from panbench.cli import build_parser

    args = build_parser().parse_args(_eval(demo_root, tmp_path, "--limit", "1", "--batch-size", "1", "--workers", "0",
                                           "--cpu-procs", "0", "--warmup", "0", "--cache-every", "1"))
    assert (args.limit, args.batch_size, args.workers, args.cpu_procs, args.warmup, args.cache_every) == (1, 1, 0, 0,
                                                                                                         0, 1)


def test_a_file_that_is_not_a_checkpoint_is_not_offered_trust(demo_root, tmp_path, capsys) -> None:
    rc = main(_eval(demo_root, tmp_path / "res", "--checkpoint", str(REPO_ROOT / "README.md"), "--limit", "1"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    assert "README.md: not a PyTorch checkpoint" in err and "--trust-checkpoint" not in err
    assert not (tmp_path / "res" / "runs").exists()
