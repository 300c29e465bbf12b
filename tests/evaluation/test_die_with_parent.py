"""The README's claim "a forked process dies with its parent (Linux)": a real ``panbench eval`` on
the demo set with two CPU processes is SIGKILLed while its forked process is scoring its shard; the
forked process must be gone (or a zombie waiting to be reaped) within a second.  Without
``PR_SET_PDEATHSIG`` the orphan keeps scoring the rest of its shard (it exits only when it tries
to hand back its result)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from panbench.data.demo import make_demo
from panbench.package import REPO_ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked CPU processes: Linux only")]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


BUSY_S = 0.3  # CPU seconds the forked process has spent on its shard (30 images, several seconds) when killed
GRACE_S = 1.0  # PR_SET_PDEATHSIG kills it at once; without it, it would score the rest of its shard


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _forked(parent: psutil.Process) -> list[psutil.Process]:
    """The parent's forked copies (same command line), not short-lived helpers such as git."""
    found = []
    try:
        cmdline = parent.cmdline()
        for c in parent.children(recursive=True):
            try:
                if c.cmdline() == cmdline:
                    found.append(c)
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return found


@pytest.mark.parametrize(("layout", "busy"), [(["--cpu-procs", "2"], BUSY_S),
                                            (["--cpu-procs", "1", "--workers", "2"], 0.0)])
def test_forked_processes_die_with_a_sigkilled_eval(tmp_path, layout: list[str], busy: float) -> None:
    """Forked evaluation processes, and DataLoader workers (one process, ``--workers 2``: they load ahead and may
    sit idle, so no CPU time is waited for)."""
    root = make_demo(REPO_ROOT / "data" / "demo")
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", "panoptic-fpn", "--dataset", "demo", "--data-root",
           str(root), *layout, "--no-resume", "--no-progress", "--results", str(tmp_path)]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not children and parent.poll() is None and time.monotonic() < deadline:
            children = _forked(psutil.Process(parent.pid))
            time.sleep(0.01)
        assert children, "eval never forked (or finished before it could be killed)"
        while _cpu_seconds(children) < busy and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # until the forked process is scoring its shard (an idle one exits on EOF anyway)
        assert parent.poll() is None, "eval finished before it could be killed"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + GRACE_S
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [c.pid for c in children if _alive(c)]
        assert not left, f"forked processes {left} outlived their SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for c in children:  # only the processes this test started
            try:
                c.kill()
            except psutil.NoSuchProcess:
                pass
