"""A damaged file under results/ (truncated, zeroed, garbage-filled) is left out with one line naming it by every
reader, the other runs' output unchanged, exit 0: a record JSON, a per-image analysis file, colors.json, a figures
manifest (docs/cli.md, "Damaged files under results/")."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import write_perturbed_sample

from panbench.cli import main

SYSTEMS = ("sys-a", "sys-b", "sys-c", "sys-d")  # predictions perturbed from the demo set's ground truth, seeds 0-3


@pytest.fixture(scope="module")
def scored(demo_root, tmp_path_factory) -> Path:
    """Four `score --name` runs on the demo set's 60 images (each with its per-image analysis file), and `plot`'s
    figures and colours."""
    work = tmp_path_factory.mktemp("damaged")
    res, ann = work / "res", demo_root / "annotations"
    for seed, name in enumerate(SYSTEMS):
        (work / name).mkdir()
        pred_json, pred_dir = write_perturbed_sample(ann, work / name, seed)
        assert main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir",
                     str(ann / "panoptic_val2017"), "--pred-json", str(pred_json), "--pred-dir", str(pred_dir),
                     "--name", name, "--results", str(res)]) == 0
    assert main(["plot", "--results", str(res)]) == 0
    return res


def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: size // 3], "zeroed": bytes(size),
                      "garbage": np.random.default_rng(0).bytes(size)}[how])


def _run(capsys, command: list[str], results: Path) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the stderr lines but the phase lines (panbench.announce: `...`)."""
    code = main([*command, "--results", str(results)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if not line.endswith("...")]


def _record(results: Path, name: str, suffix: str) -> Path:
    return next(p for p in (results / "runs").glob(f"*_{name}_demo{suffix}"))


COMMANDS = {  # what each reader reads of the damaged files: the records and analysis files; the report, the rest
    "table": (["table"], False), "table --ci": (["table", "--ci"], False),
    "compare": (["compare", "sys-a", "sys-c", "--resamples", "200"], False),
    "images": (["images", "--run", "sys-a", "--vs", "sys-c"], False), "report": (["report"], True),
}


def test_a_damaged_file_under_results_is_skipped_in_one_line_by_every_reader(scored, tmp_path, capsys) -> None:
    """sys-b's analysis file (truncated), sys-d's record (zeroed), colors.json and the figures manifest (garbage):
    table, table --ci, compare, images and report exit 0, name each damaged file they read in one line, and print
    the other runs as they did before (sys-b without its paired difference, sys-d not at all)."""
    clean = {k: _run(capsys, cmd, scored) for k, (cmd, _) in COMMANDS.items() if k != "report"}
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    damaged = [_record(res, "sys-b", ".analysis.npz"), _record(res, "sys-d", ".json")]
    figures = [res / "colors.json", res / "report_files" / "demo" / ".panbench-figures.json"]  # the report's own
    figures[1].parent.mkdir(parents=True)
    shutil.copy(res / "plots" / "demo" / figures[1].name, figures[1])
    for path, how in zip(damaged + figures, ("truncated", "zeroed", "garbage", "garbage")):
        _damage(path, how)
    for key, (cmd, reads_figures) in COMMANDS.items():
        code, out, err = _run(capsys, cmd, res)
        assert code == 0, (key, err)
        assert "Traceback" not in "\n".join(err), (key, err)
        for path in damaged + (figures if reads_figures else []):
            named = [line for line in err if str(path) in line]
            assert len(named) == 1 and named[0].startswith(f"panbench: skipped {path}: "), (key, path, err)
        if key in ("compare", "images"):
            assert out == clean[key][1], key  # sys-a and sys-c: the same output
        elif key != "report":
            rows = [line for line in out.splitlines() if "sys-a" in line and line.startswith("|")]
            assert rows and rows == [line for line in clean[key][1].splitlines() if "sys-a" in line
                                     and line.startswith("|")], key
            assert "sys-d" not in out and "sys-b" in out, key
    assert "sys-b" in (res / "report.html").read_text()


@pytest.mark.parametrize("how", ["truncated", "zeroed", "garbage"])
def test_a_record_or_analysis_file_damaged_any_way_is_skipped_in_one_line(scored, tmp_path, capsys, how) -> None:
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    damaged = [_record(res, "sys-b", ".analysis.npz"), _record(res, "sys-d", ".json")]
    for path in damaged:
        _damage(path, how)
    code, out, err = _run(capsys, ["table", "--ci"], res)
    assert code == 0 and "sys-d" not in out and "sys-b" in out, err
    for path in damaged:
        assert len([line for line in err if line.startswith(f"panbench: skipped {path}: ")]) == 1, err


def test_compare_of_the_run_whose_analysis_file_is_damaged_says_so_in_one_line(scored, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    npz = _record(res, "sys-b", ".analysis.npz")
    _damage(npz, "truncated")
    code, _, err = _run(capsys, ["compare", "sys-a", "sys-b"], res)
    assert code == 2 and err[0].startswith(f"panbench: skipped {npz}: not a panbench per-image analysis file")
    assert len(err) == 2 and err[1].startswith(f"panbench: error: {npz}: the per-image analysis file of ") and \
        "is damaged" in err[1], err


def test_an_analysis_file_damaged_inside_its_zip_is_a_one_line_error_of_its_own(scored, tmp_path) -> None:
    """An array's bytes changed, the zip's table of contents whole: loading it is refused in one line (a reader
    then leaves the run's analyses out, as `table --ci` does with the note)."""
    from panbench.analysis import AnalysisSet
    from panbench.errors import InputError

    res = tmp_path / "res"
    shutil.copytree(scored, res)
    npz = _record(res, "sys-b", ".analysis.npz")
    data = bytearray(npz.read_bytes())
    data[200:260] = bytes(60)  # inside the first array
    npz.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"not a panbench per-image analysis file \(.+\); rerun"):
        AnalysisSet.load(npz)


def test_table_ci_skips_an_analysis_file_damaged_inside_its_zip_in_the_line_of_every_reader(scored, tmp_path,
                                                                                           capsys) -> None:
    """The zip's table of contents whole, an array's bytes changed: `table --ci` names the file in the one line
    every reader prints (`panbench: skipped PATH: why; fix`), not in a note of the run, and ranks sys-b without
    its paired difference."""
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    npz = _record(res, "sys-b", ".analysis.npz")
    data = bytearray(npz.read_bytes())
    data[200:260] = bytes(60)  # inside the first array
    npz.write_bytes(bytes(data))
    code, out, err = _run(capsys, ["table", "--ci"], res)
    assert code == 0 and "sys-b" in out, err
    named = [line for line in (out + "\n".join(err)).splitlines() if str(npz) in line]
    assert len(named) == 1 and named[0].startswith(f"panbench: skipped {npz}: not a panbench per-image analysis "
                                                   "file (") and "; rerun" in named[0], named


@pytest.mark.parametrize("how", ["zeroed", "garbage"])
def test_a_damaged_runs_csv_is_kept_aside_and_a_new_one_begun_by_the_next_record(scored, demo_root, tmp_path, capsys,
                                                                                  how) -> None:
    """`score --name` writing into a results folder whose runs.csv is no table: exit 0, one line naming it, the
    damaged file kept as runs.csv.damaged, a new runs.csv with the header and the new run's row."""
    import pandas as pd

    res = tmp_path / "res"
    shutil.copytree(scored, res)
    _damage(res / "runs.csv", how)
    ann, pred = demo_root / "annotations", scored.parent / "sys-a"
    code, _, err = _run(capsys, ["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir",
                                 str(ann / "panoptic_val2017"), "--pred-json", str(pred / "pred.json"), "--pred-dir",
                                 str(pred / "pred"), "--name", "sys-e"], res)
    assert code == 0 and [line for line in err if "runs.csv" in line] == [
        line for line in err if line.startswith(f"panbench: skipped {res / 'runs.csv'}: not panbench's table of runs")]
    assert len([line for line in err if "runs.csv" in line]) == 1, err
    assert (res / "runs.csv.damaged").stat().st_size == (scored / "runs.csv").stat().st_size
    assert pd.read_csv(res / "runs.csv")["model"].tolist() == ["sys-e"]


@pytest.mark.parametrize("command", [["status"], ["table"]])
def test_a_damaged_sweep_manifest_is_skipped_in_one_line(scored, tmp_path, capsys, command) -> None:
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    (res / "sweeps").mkdir()
    (res / "sweeps" / "x.json").write_bytes(np.random.default_rng(0).bytes(40))
    code, _, err = _run(capsys, command, res)
    named = [line for line in err if "x.json" in line]
    assert code == 0 and len(named) == 1 and named[0].startswith(f"panbench: skipped {res / 'sweeps' / 'x.json'}: "
                                                                 "not a sweep manifest"), err


def test_a_damaged_speed_record_is_skipped_in_one_line(scored, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    (res / "speed").mkdir()
    (res / "speed" / "x.json").write_bytes(np.random.default_rng(0).bytes(40))
    clean = _run(capsys, ["table"], scored)[1]
    code, out, err = _run(capsys, ["table"], res)
    named = [line for line in err if "x.json" in line]
    assert code == 0 and out == clean and len(named) == 1 and named[0].startswith(
        f"panbench: skipped {res / 'speed' / 'x.json'}: not a panbench speed record"), err


@pytest.mark.parametrize("text", ['{"model": "x", "metrics": {"PQ": 1, "SQ": "high"}}',
                                  '{"model": 5, "metrics": {"PQ": 1.0}}',
                                  '{"model": "x", "metrics": {"PQ": 1}, "n_images": "many"}'])
def test_a_record_of_the_wrong_shape_is_skipped_in_one_line(scored, tmp_path, capsys, text) -> None:
    """Valid JSON with a record's keys but not its fields (a hand edit): named in one line, not a traceback."""
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    (res / "runs" / "zz.json").write_text(text)
    code, out, err = _run(capsys, ["table"], res)
    named = [line for line in err if "zz.json" in line]
    assert code == 0 and out == _run(capsys, ["table"], scored)[1] and len(named) == 1, err
    assert named[0].startswith(f"panbench: skipped {res / 'runs' / 'zz.json'}: not a panbench result record"), err


PARTIAL = {  # a record's metrics reduced (a partial record, as the robustness tests write on purpose), each reader
    "table": ["table"], "table --format latex": ["table", "--format", "latex"],
    "table --format csv": ["table", "--format", "csv"], "table --ci": ["table", "--ci"],
    "compare": ["compare", "sys-a", "sys-c", "--resamples", "200"], "plot": ["plot"], "report": ["report"],
}


def test_a_record_missing_metrics_shows_them_blank_in_every_reader(scored, tmp_path, capsys) -> None:
    """sys-c's metrics reduced to PQ alone, sys-d's emptied: every reader exits 0 without a traceback, shows sys-c
    with its PQ and the missing numbers blank (`-` in a table, empty in CSV), names sys-d (no PQ to rank) in one
    line, and prints the other runs' rows as before."""
    import json

    clean = {k: _run(capsys, cmd, scored) for k, cmd in PARTIAL.items() if k.startswith("table")}
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    for name, keep in (("sys-c", ("PQ",)), ("sys-d", ())):
        path = _record(res, name, ".json")
        rec = json.loads(path.read_text())
        rec["metrics"] = {k: v for k, v in rec["metrics"].items() if k in keep}
        path.write_text(json.dumps(rec))
    for key, cmd in PARTIAL.items():
        code, out, err = _run(capsys, cmd, res)
        assert code == 0 and "Traceback" not in "\n".join(err), (key, err)
        assert len([line for line in err if str(_record(res, "sys-d", ".json")) in line]) == 1, (key, err)
        if key in ("table", "table --format latex", "table --ci"):
            row = next(line for line in out.splitlines() if line.startswith(("| sys-c ", "sys-c ")))
            assert " - " in row, (key, row)  # SQ, RQ, PQ things, PQ stuff: blank
            for other in ("sys-a", "sys-b"):
                mine = [line for line in out.splitlines() if line.startswith((f"| {other} ", f"{other} "))
                        and "|" in line or line.startswith(f"{other} &")]
                assert mine and all(line in clean[key][1].splitlines() for line in mine), (key, other, mine)
        elif key == "table --format csv":
            row = next(line for line in out.splitlines() if line.startswith("sys-c,"))
            assert ",," in row, row
            for other in ("sys-a", "sys-b"):
                assert next(line for line in out.splitlines() if line.startswith(f"{other},")) in clean[key][1]
        elif key == "compare":
            assert "sys-c" in out, out
    assert "sys-c" in (res / "report.html").read_text()
    assert (res / "plots" / "demo" / "pq_bars.png").is_file()
