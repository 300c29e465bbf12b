"""Python's cyclic garbage collector paused around a block that makes many long-lived objects and no cycles.
Standard library only: every package may import it (it imports nothing of panbench)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """The collector off (with ``pause``) for the block, then as it was: a JSON parse, imports, a command that
    declares ``no_cycles``, where each collection walks the new objects in vain.  Not part of the Python API."""
    was = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
