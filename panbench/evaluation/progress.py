"""The eval progress bar: it counts every image of the run, whichever process scored it.

Forked CPU processes add to a counter in shared memory; only the process that made the bar
draws it (a forked copy of a tqdm bar would write over the parent's)."""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any


class Progress:
    """A tqdm bar with ETA over ``total`` images named ``desc`` (draws nothing when disabled)."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.total = total
        self._count = mp.Value("q", 0)  # shared with processes forked later
        self._owner = os.getpid()
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False)

    @property
    def count(self) -> int:
        """Images done so far, in all processes."""
        return int(self._count.value)

    def add(self, n: int) -> None:
        """``n`` more images done (in this process or a forked one)."""
        with self._count.get_lock():
            self._count.value += n
        self.refresh()

    def refresh(self) -> None:
        """Redraw with the count of every process (in the process that made the bar)."""
        if self._bar is not None and os.getpid() == self._owner:
            self._bar.n = self.count
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None and os.getpid() == self._owner:
            self.refresh()
            self._bar.close()
            self._bar = None
