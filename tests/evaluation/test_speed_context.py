"""Every eval record says what its speed was measured on (CPU model, GPU, threads, processes, ranks, load) and
whether another panbench run overlapped it: markers of running evals, stale ones of dead processes ignored."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from panbench import REPO_ROOT
from panbench.cli import main
from panbench.evaluation.context import RunMarker, cpu_model
from panbench.records.io import load_record
from panbench.records.rows import mark_shared_speed, speed_shared
from panbench.records.schema import RunRecord


def _marker(folder: Path, pid: int, start: float, end: float | None, host: str | None = None,
            job: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{host or socket.gethostname()}-{pid}.json").write_text(json.dumps(
        {"pid": pid, "host": host or socket.gethostname(), "job": job or f"pid-{pid}", "start": start, "end": end,
         "command": f"panbench eval (pid {pid})"}))


def test_runs_whose_intervals_intersect_overlap_and_stale_or_foreign_markers_do_not(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        t = time.time() - 1000  # our interval: [t + 120, t + 130]
        _marker(tmp_path, sleeper.pid, t + 100, None)  # alive, still running
        _marker(tmp_path, 11, t + 100, t + 125)  # finished inside our interval
        _marker(tmp_path, 12, t + 10, t + 50)  # finished before we started
        _marker(tmp_path, dead.pid, t + 100, None)  # killed: when it ended is unknown
        _marker(tmp_path, 13, t + 100, t + 150, host="another-host")  # another machine's cores
        _marker(tmp_path, 14, t + 100, t + 150, job=f"pid-{os.getpid()}")  # a rank of our own job
        _marker(tmp_path, 15, t - 2 * 86400, t - 86400 - 10)  # finished more than a day ago: removed
        me = RunMarker(tmp_path)
        got = sorted(o["pid"] for o in me.overlapping(t + 120, t + 130))
        assert got == sorted([sleeper.pid, 11])
        assert not (tmp_path / f"{socket.gethostname()}-15.json").exists()
        assert not (tmp_path / f"{socket.gethostname()}-{dead.pid}.json").exists()  # the stale marker is gone
        assert [o["pid"] for o in me.overlapping(time.time(), time.time())] == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()


def _eval(demo_root: Path, results: Path) -> RunRecord:
    assert main(["eval", "--model", "demo-mask2former", "--data-root", str(demo_root), "--results", str(results),
                 "--limit", "2", "--workers", "0", "--cpu-procs", "1", "--no-progress", "--no-resume"]) == 0
    return load_record(sorted((results / "runs").glob("*.json"))[-1])


def test_an_eval_beside_another_running_eval_records_the_overlap_and_says_so(demo_root, tmp_path, monkeypatch,
                                                                             capsys) -> None:
    running = tmp_path / "running"
    monkeypatch.setenv("PANBENCH_RUNNING_DIR", str(running))
    code = ("import sys, time; sys.argv = ['panbench', 'eval', '--model', 'other']; "
            "from panbench.evaluation.context import marker; marker(); print('ready', flush=True); time.sleep(120)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert other.stdout.readline().strip() == "ready"
        rec = _eval(demo_root, tmp_path / "res")
        err = capsys.readouterr().err
        ctx = rec["speed_context"]
        assert ctx["overlapped"] is True and [o["pid"] for o in ctx["overlapped_runs"]] == [other.pid]
        assert f"another panbench run overlapped this one (pid {other.pid})" in err
        assert speed_shared(rec) and mark_shared_speed("40.1", rec) == "40.1~"
    finally:
        other.send_signal(signal.SIGKILL)  # killed: its marker keeps no end time and becomes stale
        other.wait()
    alone = _eval(demo_root, tmp_path / "res")
    ctx = alone["speed_context"]
    assert ctx["overlapped"] is False and ctx["overlapped_runs"] == [] and not speed_shared(alone)
    assert mark_shared_speed("40.1", alone) == "40.1"
    assert ctx["cpu"] == cpu_model() and ctx["gpu"] is None and ctx["ranks"] == 1 and ctx["processes"] == 1
    assert ctx["torch_threads"] >= 1 and all(isinstance(ctx[k], float) for k in ("load_start", "load_end"))
