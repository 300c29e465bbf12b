"""Python's cyclic garbage collector paused around a block that makes many long-lived objects and no cycles.
Standard library only: every package may import it (it imports nothing of panbench)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """Python's cyclic garbage collector off (with ``pause``) for the block, then as it was: where a block makes
    many objects that live on and no reference cycles (a JSON parse, imports, the command line's parse, a command
    that declares ``no_cycles`` among its defaults), each collection its allocations trigger walks them all in vain.
    Not part of the Python API."""
    was = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
