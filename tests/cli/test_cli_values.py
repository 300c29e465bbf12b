"""eval's counts are checked when the command line is read: a one-line usage error, exit code 2."""

from __future__ import annotations

import pytest

from panbench.cli import build_parser, main
from panbench.package import REPO_ROOT

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


def test_cpu_procs_above_the_cores_is_a_one_line_warning_and_the_run_goes_on(tmp_path, monkeypatch, capsys) -> None:
    import os

    from panbench.data.demo import make_demo
    from panbench.evaluation.options import cpu_procs_note

    assert cpu_procs_note(4, cores=4) is None
    assert cpu_procs_note(5, cores=4) == ("panbench: warning: --cpu-procs 5 is more than the 4 cores this process may "
                                          "use: the processes share them (no faster on the CPU, the same numbers); "
                                          "going on")
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun each rank is one process
    assert cpu_procs_note(5, cores=4) is None
    monkeypatch.delenv("WORLD_SIZE")
    many = len(os.sched_getaffinity(0)) + 1
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root",
               str(make_demo(REPO_ROOT / "data" / "demo")), "--results", str(tmp_path), "--workers", "0",
               "--no-progress", "--limit", "2", "--device", "cpu", "--cpu-procs", str(many)])
    warned = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert rc == 0 and warned == [cpu_procs_note(many)] and len(list((tmp_path / "runs").glob("*.json"))) == 1
