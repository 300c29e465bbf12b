"""The eval progress bar: it counts every image of the run, whichever process scored it.

Forked CPU processes add to a counter in shared memory; torchrun ranks add to a counter in the
process group's key-value store (the one torchrun's rendezvous set up); only the process that made
the bar (rank 0's) draws it: a forked copy of a tqdm bar would write over the parent's."""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any


class Progress:
    """A tqdm bar with ETA over ``total`` images named ``desc`` (draws nothing when disabled).
    ``store_key``: under torchrun, the key under which every rank adds its images (the same on every
    rank, unique per run), so that rank 0's bar counts the whole job."""

    def __init__(self, total: int, desc: str, enabled: bool = True, store_key: str | None = None) -> None:
        self.total = total
        self._count = mp.Value("q", 0)  # shared with processes forked later
        self._owner = os.getpid()
        self._bar: Any = None
        self._store: Any = None
        if store_key:  # the default process group's key-value store (torchrun's rendezvous store)
            from torch.distributed import distributed_c10d

            self._store = distributed_c10d._get_default_store()
        self._key = store_key
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False)

    @property
    def count(self) -> int:
        """Images done so far, in all processes (all ranks under torchrun)."""
        if self._store is not None:
            return int(self._store.add(self._key, 0))
        return int(self._count.value)

    def add(self, n: int) -> None:
        """``n`` more images done (in this process, a forked one or another rank)."""
        if self._store is not None:
            self._store.add(self._key, n)
        else:
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
