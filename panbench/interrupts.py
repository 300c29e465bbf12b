"""Ctrl-C held off for a few instructions: steps that must happen together or not at all as a terminal's SIGINT
comes.  Two ways, for two jobs: :func:`sigint_held` blocks the signal in the calling thread, so that a process forked
there starts with it blocked; :func:`sigint_deferred` defers Python's handler, which runs in the main thread whichever
thread the signal reached, so that a record's name is claimed and noted together."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPTED = "panbench: interrupted"  # the one line a Ctrl-C leaves (panbench.console, panbench.cli)


@contextmanager
def sigint_held() -> Iterator[None]:
    """SIGINT blocked in this thread, so that processes forked here start with it blocked; a Ctrl-C meanwhile is
    delivered as it ends.  Other threads of the process may still take the signal (the kernel gives a process's signal
    to any thread that does not block it): for steps that must not be split, :func:`sigint_deferred`.  Without signal
    masks (Windows), nothing."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Noting:
    """The SIGINT handler of :func:`sigint_deferred`: notes the signal while active, else hands it to ``old`` (where
    putting ``old`` back failed, a Ctrl-C still ends the command)."""

    def __init__(self, old: Callable[[int, Any], Any]) -> None:
        self.old, self.active, self.noted = old, True, list[tuple[int, Any]]()

    def __call__(self, signum: int, frame: Any) -> None:
        if self.active:
            self.noted.append((signum, frame))
        else:
            self.old(signum, frame)


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """In the main thread: a Ctrl-C during the block noted, not acted on, and handed to the handler that was in place
    as the block ends (Python's: the KeyboardInterrupt then).  The steps inside must be short: they cannot be
    interrupted.  In another thread (where Python runs no handler), in a sub-interpreter, or where SIGINT has no
    Python handler, nothing."""
    old = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not callable(old):
        yield
        return
    noting = _Noting(old)
    try:
        signal.signal(signal.SIGINT, noting)
    except ValueError:  # not the main interpreter's main thread: Python runs no handler here
        yield
        return
    try:
        yield
    finally:
        noting.active = False
        signal.signal(signal.SIGINT, old)
        if noting.noted:
            old(*noting.noted[0])
