"""The runs that resume, interrupted by Ctrl-C (tests/cli/ctrl_c.py: SIGINT to the whole process group, and what each
interrupt is checked for) at random times over their phases (start-up, model load, forward, scoring, writing):
``eval --model all`` (the three demo models, forked CPU processes) takes :data:`EVAL_INTERRUPTS` interrupts and
``robustness`` 3, and once the interrupted runs are resumed to the end every record written equals an uninterrupted
run's; eval's forked processes interrupted while they score, and Ctrl-C during start-up, idle and beside a CPU-bound
job.  Minutes of real runs: a ``system`` test."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ctrl_c import START_S, Outcome, pq_of_records, problems, report, run, run_interrupted

pytestmark = pytest.mark.system

EVAL_INTERRUPTS = 12  # at seeded times over the run's phases, from start-up to the records' writing
MODELS = ("demo-mask2former", "demo-maskformer", "demo-panoptic-fpn")
EVAL = ["eval", "--model", "all", "--dataset", "demo", "--limit", "6", "--cpu-procs", "3"]
CHAIN = 10  # runs on one results folder before it is resumed to the end


@pytest.fixture(scope="module")
def reference(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, float]], float]:
    """An uninterrupted ``eval --model all`` on the demo set: each model's PQ fields, and its duration."""
    folder = tmp_path_factory.mktemp("reference")
    t0 = time.monotonic()
    run([*EVAL, "--data-root", str(demo_root), "--results", str(folder)], folder)
    took = time.monotonic() - t0
    recs = pq_of_records(folder)
    assert tuple(sorted(recs)) == MODELS
    return {m: r[0] for m, r in recs.items()}, took


def test_eval_ends_at_once_on_ctrl_c_and_resumes_to_the_same_numbers(demo_root: Path, tmp_path: Path,
                                                                     reference) -> None:
    """:data:`EVAL_INTERRUPTS` interrupts at random times over the run (seeded), in chains of up to :data:`CHAIN` on one
    results folder (each run resumes the one before, as a user pressing Ctrl-C again would), each chain then
    resumed to the end: every record in the folder (those of models that finished between two interrupts too) has
    the uninterrupted run's PQ fields.  The times are drawn over the shortest whole run seen (the reference's, taken
    on a machine that may have been busier then, or a chain's first run that ended before its signal)."""
    pq, took = reference
    rng = random.Random(74)
    failures: list[tuple[Outcome, list[str]]] = []
    interrupts = chain = chains = 0
    folder = tmp_path / "r0"
    args = [*EVAL, "--data-root", str(demo_root)]
    while interrupts < EVAL_INTERRUPTS:
        before = frozenset((folder / "runs").glob("*.json"))
        whole = chain == 0  # a fresh folder, no image cached (the cache keeps every image an earlier run scored)
        # a resumed run is shorter than the first: drawn over 0.7 of the first's time, fewer end before the signal
        o = run_interrupted([*args, "--results", str(folder)], rng.uniform(START_S, 0.7 * took), tmp_path)
        if o.interrupted:
            interrupts += 1
            if why := problems(o, folder, MODELS, before):
                failures.append((o, why))
        else:
            assert o.code == 0 and "Traceback" not in o.output, o.output
            if whole:
                took = min(took, o.ran_s)
        chain += 1
        if chain == CHAIN or interrupts == EVAL_INTERRUPTS:
            run([*args, "--results", str(folder), "--no-progress"], tmp_path)
            for model, recs in pq_of_records(folder).items():
                assert all(r == pq[model] for r in recs), (model, recs, pq[model])
            chains += 1
            folder, chain = tmp_path / f"r{chains}", 0
    assert not failures, report(failures, interrupts)


def _forked_busy(pid: int) -> bool:
    """Whether eval ``pid``'s forked CPU processes (its children of the same command line) are scoring: each has
    spent 0.3 s of CPU."""
    import psutil

    try:
        parent = psutil.Process(pid)
        forked = [c for c in parent.children() if c.cmdline() == parent.cmdline()]
        return len(forked) == 2 and all(sum(c.cpu_times()[:2]) > 0.3 for c in forked)
    except psutil.Error:
        return False


def test_eval_interrupted_while_its_forked_processes_score_ends_at_once(demo_root: Path, tmp_path: Path) -> None:
    """The phase the forked processes are in, interrupted twice: none prints a traceback (a ``Process
    ForkPoolWorker-N:`` traceback of a pool worker that met the KeyboardInterrupt), the command ends at once."""
    failures, n = [], 0
    for k in range(2):
        o = run_interrupted(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root",
                             str(demo_root), "--cpu-procs", "3", "--no-progress", "--results", str(tmp_path / f"r{k}")],
                            120, tmp_path, when=_forked_busy)
        assert o.interrupted, o.output
        n += 1
        if why := problems(o):
            failures.append((o, why))
    assert not failures, report(failures, n)


def test_robustness_ends_at_once_on_ctrl_c_and_resumes_to_the_same_numbers(demo_root: Path, tmp_path: Path) -> None:
    """``robustness`` (one model, one corruption at two severities, in one process whose DataLoader workers
    corrupt the images) interrupted 3 times in a chain, then resumed: its summary's numbers are those of an
    uninterrupted sweep."""
    args = ["robustness", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
            "--limit", "4", "--cpu-procs", "1", "--workers", "2", "--corruptions", "gaussian_noise", "--severities",
            "1,3", "--no-plots"]
    t0 = time.monotonic()
    run([*args, "--results", str(tmp_path / "ref")], tmp_path)
    took = time.monotonic() - t0
    rng = random.Random(76)
    failures, n = [], 0
    for _ in range(3):
        o = run_interrupted([*args, "--results", str(tmp_path / "r")], rng.uniform(START_S, took), tmp_path)
        n += o.interrupted
        if o.interrupted and (why := problems(o)):
            failures.append((o, why))
    run([*args, "--results", str(tmp_path / "r"), "--no-progress"], tmp_path)
    assert not failures, report(failures, n)
    ref, got = pq_of_records(tmp_path / "ref"), pq_of_records(tmp_path / "r")
    assert sorted(ref) == sorted(got)
    assert all(r == ref[m][0] for m, recs in got.items() for r in recs)


EARLY_S = 0.06  # Python's own start-up (its interpreter, site and .pth files) takes about 0.05 s before panbench's


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "beside a CPU-bound job"])
def test_ctrl_c_during_start_up_ends_in_one_line(demo_root: Path, tmp_path: Path, busy: bool) -> None:
    """Ctrl-C at 0.06-1.2 s into ``eval`` (the interpreter's start-up done: panbench's imports, the command line, the
    model's load), 8 times, with both cores idle and while two processes spin on them: one line, exit 130, every
    process gone within the limit."""
    args = ["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root), "--limit", "2",
            "--results", str(tmp_path / "r")]
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if busy else 0)]
    rng = random.Random(5 + busy)
    failures, n = [], 0
    try:
        for k in range(8):
            o = run_interrupted([*args, "--no-resume"], EARLY_S + k * 0.15 + rng.uniform(0, 0.05), tmp_path)
            n += o.interrupted
            if o.interrupted and (why := problems(o)):
                failures.append((o, why))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert n >= 6 and not failures, report(failures, n)
