"""Ctrl-C held off for a few instructions: the steps that must happen together or not at all as a terminal's
SIGINT comes (a forked process that must ignore it from its first instruction, a record's name claimed and noted)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigint_held() -> Iterator[None]:
    """SIGINT blocked in this thread, so that processes forked here start with it blocked and the steps inside
    happen together; a Ctrl-C meanwhile is delivered as it ends.  Without signal masks (Windows), nothing."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
