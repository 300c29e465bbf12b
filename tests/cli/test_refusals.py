"""What a user is refused, and what they are told: one line, exit code 2, nothing written; suggestions that
name what exists (the dataset or model meant, the folder beside, a quoted command); the small promises of
the console (Ctrl-C resumes, one dataset hash, help text, staging folders cleaned up)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from panbench.cli import main
from panbench.package import REPO_ROOT

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"
FAST = ["--workers", "0", "--cpu-procs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def demo_results(demo_root, tmp_path_factory) -> Path:
    """Two demo models evaluated on 2 images."""
    res = tmp_path_factory.mktemp("results")
    assert main(["eval", "--model", "demo-mask2former,demo-maskformer", "--data-root", str(demo_root),
                 "--results", str(res), "--limit", "2", *FAST]) == 0
    return res


def _one_line(capsys) -> str:
    """The error, one line; the phase lines before it (panbench.announce: a refusal found after seconds of work)
    left out."""
    err = "".join(f"{line}\n" for line in capsys.readouterr().err.splitlines() if not line.endswith("..."))
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("panbench: error: "), err
    return err.strip()


def _copy_demo(demo_root: Path, dst: Path, edit=None) -> Path:
    """The demo set's annotation file (and its PNG folder, linked) under ``dst``, edited by ``edit``."""
    ann = dst / "annotations"
    ann.mkdir(parents=True)
    (ann / "panoptic_val2017").symlink_to(demo_root / "annotations" / "panoptic_val2017")
    (dst / "val2017").symlink_to(demo_root / "val2017")
    data = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    if edit:
        edit(data)
    (ann / "panoptic_val2017.json").write_text(json.dumps(data))
    return dst


# --- empty data -------------------------------------------------------------------------------------------------

def test_an_annotation_file_without_images_is_refused_by_eval_and_not_ok_in_doctor(demo_root, tmp_path,
                                                                                   capsys) -> None:
    root = _copy_demo(demo_root, tmp_path / "empty", lambda d: d.update(images=[], annotations=[]))
    res = tmp_path / "res"
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(root), "--results", str(res), *FAST]) == 2
    assert "'images' is empty, there is nothing to evaluate" in _one_line(capsys)
    assert not res.exists()  # no record, no cache, no folder
    from panbench.cli.doctor import data_check

    check = data_check(root)
    assert not check.ok and "'images' is empty" in check.detail
    full = data_check(_copy_demo(demo_root, tmp_path / "two", lambda d: (
        d.update(images=d["images"][:2], annotations=d["annotations"][:2]))))
    assert full.ok and full.detail.endswith("(2 images)")


def test_empty_categories_are_called_empty_not_missing(demo_root, tmp_path, capsys) -> None:
    root = _copy_demo(demo_root, tmp_path / "nocats", lambda d: d.update(categories=[]))
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(root), "--results",
                 str(tmp_path / "res"), *FAST]) == 2
    err = _one_line(capsys)
    assert "'categories' is empty" in err and "missing field" not in err


def test_score_refuses_ground_truth_without_annotations(demo_root, tmp_path, capsys) -> None:
    gt = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    gt["images"], gt["annotations"] = [], []
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    pred = {"annotations": [], "categories": gt["categories"]}
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    (tmp_path / "png").mkdir()
    assert main(["score", "--gt-json", str(tmp_path / "gt.json"), "--gt-dir", str(tmp_path / "png"), "--pred-json",
                 str(tmp_path / "pred.json"), "--pred-dir", str(tmp_path / "png"), "--name", "x", "--results",
                 str(tmp_path / "res")]) == 2
    assert "no image to score ('annotations' is empty)" in _one_line(capsys)
    assert not (tmp_path / "res").exists()


# --- folders that cannot be written -----------------------------------------------------------------------------

def test_eval_refuses_a_results_folder_under_a_file_before_running(demo_root, tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results",
                 str(tmp_path / "file" / "sub"), "--limit", "1", *FAST]) == 2
    err = _one_line(capsys)
    assert f"{tmp_path / 'file' / 'sub'}: cannot be written ({tmp_path / 'file'} is a file" in err
    assert "--results" in err
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results",
                 str(tmp_path / "res"), "--save-predictions", str(tmp_path / "file" / "p"), "--limit", "1",
                 *FAST]) == 2
    assert "--save-predictions" in _one_line(capsys) and not (tmp_path / "res").exists()


def test_plot_report_and_score_name_refuse_unwritable_folders_in_one_line(demo_results, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    shutil.copytree(demo_results / "runs", res / "runs")
    (res / "plots").write_text("a file where the plots folder goes")
    assert main(["plot", "--results", str(res)]) == 2
    assert f"{res / 'plots'}: cannot be written" in _one_line(capsys)
    (tmp_path / "file").write_text("x")
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "file" / "r.html")]) == 2
    assert "--out" in _one_line(capsys)
    a = REPO_ROOT / "data" / "demo" / "annotations"
    files = ["--gt-json", str(a / "panoptic_val2017.json"), "--gt-dir", str(a / "panoptic_val2017"),
             "--pred-json", str(a / "panoptic_val2017.json"), "--pred-dir", str(a / "panoptic_val2017")]
    assert main(["score", *files, "--name", "gt", "--results", str(tmp_path / "file" / "res")]) == 2
    assert "cannot be written" in _one_line(capsys)


def test_a_write_that_fails_midway_is_one_line_naming_the_file_and_the_option(demo_results, tmp_path, monkeypatch,
                                                                              capsys) -> None:
    import panbench.records.io as records

    def denied(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(records, "atomic_write", denied)
    a = REPO_ROOT / "data" / "demo" / "annotations"
    assert main(["score", "--gt-json", str(a / "panoptic_val2017.json"), "--gt-dir", str(a / "panoptic_val2017"),
                 "--pred-json", str(a / "panoptic_val2017.json"), "--pred-dir", str(a / "panoptic_val2017"),
                 "--name", "gt", "--results", str(tmp_path / "res"), "--no-analysis"]) == 2
    err = _one_line(capsys)
    assert "Permission denied" in err and str(tmp_path / "res" / "runs") in err and "--results" in err


def test_a_failed_write_names_the_option_that_chose_its_path(tmp_path, monkeypatch, capsys) -> None:
    import panbench.records.io as records

    monkeypatch.setattr(records, "unwritable", lambda folder: None)  # the check before the work sees nothing wrong
    (tmp_path / "file").write_text("x")
    a = REPO_ROOT / "data" / "demo" / "annotations"
    files = ["--gt-json", str(a / "panoptic_val2017.json"), "--gt-dir", str(a / "panoptic_val2017"),
             "--pred-json", str(a / "panoptic_val2017.json"), "--pred-dir", str(a / "panoptic_val2017")]
    assert main(["score", *files, "--per-image", str(tmp_path / "file" / "x.csv"), "--results",
                 str(tmp_path / "res")]) == 2
    err = _one_line(capsys)
    assert str(tmp_path / "file") in err and err.endswith("a file in the way) or pass another --per-image")


def test_eval_refuses_a_runs_folder_or_per_image_table_it_cannot_write_before_any_model_runs(demo_root, tmp_path,
                                                                                             capsys) -> None:
    res = tmp_path / "res"
    res.mkdir()
    (res / "runs").write_text("a file where the records go")
    run = ["eval", "--model", "demo-mask2former,demo-maskformer", "--data-root", str(demo_root), "--limit", "1", *FAST]
    assert main([*run, "--results", str(res)]) == 2
    assert _one_line(capsys).endswith(f"{res / 'runs'}: cannot be written ({res / 'runs'} is a file, not a folder); "
                                      "pass another --results (nothing was run)")
    assert sorted(p.name for p in res.iterdir()) == ["runs"]  # no resume cache: no model ran
    (tmp_path / "file").write_text("x")
    table = tmp_path / "file" / "per-image.csv"
    assert main([*run, "--results", str(tmp_path / "ok"), "--per-image", str(table)]) == 2
    assert _one_line(capsys).endswith(f"{table}: cannot be written ({tmp_path / 'file'} is a file, not a folder); "
                                      "pass another --per-image (nothing was run)")
    assert not (tmp_path / "ok").exists()
    (tmp_path / "dir.csv").mkdir()
    assert main([*run, "--results", str(tmp_path / "ok"), "--per-image", str(tmp_path / "dir.csv")]) == 2
    assert "dir.csv is a folder); pass another --per-image" in _one_line(capsys) and not (tmp_path / "ok").exists()


@pytest.mark.parametrize("given", ["file", "missing"])
def test_table_plot_and_report_refuse_a_results_file_or_missing_folder_with_one_message(given, tmp_path,
                                                                                        capsys) -> None:
    path = tmp_path / given
    if given == "file":
        path.write_text("x")
    said = set()
    for cmd in ("table", "plot", "report"):
        assert main([cmd, "--results", str(path)]) == 2
        said.add(_one_line(capsys))
    (line,) = said  # the same words from each command
    assert line.startswith(f"panbench: error: --results {path}: ")
    assert ("a file, not a folder; pass the results folder" if given == "file" else
            "no such folder; run `panbench eval` first") in line
    assert not path.is_dir()  # nothing made


def test_report_written_elsewhere_leaves_no_plots_in_the_results_folder(demo_results, tmp_path) -> None:
    res = tmp_path / "res"
    shutil.copytree(demo_results / "runs", res / "runs")
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "elsewhere" / "r.html")]) == 0
    assert (tmp_path / "elsewhere" / "r.html").stat().st_size > 10000  # the plots are embedded
    assert sorted(p.name for p in res.iterdir()) == ["runs"]


def test_a_closed_pipe_ends_table_quietly(demo_results) -> None:
    p = subprocess.Popen([sys.executable, "-m", "panbench", "table", "--results", str(demo_results)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT,
                         env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    p.stdout.close()  # `| head` that has read enough
    err = p.stderr.read().decode()
    assert p.wait() == 141 and err == "", err


# --- suggestions ------------------------------------------------------------------------------------------------

def test_a_mistyped_dataset_is_answered_with_the_dataset_meant(capsys) -> None:
    assert main(["eval", "--model", "demo-mask2former", "--dataset", "dmeo", "--results", "/nonexistent-x"]) == 2
    err = _one_line(capsys)
    assert err.endswith("dataset 'dmeo' not found; did you mean --dataset demo?") and "panbench data" not in err


@pytest.mark.parametrize("argv, says", [
    (["eval", "--batchsize", "2"],
     "panbench eval: error: unknown option --batchsize; did you mean --batch-size? see `panbench eval --help`"),
    (["eval", "--model", "all", "--batchsize=2"],
     "panbench eval: error: unknown option --batchsize; did you mean --batch-size? see `panbench eval --help`"),
    (["evl", "--model", "all"], "panbench: error: unknown command evl; did you mean eval? see `panbench --help`"),
    (["data", "dmeo"], "panbench data: error: unknown dataset dmeo; did you mean demo? see `panbench data --help`"),
    (["data", "demo", "--forse"],
     "panbench data demo: error: unknown option --forse; did you mean --force? see `panbench data demo --help`"),
    (["table", "--format", "mdd"],
     "panbench table: error: argument --format: invalid choice 'mdd'; did you mean md? see `panbench table --help`"),
    (["eval", "--model", "all", "--frobnicate"],
     "panbench eval: error: unknown option --frobnicate; see `panbench eval --help`"),
    (["eval", "--model", "all", "again"],
     "panbench eval: error: unexpected argument 'again'; see `panbench eval --help`"),
])
def test_a_misspelled_command_option_or_choice_is_answered_with_the_one_meant_and_its_help(argv, says,
                                                                                           capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == says + "\n"


def test_score_given_a_folder_for_a_json_says_so_and_names_the_file_to_pass(demo_root, tmp_path, capsys) -> None:
    a = demo_root / "annotations"
    one, empty = tmp_path / "one", tmp_path / "empty"
    one.mkdir()
    empty.mkdir()
    (one / "panoptic_val2017.json").symlink_to(a / "panoptic_val2017.json")
    files = {"--gt-json": str(a / "panoptic_val2017.json"), "--gt-dir": str(a / "panoptic_val2017"),
             "--pred-json": str(a / "panoptic_val2017.json"), "--pred-dir": str(a / "panoptic_val2017")}
    for option, folder, fix in [
            ("--gt-json", one, f"pass the file: --gt-json {one / 'panoptic_val2017.json'}"),
            ("--pred-json", one, f"pass the file: --pred-json {one / 'panoptic_val2017.json'}"),
            ("--gt-json", empty, "pass the JSON file itself (e.g. annotations/panoptic_val2017.json); its PNGs' "
                                 "folder goes to --gt-dir")]:
        argv = [x for k, v in {**files, option: str(folder)}.items() for x in (k, v)]
        assert main(["score", *argv]) == 2
        assert _one_line(capsys) == f"panbench: error: {option} {folder}: a folder, not a JSON file; {fix}"


def test_a_mistyped_data_root_is_answered_with_the_folder_beside_or_the_command_that_writes_there(
        demo_root, tmp_path, capsys) -> None:
    (tmp_path / "demo").symlink_to(demo_root)
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(tmp_path / "demoo")]) == 2
    assert _one_line(capsys).endswith(f"did you mean --data-root {tmp_path / 'demo'}?")
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(tmp_path / "mine")]) == 2
    assert f"run `panbench data demo --root {tmp_path / 'mine'}`" in _one_line(capsys)


def test_compare_answers_a_mistyped_model_an_external_name_and_another_dataset(demo_results, capsys) -> None:
    r = str(demo_results)
    assert main(["compare", "demo-mask2fromer", "demo-maskformer", "--results", r]) == 2
    assert "no record of model 'demo-mask2fromer'; did you mean demo-mask2former" in _one_line(capsys)
    assert main(["compare", "my system saved", "demo-maskformer", "--results", r]) == 2
    assert "`panbench score ... --name 'my system saved'`" in _one_line(capsys)
    assert main(["compare", "demo-mask2former", "demo-maskformer", "--results", r, "--only-dataset", "coco"]) == 2
    assert "its records are on demo: pass --only-dataset demo" in _one_line(capsys)
    assert main(["compare", "maskformer", "mask2former", "--results", r]) == 2  # zoo aliases, demo records
    assert ("no record of model 'maskformer'; records exist of demo-maskformer (on demo): compare those, or run "
            "`panbench eval --model maskformer_r50`") in _one_line(capsys)


def test_table_reads_a_registry_alias_as_reference_as_compare_does(demo_results, capsys) -> None:
    assert main(["table", "--results", str(demo_results), "--only-dataset", "demo", "--reference", "maskformer"]) == 0
    by_name = capsys.readouterr().out
    assert main(["table", "--results", str(demo_results), "--reference", "demo-maskformer"]) == 0
    assert by_name == capsys.readouterr().out and "demo-maskformer" in by_name
    assert main(["table", "--results", str(demo_results), "--reference", "nobody"]) == 2
    assert "--reference nobody: no such run" in _one_line(capsys)


def test_doctor_names_the_demo_set_as_the_demo_set(demo_root) -> None:
    """The line `panbench doctor --data-root` prints for the data (its check alone: the whole doctor, which reads
    --data-root into this check, runs in tests/test_setup_stack.py)."""
    from panbench.cli.doctor import data_check

    line = data_check(demo_root).line()
    assert " data " in line
    assert "the demo set's panoptic val (COCO layout)" in line and "COCO panoptic val at" not in line


def test_viz_infers_the_dataset_of_a_demo_model_as_eval_does(demo_root, tmp_path, capsys) -> None:
    assert main(["viz", "--model", "demo-mask2former", "--image", "987654", "--data-root", str(demo_root),
                 "--results", str(tmp_path)]) == 2
    assert "image 987654 is not in the dataset" in _one_line(capsys)  # the demo set was read, not COCO's


# --- small promises ---------------------------------------------------------------------------------------------

def test_an_interrupted_eval_says_how_many_images_a_rerun_resumes_from(demo_root, tmp_path, monkeypatch,
                                                                       capsys) -> None:
    from panbench.pq.accumulator import PanopticAccumulator

    def interrupt(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(PanopticAccumulator, "evaluate", interrupt)  # Ctrl-C once the images are scored
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results",
                 str(tmp_path), "--limit", "3", *FAST]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "panbench: interrupted; rerun the same command to resume from the 3 images already scored"
    monkeypatch.undo()
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results",
                 str(tmp_path), "--limit", "3", *FAST]) == 0
    rec = json.loads(sorted((tmp_path / "runs").glob("*.json"))[-1].read_text())
    assert rec["timings"]["resumed_images"] == 3  # what the message promised


def test_an_eval_interrupted_before_its_first_image_says_there_is_nothing_to_resume(demo_root, tmp_path,
                                                                                    monkeypatch, capsys) -> None:
    from panbench.evaluators import Evaluators

    def interrupt(self, image, where):
        raise KeyboardInterrupt

    monkeypatch.setattr(Evaluators, "take", interrupt)  # Ctrl-C as the first image is handed to the evaluators
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results",
                 str(tmp_path), "--limit", "3", *FAST]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "panbench: interrupted; no image was scored yet: rerun the same command to start"


def test_the_recorded_command_is_shell_quoted_and_runs_again_as_written(demo_root, tmp_path) -> None:
    import shlex

    from panbench.records.io import _command_selection

    argv = ["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results",
            str(tmp_path / "my results"), "--limit", "1", "--cfg-options", "model.test_cfg.object_mask_thr=0.9", *FAST]
    assert main(argv) == 0
    (path,) = (tmp_path / "my results" / "runs").glob("*.json")
    command = json.loads(path.read_text())["provenance"]["command"]
    assert command == shlex.join(["panbench", *argv]) and shlex.split(command) == ["panbench", *argv]
    assert _command_selection(command, 1)["limit"] == 1  # an old record's selection, read from its command


def test_data_demo_prints_the_fingerprint_tables_show(tmp_path, capsys, monkeypatch) -> None:
    from panbench.data import demo
    from panbench.data.datasets import load_dataset

    monkeypatch.setattr(demo, "SPLITS", {"train2017": (0, 1), "val2017": (1, 2)})  # a few images of each split
    assert main(["data", "demo", "--root", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    fp = load_dataset(tmp_path / "d", name="demo").fingerprint()[:8]
    assert f"fingerprint {fp} (tables show `demo {fp}`)" in out and "files sha256 " in out


def test_compare_help_shows_a_single_percent_sign(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert "95% paired" in out and "%%" not in out


def test_an_hf_directory_named_hf_x_is_model_hf_x() -> None:
    from panbench.models.families import FAMILIES
    from panbench.models.registry import ref_spec

    assert ref_spec(FAMILIES["transformers"], "models/hf-tiny-m2f").name == "hf-tiny-m2f"
    assert ref_spec(FAMILIES["transformers"], "models/tiny m2f/").name == "hf-tiny_m2f"


def test_vs_published_leaves_out_metrics_no_row_publishes(tmp_path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    shutil.copy(GOLDEN, tmp_path / "runs" / GOLDEN.name)  # publishes PQ only
    assert main(["table", "--results", str(tmp_path), "--format", "csv", "--vs-published"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert [c for c in df.columns if c.endswith(("_pub", "_delta"))] == ["PQ_pub", "PQ_delta"]


def test_saved_predictions_leave_no_staging_folder_and_a_rerun_reads_them(demo_root, tmp_path, capsys) -> None:
    preds = tmp_path / "preds"
    run = ["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results", str(tmp_path / "r"),
           "--limit", "2", "--save-predictions", str(preds), *FAST]
    assert main(run) == 0
    assert sorted(p.name for p in preds.iterdir()) == ["panoptic_val2017_demo-mask2former_results",
                                                       "panoptic_val2017_demo-mask2former_results.json",
                                                       "panoptic_val2017_demo-mask2former_results_instances.json"]
    first = (preds / "panoptic_val2017_demo-mask2former_results.json").read_text()
    assert main(run) == 0  # resumed: nothing runs, the JSON is assembled again from itself
    rec = json.loads(sorted((tmp_path / "r" / "runs").glob("*.json"))[-1].read_text())
    assert rec["timings"]["resumed_images"] == 2 and not (preds / ".panbench").exists()
    again = json.loads((preds / "panoptic_val2017_demo-mask2former_results.json").read_text())
    assert again["annotations"] == json.loads(first)["annotations"]


def _second_model_interrupted(monkeypatch, when: str) -> None:
    """Ctrl-C in ``eval``: as the first model's line is printed, as the second model loads, once the second's images
    are scored and cached (before its record is written), or just after its record's name is claimed."""
    from panbench.evaluation import run as run_mod
    from panbench.records import io as records_io

    real_init, real, calls = run_mod.Run.__init__, run_mod.Run.evaluate, []

    def init(self, spec, *a, **k):
        calls.append(spec.name)
        if when == "loading" and len(calls) == 2:
            raise KeyboardInterrupt
        real_init(self, spec, *a, **k)

    def second_interrupted(self, show=None):
        if len(calls) != 2:
            return real(self, show)
        if when == "scored":
            self.infer()
            self.conclude()
        else:
            monkeypatch.setattr(records_io, "append_csv", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
            real(self, show)
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod.Run, "__init__", init)
    monkeypatch.setattr(run_mod.Run, "evaluate", second_interrupted)
    if when == "printed":  # the first model's line printed, its loop step over: the second not begun
        import panbench.reporting.text as text

        monkeypatch.setattr(text, "record_line", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))


@pytest.mark.parametrize(("when", "recorded", "line"), [
    ("printed", ["demo-mask2former"], "demo-mask2former finished; rerun with --model demo-maskformer,"
     "demo-panoptic-fpn to go on"),
    ("loading", ["demo-mask2former"], "demo-mask2former finished; rerun with --model demo-maskformer,"
     "demo-panoptic-fpn to go on"),
    ("scored", ["demo-mask2former"], "demo-mask2former finished; rerun with --model demo-maskformer,"
     "demo-panoptic-fpn to resume demo-maskformer from the 3 images already scored"),
    ("recorded", ["demo-mask2former", "demo-maskformer"], "demo-mask2former, demo-maskformer finished; rerun with "
     "--model demo-panoptic-fpn to go on"),
], ids=["printed", "loading", "scored", "recorded"])
def test_an_interrupted_multi_model_eval_resumes_only_the_models_left(demo_root, tmp_path, monkeypatch, capsys,
                                                                      when, recorded, line) -> None:
    """The line names as finished exactly the models whose records are written."""
    _second_model_interrupted(monkeypatch, when)
    assert main(["eval", "--model", "demo-mask2former,demo-maskformer,demo-panoptic-fpn", "--data-root",
                 str(demo_root), "--results", str(tmp_path), "--limit", "3", *FAST]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert sorted(f.name.split("_")[1] for f in (tmp_path / "runs").glob("*.json")) == recorded
    assert err == f"panbench: interrupted; {line}"


def test_a_grid_interrupted_between_its_records_is_not_finished(demo_root, tmp_path, monkeypatch, capsys) -> None:
    """A model's grid writes a record per setting: a Ctrl-C after the first of two leaves the model to run again."""
    from panbench.records import io as records_io

    real = records_io.append_csv
    monkeypatch.setattr(records_io, "append_csv", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["eval", "--model", "demo-mask2former,demo-maskformer", "--grid", "object_mask_thr=0.7,0.8",
                 "--data-root", str(demo_root), "--results", str(tmp_path), "--limit", "3", *FAST]) == 130
    assert real is not records_io.append_csv and len(list((tmp_path / "runs").glob("*.json"))) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("panbench: interrupted; rerun the same command to resume from "), err
