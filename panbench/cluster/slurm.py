"""What panbench asks of Slurm for a sweep: the submission through submitit, the sbatch script (``--dry-run``), the
jobs' states and each cell's state for ``panbench status``, with a failed job's last error line."""

from __future__ import annotations

import calendar
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.cluster.sweep import Cell, CellJob, Manifest, done, minutes, sweep_dir
from panbench.errors import PanbenchError

QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "RESIZING"}
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "STOPPED"}


def parameters(slurm: dict[str, Any], sweep_id: str) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters of the sweep's jobs (docs/cluster.md)."""
    gpus = int(slurm.get("gpus_per_job") or 0)
    cpus = int(slurm.get("cpus_per_job") or 1)
    p: dict[str, Any] = {"job_name": f"panbench-{sweep_id}", "time": minutes(str(slurm.get("time") or "60")),
                         "nodes": 1, "ntasks_per_node": max(1, gpus), "cpus_per_task": cpus,
                         "setup": [f"export OMP_NUM_THREADS={cpus}"], "additional_parameters": {"requeue": True}}
    if slurm.get("max_parallel"):
        p["array_parallelism"] = int(slurm["max_parallel"])
    if gpus:
        p["gpus_per_node"] = gpus
    p.update({k: str(slurm[k]) for k in ("partition", "mem", "qos", "account", "constraint") if slurm.get(k)})
    return p


def script(folder: Path, params: dict[str, Any], n_jobs: int) -> str:
    """The sbatch script submitit submits for ``n_jobs`` jobs (an array when more than one)."""
    from submitit.slurm.slurm import _make_sbatch_string

    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(folder))])
    array: dict[str, Any] = {"map_count": n_jobs} if n_jobs > 1 else {}
    return _make_sbatch_string(command=command, folder=folder, **params, **array)


def submit(folder: Path, params: dict[str, Any], jobs: list[CellJob]) -> list[str]:
    """Submit the jobs as one array; their job ids (``123_0``, ... or ``123`` for one job)."""
    if shutil.which("sbatch") is None:
        raise PanbenchError("sbatch not found: run `panbench submit` on a Slurm login node (or --dry-run to print "
                            "the sbatch script)")
    import submitit

    executor = submitit.SlurmExecutor(folder=folder)
    executor.update_parameters(**params)
    try:
        with executor.batch():
            handles = [executor.submit(j) for j in jobs]
    except submitit.core.utils.FailedJobError as e:
        why = " ".join(str(e).split())[-400:]
        raise PanbenchError(f"sbatch refused the sweep: {why}; fix the Slurm options (--partition, --time, ...) "
                            "or check them with --dry-run and `sbatch --test-only`") from e
    return [h.job_id for h in handles]


def _expand(job: str) -> list[str]:
    """``123_[0-3%2]`` / ``123_[1,4-5]`` -> the tasks' ids; ``123_4`` and ``123`` as they are."""
    if not (m := re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job)):
        return [job]
    out = []
    for part in m.group(2).split(","):
        a, _, b = part.partition("-")
        out += [f"{m.group(1)}_{k}" for k in range(int(a), int(b or a) + 1)]
    return out


def job_states(job_ids: list[str]) -> dict[str, str] | None:
    """Job id -> Slurm state (``squeue``'s, else ``sacct``'s); None where neither command answers (no Slurm)."""
    if not (masters := ",".join(sorted({j.split("_")[0] for j in job_ids}))):
        return {}
    out: dict[str, str] = {}
    answered = False
    for cmd in (["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", masters],
                ["squeue", "-h", "-o", "%i|%T", "-j", masters]):  # second: its live states replace sacct's
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        answered = answered or r.returncode == 0
        for line in r.stdout.splitlines() if r.returncode == 0 else []:
            job, _, state = line.strip().partition("|")
            for j in _expand(job.strip()):
                out[j] = state.split()[0] if state.split() else "UNKNOWN"
    return out if answered else None


_ERROR_LINES = (r"^panbench: error:", r"^slurmstepd(-\S+)?: error: \*\*\* JOB", r"^[\w.]*(Error|Exception|Interrupt)\b")


def last_error(path: Path) -> str | None:
    """The line of a job's log that says why it stopped (panbench's error, Slurm's, an exception), else its last."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 65536))
            lines = [x.strip() for x in f.read().decode(errors="replace").splitlines()
                     if x.strip() and "DUE TO JOB REQUEUE" not in x]  # a requeue is no error: the job goes on
    except OSError:
        return None
    for pattern in _ERROR_LINES:
        if hits := [x for x in lines if re.search(pattern, x)]:
            return hits[-1]
    return lines[-1] if lines else None


def _epoch(date: str) -> float:
    try:
        return calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class CellState:
    cell: Cell
    state: str  # done, running, queued, failed, missing (never submitted), unknown (no Slurm to ask)
    job: str | None = None
    error: str | None = None
    log: Path | None = None


def cell_states(results: Path, manifest: Manifest, states: dict[str, str] | None = None,
                ask: bool = True) -> list[CellState]:
    """Each cell's state: done (its marker), else its latest job's (``states``, else asked of Slurm with ``ask``)."""
    recorded = done(results, manifest)
    latest: dict[str, str] = {}
    recent: set[str] = set()  # submitted a minute ago or less: Slurm may not list them yet
    for sub in manifest.submissions:
        for job_id, cells in sub.jobs.items():
            latest.update(dict.fromkeys(cells, job_id))
            if time.time() - _epoch(sub.date) < 60:
                recent.add(job_id)
    if states is None and ask:
        states = job_states(sorted(set(latest.values())))

    def of(cell: Cell) -> CellState:
        if cell.id in recorded:
            return CellState(cell, "done", recorded[cell.id].get("job"))
        if (job := latest.get(cell.id)) is None:
            return CellState(cell, "missing")
        log = sweep_dir(results, manifest.sweep) / "slurm" / f"{job}_0_log.err"  # submitit's log of its first task
        if states is None:
            return CellState(cell, "unknown", job, "neither sacct nor squeue answered: run status where Slurm's "
                             "commands are", log if log.exists() else None)
        state = states.get(job, "")
        if state in QUEUED or (not state and job in recent):
            return CellState(cell, "queued", job)
        if state in RUNNING:
            return CellState(cell, "running", job, log=log)
        why = last_error(log) or ("the job ended without recording this cell" if state == "COMPLETED"
                                  else f"Slurm says {state or 'nothing of this job'}")
        return CellState(cell, "failed", job, why, log if log.exists() else None)

    return [of(cell) for cell in manifest.cells]
