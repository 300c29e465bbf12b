"""eval's counts are checked when the command line is read: a one-line usage error, exit code 2."""

from __future__ import annotations

import pytest

from panbench import REPO_ROOT
from panbench.cli import build_parser, main

# option, the smallest value it accepts
COUNTS = [("--batch-size", 1), ("--limit", 1), ("--cache-every", 1),
          ("--workers", 0), ("--cpu-procs", 0), ("--warmup", 0)]


@pytest.mark.parametrize("option,low", COUNTS)
def test_a_count_below_its_minimum_is_a_usage_error(option, low, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "mask2former", option, str(low - 1)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.strip() == (f"panbench eval: error: argument {option}: must be an integer >= {low}, got {low - 1}; "
                           "see `panbench eval --help`")


@pytest.mark.parametrize("option,low", COUNTS)
def test_a_count_that_is_not_an_integer_is_a_usage_error(option, low, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "mask2former", option, "2.5"])
    assert e.value.code == 2
    assert f"argument {option}: must be an integer >= {low}, got 2.5" in capsys.readouterr().err


@pytest.mark.parametrize("option,low", COUNTS)
def test_the_minimum_is_accepted(option, low) -> None:
    args = build_parser().parse_args(["eval", "--model", "mask2former", option, str(low)])
    assert getattr(args, option[2:].replace("-", "_")) == low


def test_a_file_that_is_not_a_checkpoint_is_not_offered_trust(tmp_path, capsys) -> None:
    from panbench.data.demo import make_demo

    demo_root = make_demo(REPO_ROOT / "data" / "demo")
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path / "res"), "--workers", "0", "--no-progress",
               "--checkpoint", str(REPO_ROOT / "README.md"), "--limit", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    assert "README.md: not a PyTorch checkpoint" in err and "--trust-checkpoint" not in err
    assert not (tmp_path / "res" / "runs").exists()
