"""A sweep: the cells of ``panbench submit``, its manifest (``RESULTS/sweeps/<id>.json``, :class:`Manifest`) and the
job that runs cells, each ``python -m panbench eval ...``, marking each recorded cell (docs/cluster.md)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError

SWEEPS = "sweeps"


@dataclass(frozen=True)
class Cell:
    """One evaluation of a sweep: a model on a dataset, clean or under one corruption and severity."""

    model: str
    dataset: str
    corruption: str | None = None
    severity: int | None = None

    @property
    def label(self) -> str:
        return "clean" if self.corruption is None else f"{self.corruption}-{self.severity}"

    @property
    def id(self) -> str:
        """The cell's name in the manifest and its marker file (``demo-maskformer.demo.fog-3``)."""
        return re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{self.model}.{self.dataset}.{self.label}")

    @property
    def record_dataset(self) -> str:
        """The ``dataset`` its record holds (``demo+fog-3`` for a corrupted run)."""
        return self.dataset if self.corruption is None else f"{self.dataset}+{self.label}"

    def record(self, results: Path, since: float) -> str | None:
        """The path below ``results`` of this cell's newest record written since ``since``, None without one."""
        from panbench.records.io import record_files

        found = [p for p in record_files(results, self.model, self.record_dataset) if p.stat().st_mtime >= since - 1]
        return str(found[-1].relative_to(results)) if found else None

    def eval_args(self) -> list[str]:
        out = ["--model", self.model, "--dataset", self.dataset]
        if self.corruption is not None:
            out += ["--corruption", self.corruption, "--severity", str(self.severity)]
        return out


def plan(models: list[str], dataset: str, corruptions: list[str], severities: list[int]) -> list[Cell]:
    """Every model on the clean images and under each corruption x severity, model by model."""
    runs = [(None, None)] + [(c, s) for c in corruptions for s in severities]
    return [Cell(m, dataset, c, s) for m in models for c, s in runs]


def groups(cells: list[Cell], group_by: str) -> list[list[Cell]]:
    """The cells of each job: one cell per job (``cell``), or a model's cells in one job (``model``)."""
    if group_by == "cell":
        return [[c] for c in cells]
    out: dict[str, list[Cell]] = {}
    for c in cells:
        out.setdefault(c.model, []).append(c)
    return list(out.values())


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def sweep_dir(results: Path, sweep_id: str) -> Path:
    return results / SWEEPS / sweep_id


def manifest_path(results: Path, sweep_id: str) -> Path:
    return results / SWEEPS / f"{sweep_id}.json"


@dataclass
class Submission:
    """One ``panbench submit`` of a sweep's cells: when, and each job id -> the ids of its cells."""

    date: str
    jobs: dict[str, list[str]]


@dataclass
class Manifest:
    """A sweep, ``RESULTS/sweeps/<sweep>.json`` (docs/cluster.md), read by :meth:`load` and written by :meth:`save`."""

    sweep: str  # its id
    created: str
    command: str
    group_by: str  # cell or model (:func:`groups`)
    cells: list[Cell]
    eval_args: list[str]
    slurm: dict[str, Any]  # the Slurm options (panbench.cli.submit.SLURM), None where not given
    submissions: list[Submission] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            m = json.loads(path.read_text())
            return cls(**{**m, "cells": [Cell(**c) for c in m["cells"]],
                          "submissions": [Submission(**sub) for sub in m.get("submissions", [])]})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PanbenchError(f"{path}: not a sweep manifest ({e}); move it out of {path.parent}") from e

    def save(self, results: Path) -> Path:
        """Write it as ``RESULTS/sweeps/<sweep>.json``; returns that path."""
        from panbench.records.io import atomic_write_text

        path = manifest_path(results, self.sweep)
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")
        return path

    def submitted(self, date: str, jobs: dict[str, list[Cell]]) -> None:
        self.submissions.append(Submission(date, {j: [c.id for c in cells] for j, cells in jobs.items()}))


def manifests(results: Path) -> list[Manifest]:
    """The sweeps of a results folder, oldest first; a file there that is no manifest noted and left out."""
    from panbench.records.io import note_skipped  # numpy: not at the import of --help's options

    found = []
    for p in sorted((results / SWEEPS).glob("*.json")):
        try:
            found.append(Manifest.load(p))
        except PanbenchError as e:
            note_skipped(str(e))
    return found


def load_manifest(results: Path, sweep_id: str) -> Manifest:
    path = manifest_path(results, sweep_id)
    if not path.is_file():
        have = ", ".join(m.sweep for m in manifests(results)) or "none"
        raise PanbenchError(f"{path}: no such sweep in {results} (sweeps there: {have}); pass another --results "
                            "or sweep id")
    return Manifest.load(path)


def cell_dicts(cells: list[Cell]) -> list[dict[str, Any]]:
    return [asdict(c) for c in cells]


def cell_marker(results: Path, sweep_id: str, cell: Cell) -> Path:
    return sweep_dir(results, sweep_id) / "cells" / f"{cell.id}.json"


def done(results: Path, manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Cell id -> its marker, for the cells whose record is written."""
    out = {}
    for c in manifest.cells:
        with suppress(OSError, ValueError):
            out[c.id] = json.loads(cell_marker(results, manifest.sweep, c).read_text())
    return out


def incomplete_note(results: Path) -> str | None:
    """One line naming the sweeps of ``results`` whose cells are not all recorded (markers only); None for none."""
    try:
        sweeps = manifests(results)
    except PanbenchError as e:
        return f"note: {e}"
    short = [(m.sweep, len(done(results, m)), len(m.cells)) for m in sweeps]
    if not (short := [s for s in short if s[1] < s[2]]):
        return None
    what = ", ".join(f"{i} ({d} of {n} cells recorded)" for i, d, n in short)
    return f"note: sweep{'s' if len(short) > 1 else ''} {what} incomplete; `panbench status --results {results}` " \
           "says which cells and how to resubmit them"


def note_incomplete_sweeps(results: str | Path) -> None:
    """:func:`incomplete_note` on stderr, where there is one (``table``, ``report``, ``robustness``)."""
    if note := incomplete_note(Path(results)):
        print(note, file=sys.stderr)


class CellJob:
    """What one Slurm job runs (pickled by submitit): its cells not yet recorded, one ``panbench eval`` each."""

    def __init__(self, results: str, sweep_id: str, cells: list[dict[str, Any]], eval_args: list[str],
                 python: str | None = None) -> None:
        self.results, self.sweep_id, self.cells, self.eval_args = results, sweep_id, cells, eval_args
        self.python = python or sys.executable
        self._proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_proc": None}

    def __call__(self) -> list[str]:
        results = Path(self.results)
        rank0 = os.environ.get("SLURM_PROCID", "0") in ("", "0")
        multi = int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1
        failed, recorded = [], []
        for cell in (Cell(**c) for c in self.cells):
            mark = cell_marker(results, self.sweep_id, cell)
            if mark.exists():
                print(f"cell {cell.id}: recorded already ({mark})", flush=True)
                continue
            cmd = [self.python, "-m", "panbench", "eval", *cell.eval_args(), *self.eval_args,
                   *(["--launcher", "slurm"] if multi else [])]
            print(f"cell {cell.id}: {shlex.join(cmd)}", flush=True)
            start = time.time()
            # the eval ignores submitit's preemption signal (Slurm sends it to every process of the step): this
            # job's handler stops it (checkpoint) and requeues
            self._proc = subprocess.Popen(cmd, preexec_fn=_ignore_preemption)
            code = self._proc.wait()
            self._proc = None
            if code != 0:
                print(f"cell {cell.id}: panbench eval exited {code}", file=sys.stderr, flush=True)
                failed.append(cell.id)
                continue
            if not rank0:
                continue
            if (record := cell.record(results, start)) is None:
                print(f"cell {cell.id}: no record of it in {results / 'runs'}", file=sys.stderr, flush=True)
                failed.append(cell.id)
                continue
            from panbench.records.io import atomic_write_text

            atomic_write_text(mark, json.dumps({"record": record, "job": _job_id(),
                                                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                "seconds": round(time.time() - start, 1)}) + "\n")
            recorded.append(cell.id)
        if failed:
            raise PanbenchError(f"{len(failed)} cell(s) failed: {', '.join(failed)} (the error is above)")
        return recorded

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook on preemption or timeout: stop the running eval and requeue this job as it is."""
        from submitit.helpers import DelayedSubmission

        if self._proc is not None and self._proc.returncode is None:  # not reaped yet: its pid is still its own
            _stop(self._proc.pid)
        return DelayedSubmission(CellJob(self.results, self.sweep_id, self.cells, self.eval_args, self.python))


def _stop(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the eval ``pid``, SIGKILL it after ``timeout`` s, and reap it, by pid: this runs in a signal handler
    that may have interrupted ``Popen.wait``, which holds the Popen's wait lock."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.05)
    except (ChildProcessError, ProcessLookupError):  # already reaped / gone
        return


def _ignore_preemption() -> None:
    signal.signal(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")), signal.SIG_IGN)


def _job_id() -> str:
    a, t = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{a}_{t}" if a and t else os.environ.get("SLURM_JOB_ID", "")


def minutes(text: str) -> int:
    """Slurm's time formats (``90``, ``1:30:00``, ``2-00:00:00``, ``30:00``) as whole minutes (at least 1)."""
    if not (m := re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())):
        raise PanbenchError(f"--time {text}: not a Slurm time; use minutes (90), HH:MM:SS (1:30:00) or "
                            "D-HH:MM:SS (2-00:00:00)")
    day, a, b, c = m.groups()
    n = [int(x) for x in (a, b, c) if x]
    if day is None and len(n) < 3:  # MM, MM:SS
        total = n[0] + (n[1] / 60 if len(n) > 1 else 0)
    else:  # HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
        n += [0] * (3 - len(n))
        total = int(day or 0) * 1440 + n[0] * 60 + n[1] + n[2] / 60
    return max(1, int(-(-total // 1)))
