"""``--launcher slurm``: torchrun's variables derived from Slurm's as mmengine derives them, and two
ranks started with the environment srun gives them (gloo, --device cpu) writing the same record as
two torchrun ranks: the same exact sums, metrics and per-class results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port
from slurm_cluster import slurm  # noqa: F401  (the fixture)

from panbench.cluster.launcher import slurm_torch_env
from panbench.errors import PanbenchError
from panbench.package import REPO_ROOT

PY = sys.executable
VENV_BIN = Path(sys.executable).parent
SRUN_ENV = {"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NODELIST": "gpu[07-08]",
            "SLURM_TASKS_PER_NODE": "4(x2)", "SLURM_JOB_ID": "123456"}


def test_rank_world_and_local_rank_come_from_slurm() -> None:
    env = slurm_torch_env(SRUN_ENV, first_host=lambda nodes: {"gpu[07-08]": "gpu07"}[nodes])
    assert env == {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                   "MASTER_ADDR": "gpu07", "MASTER_PORT": str(29500 + 456)}


def test_master_address_and_port_already_set_are_kept() -> None:
    env = slurm_torch_env({**SRUN_ENV, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "40000"},
                          first_host=lambda nodes: pytest.fail("scontrol asked although MASTER_ADDR is set"))
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("10.0.0.1", "40000")


def test_outside_srun_it_is_refused_in_one_line() -> None:
    with pytest.raises(PanbenchError, match="SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST not set"):
        slurm_torch_env({})
    r = subprocess.run([PY, "-m", "panbench", "eval", "--model", "mask2former", "--dataset", "demo",
                        "--launcher", "slurm"], capture_output=True, text=True, cwd=REPO_ROOT,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "srun" in lines[0] and "Traceback" not in r.stderr, r.stderr


def _eval_args(results: Path) -> list[str]:
    return ["eval", "--model", "mask2former", "--dataset", "demo", "--data-root", str(REPO_ROOT / "data" / "demo"),
            "--results", str(results), "--workers", "0", "--no-progress", "--device", "cpu", "--limit", "6",
            "--no-resume"]


def _record(results: Path) -> dict:
    (path,) = sorted((results / "runs").glob("*.json"))
    return json.loads(path.read_text())


def _same_results(a: dict, b: dict) -> None:
    for key in ("metrics", "per_class", "n_images"):
        assert a[key] == b[key], key
    assert a["timings"]["world_size"] == b["timings"]["world_size"] == 2


def _wait(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str]]:
    deadline, out = time.time() + timeout, []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a rank hung")
        out.append((p.returncode, err))
    return out


@pytest.mark.slow
def test_two_ranks_under_the_slurm_launcher_write_torchrun_s_record(demo_root, tmp_path) -> None:
    ref = subprocess.run([str(VENV_BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", str(free_port()),
                          "-m", "panbench", *_eval_args(tmp_path / "torchrun")], capture_output=True, text=True,
                         cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    port = str(free_port())
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    procs = [subprocess.Popen([PY, "-m", "panbench", *_eval_args(tmp_path / "slurm"), "--launcher", "slurm"],
                              cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**clean, "SLURM_PROCID": str(k), "SLURM_LOCALID": str(k), "SLURM_NTASKS": "2",
                                   "SLURM_TASKS_PER_NODE": "2", "SLURM_NODELIST": "localhost",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"})
             for k in range(2)]
    for code, err in _wait(procs, 600):
        assert code == 0, err[-2000:]
    _same_results(_record(tmp_path / "slurm"), _record(tmp_path / "torchrun"))


@pytest.mark.slow
@pytest.mark.system
def test_srun_two_tasks_write_torchrun_s_record(slurm, demo_root, tmp_path) -> None:  # noqa: F811
    ref = subprocess.run([str(VENV_BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", str(free_port()),
                          "-m", "panbench", *_eval_args(tmp_path / "torchrun")], capture_output=True, text=True,
                         cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    r = subprocess.run(["srun", "-n", "2", "--time", "10", PY, "-m", "panbench", *_eval_args(tmp_path / "slurm"),
                        "--launcher", "slurm"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
                       env={**clean, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    _same_results(_record(tmp_path / "slurm"), _record(tmp_path / "torchrun"))
