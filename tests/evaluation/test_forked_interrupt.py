"""Ctrl-C and eval's forked CPU processes (panbench.evaluation.inference): a forked process ignores SIGINT (the parent
alone answers it and ends its children), a process that dies without its result is an error at once, never a wait,
and the parent's interrupt ends every child within a second.  The shard's work is replaced by stand-ins, so these
run in milliseconds; the real commands interrupted at random times are tests/cli/test_interrupt_system.py's and
test_interrupt_commands_system.py's."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from panbench.errors import PanbenchError
from panbench.evaluation import inference

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked CPU processes: Linux only")


def _slow_shard(k: int) -> tuple[str, float]:
    time.sleep(0.6)
    return f"part {k}", 0.0


def test_a_forked_process_ignores_ctrl_c_and_still_hands_back_its_result(monkeypatch, capfd) -> None:
    monkeypatch.setattr(inference, "_forked_shard", _slow_shard)
    children = inference._fork_children(3)
    try:
        time.sleep(0.2)
        for p, _ in children:
            os.kill(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends every process of the group
        try:
            got = inference._gather(children, None)
        except KeyboardInterrupt:  # a forked process met the Ctrl-C and handed it back
            pytest.fail("a forked process was interrupted by SIGINT")
        assert got == [("part 1", 0.0), ("part 2", 0.0)]
    finally:
        inference._end_children(children)
    assert [p.exitcode for p, _ in children] == [0, 0]
    assert capfd.readouterr().err == ""  # no worker's traceback, no "Process ..." line


def _dies(k: int) -> None:
    os._exit(3)


def test_a_forked_process_that_dies_without_its_result_is_an_error_not_a_wait(monkeypatch) -> None:
    monkeypatch.setattr(inference, "_forked_shard", _dies)
    children = inference._fork_children(2)
    t0 = time.monotonic()
    try:
        with pytest.raises(PanbenchError, match=r"forked inference process 1 ended without its result \(exit code 3\)"):
            inference._gather(children, None)
    finally:
        inference._end_children(children)
    assert time.monotonic() - t0 < 5


def _forever(k: int) -> None:
    while True:
        time.sleep(1)


def test_an_interrupted_parent_ends_its_forked_processes_at_once(monkeypatch) -> None:
    monkeypatch.setattr(inference, "_forked_shard", _forever)
    children = inference._fork_children(3)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            try:
                inference._gather(children, None)
            except BaseException:  # as run_inference_cpu does
                inference._end_children(children, at_once=True)
                raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - t0 < 2
    assert all(p.exitcode == -signal.SIGKILL for p, _ in children)
