"""The old spelling of each renamed option still works for one version, with a one-line note on stderr
(panbench.cli.options.DeprecatedAlias); the new spelling gives no note; --help lists only the new one."""

from __future__ import annotations

import pytest

from panbench.cli import build_parser, main

SCORE = ["score", "--gt-json", "g.json", "--gt-dir", "g", "--pred-json", "p.json", "--pred-dir", "p"]

# command line before the option, old spelling, new spelling, value given, attribute, value parsed
ALIASES = [
    (["ls"], "--dataset", "--only-dataset", "demo", "only_dataset", "demo"),
    (["table"], "--dataset", "--only-dataset", "demo", "only_dataset", "demo"),
    (["plot"], "--dataset", "--only-dataset", "demo", "only_dataset", "demo"),
    (["report"], "--dataset", "--only-dataset", "demo", "only_dataset", "demo"),
    (["compare", "a", "b"], "--dataset", "--only-dataset", "demo", "only_dataset", "demo"),
    (["images", "--run", "a"], "--dataset", "--only-dataset", "demo", "only_dataset", "demo"),
    (["table"], "--boundary", "--boundary-pq", None, "boundary", True),
    (["compare", "a", "b"], "--seed", "--bootstrap-seed", "7", "bootstrap_seed", 7),
    (["images"], "--model", "--run", "a", "run", "a"),
    (SCORE, "--dataset", "--dataset-name", "coco", "dataset_name", "coco"),
    (SCORE, "--workers", "--procs", "3", "procs", 3),
    (["data", "demo"], "--seed", "--data-seed", "4", "data_seed", 4),
]


def _parse(argv: list[str], capsys) -> tuple[object, str]:
    args = build_parser().parse_args(argv)
    return args, capsys.readouterr().err


@pytest.mark.parametrize("before, old, new, value, attr, parsed", ALIASES,
                         ids=[f"{a[0][0]} {a[1]}" for a in ALIASES])
def test_the_old_spelling_still_works_with_a_note(before, old, new, value, attr, parsed, capsys) -> None:
    given = [value] if value is not None else []
    args, err = _parse([*before, old, *given], capsys)
    assert getattr(args, attr) == parsed
    assert len(err.strip().splitlines()) == 1 and f"note: {old} is deprecated" in err and f"use {new}" in err
    args, err = _parse([*before, new, *given], capsys)
    assert getattr(args, attr) == parsed and err == ""


@pytest.mark.parametrize("cmd, old", [(["table"], "--boundary"), (["compare"], "--seed"), (["images"], "--model"),
                                      (["score"], "--workers"), (["data", "demo"], "--seed")])
def test_help_lists_only_the_new_spelling(cmd, old, capsys) -> None:
    with pytest.raises(SystemExit):
        main([*cmd, "--help"])
    assert f"{old} " not in capsys.readouterr().out.replace("\n", " ")


def test_the_old_spelling_runs_a_command(capsys) -> None:
    assert main(["ls", "--dataset", "demo"]) == 0
    old, err = capsys.readouterr()
    assert err.strip() == "panbench ls: note: --dataset is deprecated and goes in the next version; use --only-dataset"
    assert main(["ls", "--only-dataset", "demo"]) == 0
    assert capsys.readouterr() == (old, "")
    assert main(["ls"]) == 0
    assert "demo-mask2former" in old and len(capsys.readouterr().out) > len(old)  # filtered


def test_images_needs_run_a(capsys) -> None:
    assert main(["images"]) == 2
    assert "--run is required" in capsys.readouterr().err
