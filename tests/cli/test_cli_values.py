"""eval's counts are checked when the command line is read: a one-line usage error, exit code 2."""

from __future__ import annotations

import pytest

from panbench.cli import build_parser, main

# option, the smallest value it accepts
COUNTS = [("--batch-size", 1), ("--limit", 1), ("--cache-every", 1),
          ("--workers", 0), ("--cpu-procs", 0), ("--warmup", 0)]


@pytest.mark.parametrize("option,low", COUNTS)
def test_a_count_below_its_minimum_is_a_usage_error(option, low, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "mask2former", option, str(low - 1)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: panbench eval" in err
    assert err.strip().splitlines()[-1] == (
        f"panbench eval: error: argument {option}: must be an integer >= {low}, got {low - 1}")


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
