"""panbench/interrupts.py: ``sigint_deferred`` holds a Ctrl-C over its block and hands it on as the block ends; a
failed restore of the handler never leaves Ctrl-C noted and lost; where Python's handler cannot be swapped (a
sub-interpreter), the block runs as it is.  Its use, a record claimed and counted, is tests/reporting/
test_record_claim.py's."""

from __future__ import annotations

import os
import signal

import pytest

from panbench import interrupts


@pytest.fixture
def python_handler():
    """Python's own SIGINT handler in place, as in the console script (pytest in the background of a shell may have
    SIGINT ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_ctrl_c_in_the_block_comes_as_it_ends(python_handler) -> None:
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the step after the signal")
    assert done and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_failed_restore_still_lets_a_ctrl_c_end_the_command(python_handler, monkeypatch) -> None:
    """``signal.signal`` runs pending handlers of other signals first, which may raise (a DataLoader's SIGCHLD)."""
    real, calls = signal.signal, []

    def restore_fails(signum, handler):
        calls.append(handler)
        if len(calls) == 2:
            raise RuntimeError("a pending handler of another signal raised")
        return real(signum, handler)

    monkeypatch.setattr(interrupts.signal, "signal", restore_fails)
    with pytest.raises(RuntimeError):
        with interrupts.sigint_deferred():
            pass
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # the handler runs at the next instruction
            pass


def test_where_the_handler_cannot_be_swapped_the_block_runs_as_it_is(python_handler, monkeypatch) -> None:
    def sub_interpreter(signum, handler):
        raise ValueError("signal only works in main thread of the main interpreter")

    monkeypatch.setattr(interrupts.signal, "signal", sub_interpreter)
    done = []
    with interrupts.sigint_deferred():
        done.append("the block")
    assert done
