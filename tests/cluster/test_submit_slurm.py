"""``panbench submit`` and ``panbench status`` against the one-node Slurm cluster (``slurm`` fixture; skipped with
the reason where it cannot be started): the dry run's script passes ``sbatch --test-only``; a sweep of the three
demo models x two cells runs, is read back by ``table`` and its records equal local ``eval`` runs in every metric;
a job cancelled mid-run and resubmitted by status's command resumes from its cache; a job that fails on a bad
checkpoint shows in status with its one-line error.  Each job takes 1 CPU and a few images."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import slurm  # noqa: F401  (the fixture)

from panbench.cluster.slurm import cell_states
from panbench.cluster.sweep import Manifest, manifests
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.system  # every test here runs jobs on the one-node Slurm cluster

PY = sys.executable
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
JOB = ["--workers", "0", "--cpu-procs", "1", "--cpus-per-job", "1", "--mem", "3G", "--time", "15"]


def panbench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "panbench", *args], capture_output=True, text=True, cwd=REPO_ROOT, env=ENV,
                          timeout=timeout)


def submit(results: Path, demo_root: Path, *args: str) -> Manifest:
    r = panbench("submit", "--dataset", "demo", "--data-root", str(demo_root), "--results", str(results), *JOB, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    return manifests(results)[-1]


def wait(results: Path, sweep: str, timeout: float = 900) -> list:
    """Each cell's state once no job of the sweep is queued or running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        (m,) = [m for m in manifests(results) if m.sweep == sweep]
        states = cell_states(results, m)
        if not any(s.state in ("queued", "running") for s in states):
            return states
        time.sleep(3)
    subprocess.run(["scancel", "--name", f"panbench-{sweep}"])
    pytest.fail(f"sweep {sweep} did not finish within {timeout} s")


def records(results: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for p in (results / "runs").glob("*.json"):
        r = json.loads(p.read_text())
        out[(r["model"], r["dataset"])] = r
    return out


@pytest.mark.slow
def test_the_dry_run_s_script_passes_sbatch_test_only(slurm, demo_root, tmp_path) -> None:  # noqa: F811
    r = panbench("submit", "--model", "all", "--dataset", "demo", "--data-root", str(demo_root), "--results",
                 str(tmp_path / "results"), "--corruptions", "gaussian_noise", "--severities", "3", "--limit", "2",
                 *JOB, "--max-parallel", "2", "--partition", "debug", "--group-by", "model", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "#SBATCH --array=0-2%2" in r.stdout.splitlines()  # three models, their two cells each in one job
    assert r.stderr.count("# job ") == 3 and "demo-maskformer.demo.clean, demo-maskformer.demo.gaussian_noise-3" \
        in r.stderr
    assert not (tmp_path / "results").exists()  # a dry run writes nothing
    script = tmp_path / "sweep.sh"
    script.write_text(r.stdout)
    t = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=60)
    assert t.returncode == 0 and "to start at" in t.stderr, t.stderr


@pytest.mark.slow
def test_a_sweep_of_the_demo_models_is_read_back_and_equals_local_runs(slurm, demo_root, tmp_path) -> None:  # noqa: F811
    results = tmp_path / "shared"
    m = submit(results, demo_root, "--model", "all", "--corruptions", "gaussian_noise", "--severities", "3",
               "--limit", "2")
    assert len(m.cells) == 6 and len(m.submissions[0].jobs) == 6
    local = tmp_path / "local"
    for extra in ([], ["--corruption", "gaussian_noise", "--severity", "3"]):
        r = panbench("eval", "--model", "all", "--dataset", "demo", "--data-root", str(demo_root), "--results",
                     str(local), "--limit", "2", "--workers", "0", "--cpu-procs", "1", "--no-progress", *extra)
        assert r.returncode == 0, r.stderr[-3000:]
    states = wait(results, m.sweep)
    assert [s.state for s in states] == ["done"] * 6, [(s.cell.id, s.state, s.error) for s in states]
    ours, theirs = records(results), records(local)
    assert set(ours) == set(theirs) and len(ours) == 6
    for key, rec in ours.items():
        for field in ("metrics", "per_class", "n_images", "semantic"):
            assert rec[field] == theirs[key][field], (key, field)
    st = panbench("status", "--results", str(results))
    assert "6 done, 0 running, 0 queued, 0 failed" in st.stdout and "resubmit" not in st.stdout, st.stdout
    table = panbench("table", "--results", str(results), "--dataset", "demo")
    assert table.returncode == 0 and "incomplete" not in table.stderr, table.stderr
    for model in ("demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"):
        assert model in table.stdout
    robust = panbench("table", "--results", str(results), "--robustness")
    assert robust.returncode == 0 and "demo-maskformer" in robust.stdout, robust.stderr


@pytest.mark.slow
def test_a_cancelled_job_resubmitted_by_status_s_command_resumes_from_its_cache(slurm, demo_root,  # noqa: F811
                                                                                 tmp_path) -> None:
    results = tmp_path / "shared"
    m = submit(results, demo_root, "--model", "demo-maskformer", "--cache-every", "1")
    (job,) = m.submissions[0].jobs
    deadline = time.time() + 600
    while not list((results / "cache").glob("*/chunk-*.npz")):  # some images scored and cached
        assert time.time() < deadline, "the job cached no image within 600 s"
        assert not (results / "runs").exists(), "the job finished before it could be cancelled"
        time.sleep(0.2)
    subprocess.run(["scancel", job], check=True)
    (state,) = wait(results, m.sweep)
    assert state.state == "failed" and "CANCELLED" in (state.error or ""), state
    st = panbench("status", "--results", str(results), "--sweep", m.sweep)
    assert "0 done, 0 running, 0 queued, 1 failed" in st.stdout and f"job {job}: " in st.stdout, st.stdout
    (command,) = [line.split(": ", 1)[1] for line in st.stdout.splitlines() if "resubmit the 1 missing" in line]
    argv = shlex.split(command)
    assert argv[:2] == ["panbench", "submit"]
    r = panbench(*argv[1:])
    assert r.returncode == 0, r.stderr
    (state,) = wait(results, m.sweep)
    assert state.state == "done" and state.job != job, state
    (rec,) = records(results).values()
    assert rec["n_images"] == 60 and rec["timings"]["resumed_images"] >= 1
    log = (results / "sweeps" / m.sweep / "slurm" / f"{state.job}_0_log.err").read_text()
    assert re.search(r"resuming demo-maskformer: \d+ of 60 images already scored", log), log[-2000:]
    local = tmp_path / "local"
    r = panbench("eval", "--model", "demo-maskformer", "--dataset", "demo", "--data-root", str(demo_root),
                 "--results", str(local), "--workers", "0", "--cpu-procs", "1", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    (ref,) = records(local).values()
    assert rec["metrics"] == ref["metrics"] and rec["per_class"] == ref["per_class"]


@pytest.mark.slow
def test_a_job_with_a_bad_checkpoint_shows_in_status_with_its_error(slurm, demo_root, tmp_path) -> None:  # noqa: F811
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    results = tmp_path / "shared"
    m = submit(results, demo_root, "--model", "demo-maskformer", "--checkpoint", str(bad), "--corruptions",
               "gaussian_noise", "--severities", "3", "--limit", "2", "--group-by", "model")
    assert len(m.cells) == 2 and len(m.submissions[0].jobs) == 1  # the model's two cells, one job
    states = wait(results, m.sweep)
    assert [s.state for s in states] == ["failed", "failed"]
    st = panbench("status", "--results", str(results))
    failed = [line for line in st.stdout.splitlines() if line.strip().startswith("failed")]
    assert len(failed) == 2, st.stdout
    for line in failed:
        assert f"panbench: error: {bad}: not a PyTorch checkpoint" in line and "(log: " in line, line
    log = Path(failed[0].rsplit("(log: ", 1)[1].rstrip(")"))
    assert log.is_file()
    assert "resubmit the 2 missing: panbench submit" in st.stdout
    table = panbench("table", "--results", str(results))
    assert f"note: sweep {m.sweep} (0 of 2 cells recorded) incomplete" in table.stderr


@pytest.mark.slow
def test_a_preempted_job_is_requeued_and_resumes_from_its_cache(slurm, demo_root, tmp_path) -> None:  # noqa: F811
    """submitit's preemption signal (USR2, what Slurm sends before a time limit or a preemption): the job's
    checkpoint stops the eval and requeues the same job, which resumes from the cached images."""
    results = tmp_path / "shared"
    m = submit(results, demo_root, "--model", "demo-maskformer", "--cache-every", "1")
    (job,) = m.submissions[0].jobs
    deadline = time.time() + 600
    while not list((results / "cache").glob("*/chunk-*.npz")):
        assert time.time() < deadline, "the job cached no image within 600 s"
        assert not (results / "runs").exists(), "the job finished before it could be preempted"
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    t0 = time.time()
    for _ in range(120):  # requeued: pending, with a begin time Slurm sets some two minutes ahead
        if "Restarts=1" in subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the preempted job was not requeued within 60 s")
    assert time.time() - t0 < 20, "the checkpoint took the eval's whole stop timeout (30 s)"
    # Slurm holds a requeued job back (its begin time) until the old run's revoked credential expires; started at
    # once, a launch in the revoke's second is refused ("Job credential revoked": credentials carry whole seconds)
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)
    (state,) = wait(results, m.sweep)
    assert state.state == "done" and state.job == job, repr(state)[-600:]  # the same job, not a resubmission
    log = (results / "sweeps" / m.sweep / "slurm" / f"{job}_0_log.err").read_text()
    assert "this job is preempted" in log and "DUE TO JOB REQUEUE" in log, log[-2000:]
    assert re.search(r"resuming demo-maskformer: \d+ of 60 images already scored", log), log[-2000:]
    (rec,) = records(results).values()
    assert rec["n_images"] == 60 and rec["timings"]["resumed_images"] >= 1
