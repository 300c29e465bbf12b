"""The ``panbench`` console script and ``python -m panbench``: a Ctrl-C from the first instant ends in one line.
Until the command line's own handling is in place (:func:`panbench.cli.main`, after its imports), a Ctrl-C prints
``panbench: interrupted`` and exits 130 at once: nothing has been computed yet.  Standard library and
panbench.interrupts only."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from panbench.interrupts import INTERRUPTED


def _early(signum: int, frame: Any) -> None:
    try:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.stderr.flush()
    finally:
        os._exit(130)


def start() -> int:
    """Run the command of ``sys.argv``; a Ctrl-C during start-up ends it in one line (exit 130)."""
    python_handler = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored, not a host's
    if python_handler:
        signal.signal(signal.SIGINT, _early)
    try:
        from panbench.cli import main

        if python_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the command line's own handling takes over
        return main()
    except KeyboardInterrupt:  # between the two handlers
        _early(signal.SIGINT, None)
        return 130
