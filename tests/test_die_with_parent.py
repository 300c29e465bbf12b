"""The README's claim "a forked process dies with its parent (Linux)": a real ``panbench eval`` on
the demo set with two CPU processes is SIGKILLed as soon as it has forked; its forked process must be
gone (or a zombie waiting to be reaped) within seconds.  Without ``PR_SET_PDEATHSIG`` the orphan
keeps scoring its shard and then waits for the next task forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from panbench.demo_data import make_demo
from panbench.registry import REPO_ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked CPU processes: Linux only")]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_forked_processes_die_with_a_sigkilled_eval(tmp_path) -> None:
    root = make_demo(REPO_ROOT / "data" / "demo")
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", "mask2former", "--dataset", "demo", "--data-root",
           str(root), "--cpu-procs", "2", "--no-resume", "--no-progress", "--results", str(tmp_path)]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not children and parent.poll() is None and time.monotonic() < deadline:
            children = psutil.Process(parent.pid).children(recursive=True)
            time.sleep(0.01)
        assert children, "eval never forked (or finished before it could be killed)"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
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
