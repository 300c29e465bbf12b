"""The parts of ``panbench submit`` / ``status`` that need no Slurm: the cells and their jobs, the sbatch script,
Slurm's time formats, the job ids of ``sacct``, the error line of a log, each cell's state, the incomplete-sweep
note, and ``runs.csv`` rows appended by concurrent jobs."""

from __future__ import annotations

import csv
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from panbench.cluster.slurm import _expand, cell_states, last_error, parameters, script
from panbench.cluster.sweep import Cell, Manifest, Submission, cell_marker, groups, incomplete_note, minutes, plan
from panbench.errors import PanbenchError
from panbench.package import REPO_ROOT
from panbench.records.io import append_csv

MODELS = ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"]


def test_cells_are_each_model_clean_then_its_corruption_cells_and_jobs_group_them() -> None:
    cells = plan(MODELS, "demo", ["fog", "gaussian_noise"], [3])
    assert [c.id for c in cells[:3]] == ["demo-mask2former.demo.clean", "demo-mask2former.demo.fog-3",
                                         "demo-mask2former.demo.gaussian_noise-3"]
    assert len(cells) == 9 and len({c.id for c in cells}) == 9
    assert cells[1].eval_args() == ["--model", "demo-mask2former", "--dataset", "demo", "--corruption", "fog",
                                    "--severity", "3"]
    assert cells[1].record_dataset == "demo+fog-3" and cells[0].record_dataset == "demo"
    assert groups(cells, "cell") == [[c] for c in cells]
    assert groups(cells, "model") == [cells[0:3], cells[3:6], cells[6:9]]
    assert plan(MODELS[:1], "coco", [], []) == [Cell("demo-mask2former", "coco")]


@pytest.mark.parametrize(("text", "expected"), [("90", 90), ("1:30:00", 90), ("2-00:00:00", 2880), ("30:30", 31),
                                                ("1-2", 1560), ("0:00:20", 1)])
def test_slurm_time_formats_in_minutes(text: str, expected: int) -> None:
    assert minutes(text) == expected


def test_a_time_that_is_not_slurm_s_is_refused() -> None:
    with pytest.raises(PanbenchError, match="--time 1h: not a Slurm time"):
        minutes("1h")


def test_the_sbatch_script_holds_every_option() -> None:
    params = parameters({"partition": "gpu", "gpus_per_job": 1, "cpus_per_job": 8, "mem": "32G", "time": "2:00:00",
                         "qos": "high", "account": "vision", "constraint": "a100", "max_parallel": 4}, "sw1")
    text = script(Path("/shared/results/sweeps/sw1/slurm"), params, 6)
    for line in ("#SBATCH --array=0-5%4", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G", "#SBATCH --time=120", "#SBATCH --qos=high",
                 "#SBATCH --account=vision", "#SBATCH --constraint=a100", "#SBATCH --requeue",
                 "#SBATCH --job-name=panbench-sw1", "#SBATCH --ntasks-per-node=1", "export OMP_NUM_THREADS=8",
                 "#SBATCH --error=/shared/results/sweeps/sw1/slurm/%A_%a_0_log.err"):
        assert line in text.splitlines(), line
    assert "-m submitit.core._submit /shared/results/sweeps/sw1/slurm" in text
    one = script(Path("/r/slurm"), parameters({}, "sw2"), 1)
    assert "--array" not in one and "#SBATCH --cpus-per-task=1" in one and "#SBATCH --time=60" in one


def test_without_submitit_the_slurm_extra_is_named() -> None:
    from panbench.resources import missing_extra_message

    assert 'pip install "panbench[slurm]"' in (missing_extra_message("submitit") or "")


def test_sacct_s_array_ids_are_expanded() -> None:
    assert _expand("12_[0-3%2]") == ["12_0", "12_1", "12_2", "12_3"]
    assert _expand("12_[1,4-5]") == ["12_1", "12_4", "12_5"]
    assert _expand("12_7") == ["12_7"] and _expand("12") == ["12"]


def test_the_error_line_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "1_0_log.err"
    log.write_text("submitit INFO start\nTraceback (most recent call last):\n  File x\n"
                   "panbench: error: /x/bad.pth: not a checkpoint; pass another --checkpoint\n"
                   "cell a: panbench eval exited 2\nTraceback (most recent call last):\n"
                   "panbench.errors.PanbenchError: 1 cell(s) failed: a\n")
    assert last_error(log) == "panbench: error: /x/bad.pth: not a checkpoint; pass another --checkpoint"
    log.write_text("submitit WARNING Bypassing signal SIGTERM\n"
                   "slurmstepd-vm: error: *** JOB 4 ON vm CANCELLED AT 2026-11-24T10:28:47 ***\n"
                   "panbench.errors.PanbenchError: 1 cell(s) failed: a\n")
    assert last_error(log) == "slurmstepd-vm: error: *** JOB 4 ON vm CANCELLED AT 2026-11-24T10:28:47 ***"
    log.write_text("slurmstepd-vm: error: *** JOB 4 ON vm CANCELLED AT 2026-11-24T10:28:47 DUE TO JOB REQUEUE ***\n"
                   "cell a: no record of it in /r/runs\npanbench.errors.PanbenchError: 1 cell(s) failed: a\n")
    assert last_error(log) == "panbench.errors.PanbenchError: 1 cell(s) failed: a"  # a requeue is no error
    log.write_text("RuntimeError: CUDA out of memory\nsrun: error: task 0 exited\n")
    assert last_error(log) == "RuntimeError: CUDA out of memory"
    assert last_error(tmp_path / "absent") is None


def _manifest(results: Path, cells: list[Cell], jobs: dict[str, list[str]]) -> Manifest:
    m = Manifest(sweep="sw", created="2026-11-24T10:00:00Z", command="panbench submit", group_by="cell", cells=cells,
                 eval_args=[], slurm={}, submissions=[Submission("x", jobs)])
    m.save(results)
    return m


def test_each_cell_s_state_from_its_marker_and_its_job(tmp_path: Path) -> None:
    cells = plan(MODELS[:1], "demo", ["fog"], [1, 2, 3, 4])  # 5 cells
    m = _manifest(tmp_path, cells, {"7_0": [cells[0].id], "7_1": [cells[1].id], "7_2": [cells[2].id],
                                    "7_3": [cells[3].id]})
    cell_marker(tmp_path, "sw", cells[0]).parent.mkdir(parents=True)
    cell_marker(tmp_path, "sw", cells[0]).write_text(json.dumps({"record": "runs/a.json", "job": "7_0"}))
    log = tmp_path / "sweeps" / "sw" / "slurm" / "7_3_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("panbench: error: bad.pth: not a checkpoint\n")
    states = cell_states(tmp_path, m, {"7_0": "FAILED", "7_1": "RUNNING", "7_2": "PENDING", "7_3": "FAILED"})
    assert [(s.state, s.job) for s in states] == [("done", "7_0"), ("running", "7_1"), ("queued", "7_2"),
                                                  ("failed", "7_3"), ("missing", None)]
    assert states[3].error == "panbench: error: bad.pth: not a checkpoint" and states[3].log == log
    note = incomplete_note(tmp_path)
    assert note is not None and "sw (1 of 5 cells recorded)" in note and "\n" not in note
    for c in cells[1:]:
        cell_marker(tmp_path, "sw", c).write_text(json.dumps({"record": "runs/a.json", "job": "7_1"}))
    assert incomplete_note(tmp_path) is None


def test_status_prints_the_failed_cell_s_line_and_the_resubmit_command(tmp_path: Path) -> None:
    cells = plan(MODELS[:1], "demo", [], [])
    _manifest(tmp_path, cells, {})
    r = subprocess.run([sys.executable, "-m", "panbench", "status", "--results", str(tmp_path)], capture_output=True,
                       text=True, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr
    assert "1 cells, 0 job(s) submitted): 0 done, 0 running, 0 queued, 0 failed, 1 missing" in r.stdout
    assert f"panbench submit --results {tmp_path} --resubmit sw --model demo-mask2former" in r.stdout
    t = subprocess.run([sys.executable, "-m", "panbench", "table", "--results", str(tmp_path)], capture_output=True,
                       text=True, cwd=REPO_ROOT)
    assert "note: sweep sw (0 of 1 cells recorded) incomplete" in t.stderr


def _append_rows(path: Path, first: int, n: int) -> None:
    for k in range(first, first + n):
        append_csv(path, {"model": f"m{k}"})


def test_concurrent_jobs_each_keep_their_runs_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_rows, args=(path, 100 * k, 25)) for k in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    with open(path) as f:
        models = [row["model"] for row in csv.DictReader(f)]
    assert sorted(models) == sorted(f"m{100 * k + i}" for k in range(6) for i in range(25))


@pytest.mark.parametrize(("argv", "says"), [
    (["--model", "all", "--resubmit", "nope"], "no such sweep"),
    (["--model", "demo-maskformer", "--severities", "3"], "--severities goes with --corruptions"),
    (["--model", "demo-maskformer", "--time", "1h", "--dry-run"], "--time 1h: not a Slurm time"),
    (["--model", "demo-maskformer", "--no-resume"], "drop --no-resume"),
])
def test_a_submit_that_cannot_work_is_one_line_and_exit_2(argv: list[str], says: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    from panbench.cli import main

    assert main(["submit", "--results", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


FAKE_EVAL = """#!/usr/bin/env python3
import json, sys
from pathlib import Path
argv = sys.argv[1:]
opt = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
results, model = Path(opt["--results"]), opt["--model"]
calls = results / "calls.txt"
results.mkdir(parents=True, exist_ok=True)
calls.write_text((calls.read_text() if calls.exists() else "") + model + "|" + opt.get("--corruption", "clean") + "\\n")
if model == "broken":
    print("panbench: error: broken.pth: not a PyTorch checkpoint", file=sys.stderr)
    sys.exit(2)
dataset = opt["--dataset"] + (f"_{opt['--corruption']}-{opt['--severity']}" if "--corruption" in opt else "")
name = f"runs/20261124T100000Z_{model}_{dataset}.json"  # as write_record names it
(results / "runs").mkdir(parents=True, exist_ok=True)
(results / name).write_text(json.dumps({"model": model}))
(results / "runs" / f"20261124T100000Z_{model}-large_{dataset}.json").write_text("{}")  # another model's
print("  record: runs/elsewhere.json")  # what a run prints is not where the job looks
"""


def test_a_job_runs_its_cells_in_sequence_marks_each_and_skips_the_marked_ones(tmp_path: Path) -> None:
    from panbench.cluster.sweep import CellJob, cell_dicts

    fake = tmp_path / "python"
    fake.write_text(FAKE_EVAL)
    fake.chmod(0o755)
    results = tmp_path / "results"
    cells = plan(["good", "broken"], "demo", ["fog"], [3])
    job = CellJob(str(results), "sw", cell_dicts(cells), ["--results", str(results)], python=str(fake))
    with pytest.raises(PanbenchError, match="2 cell\\(s\\) failed: broken.demo.clean, broken.demo.fog-3"):
        job()
    marker = json.loads(cell_marker(results, "sw", cells[1]).read_text())
    assert marker["record"] == "runs/20261124T100000Z_good_demo_fog-3.json"  # the cell's record, by its name
    assert not cell_marker(results, "sw", cells[2]).exists()
    with pytest.raises(PanbenchError):
        job()  # run again (requeued): the recorded cells are not run again, the failed ones are
    calls = (results / "calls.txt").read_text().splitlines()
    assert calls == ["good|clean", "good|fog", "broken|clean", "broken|fog", "broken|clean", "broken|fog"]
    again = job.checkpoint()  # what submitit requeues: the same job
    assert again.function.cells == job.cells and again.function.eval_args == job.eval_args


def test_a_manifest_saved_and_loaded_is_the_same_manifest(tmp_path: Path) -> None:
    cells = plan(MODELS[:1], "demo", ["fog"], [3])
    m = _manifest(tmp_path, cells, {})
    m.submitted("2026-11-24T10:01:00Z", {"7_0": cells[:1], "7_1": cells[1:]})
    m.save(tmp_path)
    back = Manifest.load(tmp_path / "sweeps" / "sw.json")
    assert back == m and back.submissions[-1] == Submission("2026-11-24T10:01:00Z", {"7_0": [cells[0].id],
                                                                                    "7_1": [cells[1].id]})
    (tmp_path / "sweeps" / "sw.json").write_text('{"sweep": "sw"}')
    with pytest.raises(PanbenchError, match="sw.json: not a sweep manifest"):
        Manifest.load(tmp_path / "sweeps" / "sw.json")


def test_without_slurm_to_ask_a_submitted_cell_is_unknown(tmp_path: Path) -> None:
    cells = plan(MODELS[:1], "demo", [], [])
    m = _manifest(tmp_path, cells, {"7": [cells[0].id]})
    (s,) = cell_states(tmp_path, m, None, ask=False)
    assert s.state == "unknown" and "neither sacct nor squeue answered" in (s.error or "")


def test_resubmit_names_models_of_the_sweep_and_leaves_recorded_cells(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """On a PATH without Slurm's commands: a recorded cell is done whatever Slurm says of its job (this machine's
    squeue and sacct, their controller down, take 9 s each to give up)."""
    from panbench.cli import main

    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm"))
    cells = plan(MODELS[:1], "demo", [], [])
    _manifest(tmp_path, cells, {"7": [cells[0].id]})
    assert main(["submit", "--results", str(tmp_path), "--resubmit", "sw", "--model", "demo-maskformer"]) == 2
    assert "--model demo-maskformer: not in sweep sw (its models: demo-mask2former, or all)" in capsys.readouterr().err
    cell_marker(tmp_path, "sw", cells[0]).parent.mkdir(parents=True)
    cell_marker(tmp_path, "sw", cells[0]).write_text(json.dumps({"record": "runs/a.json", "job": "7"}))
    assert main(["submit", "--results", str(tmp_path), "--resubmit", "sw", "--model", "all"]) == 0
    assert "sweep sw: nothing to resubmit" in capsys.readouterr().out


def test_without_sbatch_submit_says_where_to_run_it_and_the_dry_run_still_prints(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no Slurm command on the PATH
    argv = [sys.executable, "-m", "panbench", "submit", "--model", "demo-maskformer", "--results", str(tmp_path / "r")]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "panbench: error: sbatch not found: run `panbench submit` on a Slurm login node (or --dry-run to print the "
        "sbatch script)"], r.stderr
    d = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert d.returncode == 0 and d.stdout.startswith("#!/bin/bash") and "# job 0: demo-maskformer.demo.clean" \
        in d.stderr, d.stderr
