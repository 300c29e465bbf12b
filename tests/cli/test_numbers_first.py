"""Nothing computed is lost and nothing is taken unchecked: every command prints its numbers before it writes its
files, a write that fails after the up-front checks is one line (exit 2) with the numbers already on the screen;
the up-front check creates a file where the command will write; every numeric option is range-checked as the
command line is read, and an option without effect in the run's settings is refused; the record keeps the batch
size asked and the largest batch that formed; messages name what is wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import panbench.cli.score as score
from panbench.cli import main
from panbench.records.io import load_records, unwritable

FAST = ["--workers", "0", "--cpu-procs", "1", "--no-progress"]
UNMAKEABLE = Path("/proc/panbench-results")  # no file or folder can be made under /proc, root or not


def _one_line(capsys) -> tuple[str, str]:
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("panbench: error: "), err
    return out, err.strip()


def _score_files(root: Path) -> list[str]:
    a = root / "annotations"
    return ["--gt-json", str(a / "panoptic_val2017.json"), "--gt-dir", str(a / "panoptic_val2017"),
            "--pred-json", str(a / "panoptic_val2017.json"), "--pred-dir", str(a / "panoptic_val2017")]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_the_up_front_check_creates_a_file_so_a_folder_no_file_can_be_made_in_is_refused(tmp_path) -> None:
    assert "cannot be created in /proc" in (unwritable(UNMAKEABLE) or "")  # os.access says yes here for root
    assert unwritable(tmp_path / "new" / "deeper") is None
    assert list(tmp_path.iterdir()) == []  # the probe removed what it made, and made no folder
    (tmp_path / "f").write_text("x")
    assert unwritable(tmp_path / "f" / "sub") == f"{tmp_path / 'f'} is a file, not a folder"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_score_prints_its_numbers_before_a_record_write_that_fails_is_one_line(demo_root, tmp_path, monkeypatch,
                                                                                capsys) -> None:
    assert main(["score", *_score_files(demo_root), "--name", "gt", "--results", str(UNMAKEABLE)]) == 2
    assert "nothing was run" in _one_line(capsys)[1]  # refused up front
    monkeypatch.setattr(score, "check_writable", lambda folder, option: None)  # the check sees nothing wrong
    assert main(["score", *_score_files(demo_root), "--name", "gt", "--results", str(UNMAKEABLE), "--json"]) == 2
    out, err = _one_line(capsys)
    assert json.loads(out)["PQ"] == 100.0  # the numbers are on the screen
    assert str(UNMAKEABLE) in err and err.endswith("or pass another --results")


def test_eval_prints_its_numbers_before_a_record_write_that_fails_and_records_the_largest_batch(
        demo_root, tmp_path, monkeypatch, capsys) -> None:
    """One eval of 2 images at batch 64: the record keeps batch 64 as asked and the largest batch that formed;
    the same run with a record that cannot be written prints its table first, then one line, exit 2."""
    run = ["eval", "--model", "demo-panoptic-fpn", "--data-root", str(demo_root), "--limit", "2", "--batch-size",
           "64", "--flops-images", "0", "--no-ap", *FAST]
    assert main([*run, "--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    (rec,) = load_records(tmp_path / "res")
    assert rec.batch_size == 64 and rec.largest_batch is not None and 1 <= rec.largest_batch <= 2
    assert f"batch size 64 asked; the largest batch held {rec.largest_batch} images" in out
    assert out.index("PQ") < out.index("record: ")

    import panbench.records.io as records

    def fails(results_dir, rec, analysis=None):
        raise FileNotFoundError(2, "No such file or directory", str(Path(results_dir) / "runs" / "x.json"))

    monkeypatch.setattr(records, "write_record", fails)  # a write that fails after the up-front checks
    assert main([*run, "--results", str(tmp_path / "res")]) == 2  # the images come from the resume cache
    out, err = capsys.readouterr()
    assert err.startswith("resuming demo-panoptic-fpn: 2 of 2 images") and "Traceback" not in err
    err = err.splitlines()[-1]
    assert "demo-panoptic-fpn" in out and "PQ" in out and "record: " not in out
    assert str(tmp_path / "res" / "runs") in err and "--results" in err


def test_report_refuses_a_folder_where_its_file_goes_before_it_runs(demo_root, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    assert main(["score", *_score_files(demo_root), "--name", "gt", "--results", str(res), "--no-analysis"]) == 0
    capsys.readouterr()
    (tmp_path / "out").mkdir()
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "out")]) == 2
    assert _one_line(capsys)[1].startswith(f"panbench: error: --out {tmp_path / 'out'}: a folder, not a file")


SEED = "must be an integer in 0..4294967295 (a seed)"


@pytest.mark.parametrize(("argv", "says"), [
    (["eval", "--model", "demo-mask2former", "--seed", "-1"], f"argument --seed: {SEED}, got -1"),
    (["eval", "--model", "demo-mask2former", "--seed", str(2**32)], f"argument --seed: {SEED}"),
    (["data", "demo", "--data-seed", "-1"], f"argument --data-seed: {SEED}, got -1"),
    (["compare", "a", "b", "--bootstrap-seed", "-3"], f"argument --bootstrap-seed: {SEED}"),
    (["eval", "--model", "m", "--postprocess", "maskwise", "--pp-keep", "7"],
     "argument --pp-keep: must be a number in [0, 1], got 7"),
    (["eval", "--model", "m", "--postprocess", "maskwise", "--pp-conf", "-0.1"], "argument --pp-conf: must be a "
     "number in [0, 1]"),
    (["eval", "--model", "m", "--postprocess", "maskwise", "--pp-alpha", "-5"],
     "argument --pp-alpha: must be a number >= 0, got -5"),
    (["eval", "--model", "m", "--postprocess", "maskwise", "--pp-beta", "nan"], "argument --pp-beta: must be a "
     "number >= 0"),
    (["eval", "--model", "m", "--corruption", "fog", "--severity", "9"], "argument --severity: must be an integer "
     "in 1..5"),
    (["eval", "--model", "m", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
])
def test_a_numeric_option_out_of_its_range_is_one_line_naming_it_and_its_range(argv, says, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize(("argv", "says"), [
    (["eval", "--model", "demo-mask2former", "--pp-alpha", "0.5"], "--pp-alpha sets Panoptic SegFormer's mask-wise "
     "merging, which runs with --postprocess maskwise only; add --postprocess maskwise or leave out --pp-alpha"),
    (["eval", "--model", "demo-mask2former", "--postprocess", "argmax", "--pp-keep", "0.5", "--pp-conf", "0.3"],
     "leave out --pp-conf and --pp-keep"),
    (["score", "--gt-json", "g", "--gt-dir", "g", "--pred-json", "p", "--pred-dir", "p", "--dataset-name", "x"],
     "--dataset-name x files the record of --name: add --name SYSTEM"),
])
def test_an_option_without_effect_in_the_runs_settings_is_refused_with_the_option_it_needs(argv, says,
                                                                                        capsys) -> None:
    assert main(argv) == 2
    assert says in _one_line(capsys)[1]


def test_the_maskwise_options_reach_the_run_and_default_as_before() -> None:
    from panbench.cli import build_parser
    from panbench.evaluation.options import EvalOptions
    from panbench.models.postprocess import PostProcess

    parse = build_parser("eval").parse_args
    assert EvalOptions.from_cli(parse(["eval", "--model", "m", "--device", "cpu"])).postprocess == PostProcess()
    given = parse(["eval", "--model", "m", "--device", "cpu", "--postprocess", "maskwise", "--pp-alpha", "0",
                   "--pp-keep", "1"])
    assert EvalOptions.from_cli(given).postprocess == PostProcess("maskwise", alpha=0.0, keep_thr=1.0)


def test_an_image_of_the_predictions_where_the_ground_truths_should_be_is_named(coco_sample, tmp_path,
                                                                               capsys) -> None:
    a = coco_sample / "annotations"
    pred = json.loads((a / "panoptic_val2017.json").read_text())
    pred["annotations"][0]["image_id"] = 999
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    argv = ["score", "--gt-json", str(a / "panoptic_val2017.json"), "--gt-dir", str(a / "panoptic_val2017"),
            "--pred-dir", str(a / "panoptic_val2017"), "--no-analysis"]
    assert main([*argv, "--pred-json", str(tmp_path / "pred.json")]) == 2
    err = _one_line(capsys)[1]
    assert "image 999 is not an image of the ground truth" in err and "image 142238" in err
    assert main([*argv, "--pred-json", os.devnull]) == 2
    assert _one_line(capsys)[1].endswith(f"{os.devnull}: prediction JSON is empty (a device, not a file); pass the "
                                         "JSON file itself")
    (tmp_path / "empty.json").write_text("\n")
    assert main([*argv, "--pred-json", str(tmp_path / "empty.json")]) == 2
    assert "prediction JSON is empty;" in _one_line(capsys)[1]


def test_a_subset_line_that_is_not_a_number_is_called_so_on_a_dataset_of_numbered_images(demo_root,
                                                                                          tmp_path) -> None:
    from panbench.data.datasets import load_dataset
    from panbench.errors import InputError

    (tmp_path / "subset.txt").write_text("2000\nabc\n")
    with pytest.raises(InputError, match="'abc' is not a number, and the image ids of .* are numbers"):
        load_dataset(demo_root, name="demo", subset=tmp_path / "subset.txt")
    (tmp_path / "subset.txt").write_text("2000\n99999\n")
    with pytest.raises(InputError, match="image id 99999 is not in"):
        load_dataset(demo_root, name="demo", subset=tmp_path / "subset.txt")
