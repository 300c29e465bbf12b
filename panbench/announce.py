"""What a command is doing while the user waits, on stderr: a line as each phase starts (``announce``) and the count
of a loop's steps (``steps``); ``--no-progress`` turns both off (``enable``).  Standard library only: every package
may import it.  tests/test_announce.py reads the code for the waits that must start with one."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

_Item = TypeVar("_Item")

PREFIX = "panbench: "
EVERY_S = 1.0  # a line of steps() at most this often where stderr is not a terminal

_state = {"on": True}


def enable(on: bool) -> bool:
    """Announce (the default) or not (``--no-progress``); whether it announced before."""
    before, _state["on"] = _state["on"], on
    return before


def announce(what: str) -> None:
    """One line on stderr: ``panbench: <what>...`` (nothing when turned off)."""
    if _state["on"]:
        print(f"{PREFIX}{what}...", file=sys.stderr, flush=True)


def steps(what: str, items: Iterable[_Item], total: int | None = None) -> Iterator[_Item]:
    """``items``, announcing ``what`` and counting them as they are taken (``panbench: <what> k/N``)."""
    if not _state["on"]:
        yield from items
        return
    n = total if total is not None else (len(items) if isinstance(items, Sized) else None)
    tty, last, k = sys.stderr.isatty(), 0.0, 0
    announce(what if n is None else f"{what} ({n})")
    for k, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if tty or now - last >= EVERY_S or k == n:
            count = f"{k}/{n}" if n is not None else str(k)
            print(f"\r{PREFIX}{what} {count}" if tty else f"{PREFIX}{what} {count}", file=sys.stderr,
                  end="" if tty and k != n else "\n", flush=True)
            last = now
    if tty and k and k != n:
        print(file=sys.stderr, flush=True)
