"""Words a new user meets in the first hour (README's commands on the demo set and the COCO sample): each
says what is so and offers the fix that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from panbench.cli import build_parser, main


def _help(*cmd: str) -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    p = sub.choices[cmd[0]]
    return p.format_help() if len(cmd) == 1 else next(
        a for a in p._actions if a.dest == "data_command").choices[cmd[1]].format_help()


def test_missing_coco_offers_the_offline_demo(tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "mask2former", "--data-root", str(tmp_path / "coco"), "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "panbench data coco" in err and "--dataset demo" in err, err


def test_doctors_demo_suggestion_is_a_command_that_runs(tmp_path) -> None:
    import re
    import shlex

    from panbench.cli.doctor import data_check

    fix = data_check(tmp_path / "coco").fix
    (demo,) = [c for c in re.findall(r"`([^`]*)`", fix) if c.startswith("panbench eval")]
    assert demo == "panbench eval --model all --dataset demo"
    args = build_parser().parse_args(shlex.split(demo)[1:])  # parses: --model is given
    assert (args.command, args.model, args.dataset) == ("eval", "all", "demo")


def test_data_demo_says_when_the_set_was_already_there(tmp_path, capsys) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    from unittest import mock

    from panbench.data.demo import stamp_text

    (root / ".panbench-demo").write_text(stamp_text(0))  # the stamp of a set generated with seed 0: nothing is written

    with mock.patch("panbench.data.datasets.load_dataset") as load, \
            mock.patch("panbench.data.demo.tree_digest", return_value="0" * 64):
        load.return_value.samples = [object()] * 60
        load.return_value.fingerprint.return_value = "4237f2e7" * 8
        assert main(["data", "demo", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "already there" in out and "--force" in out, out


@pytest.mark.parametrize("cmd", ["speed", "eval", "robustness"])
def test_limit_says_what_it_does_in_each_command(cmd) -> None:
    text = " ".join(_help(cmd).split())
    assert "--limit LIMIT use only the first N images" in text, text


def test_doctor_is_summarised_for_either_ops_backend() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    summary = next(a.help for a in sub._choices_actions if a.dest == "doctor")
    assert "compiled mmcv ops" not in summary and "mmcv's ops" in summary, summary


def _not_built_claims(readme: str) -> list[str]:
    """The README's limits items that say something is not built."""
    items = readme.split("\n- ")
    return [i for i in items if "not built" in i.lower()]


def test_readme_lists_no_built_command_as_not_built() -> None:
    """No README item says a built thing is not built: a command `panbench` has (`speed` is FPS by protocol and
    torch.compile), or AP and mIoU of `hf:` models (built: tests/models/test_hf_ap.py)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    built = {"FPS-by-protocol": "speed", "torch.compile": "speed", "`panbench submit`": "submit",
             "`panbench status`": "status"}
    for item in _not_built_claims(readme):
        assert [w for w, cmd in built.items() if w in item and cmd in sub.choices] == [], item
        assert not ("hf:" in item and ("AP" in item or "mIoU" in item)), item


def test_the_not_built_check_catches_the_old_hf_line() -> None:
    old = "x\n- Not built yet: AP and a semantic mIoU for `hf:` models (mmdet models have AP).\n- y"
    (item,) = _not_built_claims(old)
    assert "hf:" in item and "AP" in item


@pytest.mark.parametrize("cmd", ["table", "plot", "report"])
def test_an_only_dataset_without_records_names_the_datasets_that_have_some(cmd, tmp_path, capsys) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "reporting"))
    from analysis_records import add_run, ground_truth

    gt, images = ground_truth(tmp_path / "gt", n_images=2)
    add_run(tmp_path / "res", "model-a", gt, images, pred_seed=1)
    assert main([cmd, "--results", str(tmp_path / "res"), "--only-dataset", "cocoo"]) == 2
    err = capsys.readouterr().err
    assert "records exist for synth" in err and "--only-dataset synth" in err and "run `panbench eval`" not in err, err


def test_model_all_says_which_models_it_is() -> None:
    """`--model all` is the zoo on coco and the demo models with --dataset demo (make demo's command)."""
    from panbench.cli.running import models_and_dataset

    text = " ".join(_help("eval").split())
    assert "'all' (the registered models of the dataset: the MMDetection zoo's for coco, the three demo models with " \
        "--dataset demo, the transformers checkpoints of the others: panbench ls --only-dataset NAME)" in text, text
    specs, dataset = models_and_dataset("all", "demo")
    assert dataset == "demo" and len(specs) == 3 and all(s.name.startswith("demo-") for s in specs)
    specs, dataset = models_and_dataset("all", None)
    assert dataset == "coco" and not any(s.name.startswith(("demo-", "hf-")) for s in specs)
