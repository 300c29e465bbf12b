"""The eval progress bar over every image of a run: forked CPU processes and torchrun ranks counted (docs/eval.md,
"What one run does"); plain lines where stderr is not a terminal."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from typing import Any


class Progress:
    """The eval progress bar over every image of the run (docs/eval.md, "What one run does"); no lock between
    processes (a killed one would leave it held); only the process that made the bar draws it. Where stderr is
    not a terminal (a log file, a pipe, a Slurm job's output) the bar is plain lines instead, no ``\\r``: one
    each tenth of the images or :data:`LINE_EVERY_S` seconds, whichever comes first, and one at the end."""

    def __init__(self, total: int, desc: str, enabled: bool = True, store_key: str | None = None) -> None:
        self._counts: Any = mp.RawArray("q", 1)  # one slot per process; shared with processes forked later
        self._slot = 0  # this process's
        self._lock = threading.Lock()  # between the threads of one process
        self._owner = os.getpid()
        self._bar: Any = None
        self._store: Any = None
        if store_key:
            from torch.distributed import distributed_c10d

            self._store = distributed_c10d._get_default_store()
        self._key = store_key
        self._lines: _Lines | None = None
        if enabled and not sys.stderr.isatty():
            self._lines = _Lines(total, desc)
        elif enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False)

    def fork_slots(self, n: int) -> None:
        """Before forking processes 1 .. ``n - 1``: a slot for each (the count so far kept in slot 0, this
        process's); each forked process then calls :meth:`use_slot` with its number."""
        counts = mp.RawArray("q", max(1, n))
        counts[0] = self.count
        self._counts, self._slot = counts, 0

    def use_slot(self, k: int) -> None:
        """In forked process ``k``: add to slot ``k`` (its own) from now on."""
        self._slot = k

    @property
    def count(self) -> int:
        """Images done so far, in all processes (all ranks under torchrun)."""
        if self._store is not None:
            return int(self._store.add(self._key, 0))
        return int(sum(self._counts))

    def add(self, n: int) -> None:
        """``n`` more images done (in this process, a forked one or another rank)."""
        if self._store is not None:
            self._store.add(self._key, n)
        else:
            with self._lock:
                self._counts[self._slot] += n
        self.refresh()

    def refresh(self) -> None:
        """Redraw with the count of every process (in the process that made the bar)."""
        if os.getpid() != self._owner:
            return
        if self._bar is not None:
            self._bar.n = self.count
            self._bar.refresh()
        elif self._lines is not None:
            self._lines.show(self.count)

    def close(self) -> None:
        if os.getpid() != self._owner:
            return
        if self._bar is not None:
            self.refresh()
            self._bar.close()
            self._bar = None
        elif self._lines is not None:
            self._lines.show(self.count, last=True)
            self._lines = None


LINE_EVERY_S = 60.0  # the longest wait between two progress lines where stderr is not a terminal


class _Lines:
    """The progress bar as lines for a log: ``DESC: 120/5000 images (2%, 31 s)``."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc = total, desc
        self.start = self.last = time.monotonic()
        self.shown, self.printed = 0, False  # the count of the last line; whether there was one
        self.step = max(1, -(-total // 10))

    def show(self, n: int, last: bool = False) -> None:
        now = time.monotonic()
        if n == self.shown and self.printed:
            return
        if not (last or n // self.step > self.shown // self.step or now - self.last >= LINE_EVERY_S):
            return
        pct = f"{100 * n / self.total:.0f}%, " if self.total else ""
        print(f"{self.desc}: {n}/{self.total} images ({pct}{now - self.start:.0f} s)", file=sys.stderr, flush=True)
        self.shown, self.last, self.printed = n, now, True
