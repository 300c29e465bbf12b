"""An exclusive lock between panbench processes that is waited for with a limit (:func:`exclusive`): a
non-blocking ``flock`` tried again every :data:`POLL_S` seconds, announced once, refused in one line past its
``timeout``; Ctrl-C interrupts the wait.  Standard library only: every package may import it."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from panbench.announce import announce
from panbench.errors import PanbenchError

POLL_S = 0.05
SAY_AFTER_S = 1.0  # a wait shorter than this is not announced


def _seconds(limit: float) -> str:
    """A limit in seconds as a line says it: whole seconds from 10 s, else two significant digits (0.3, 2, 9.5)."""
    return f"{limit:.0f}" if limit >= 10 else f"{limit:.2g}"


@contextmanager
def exclusive(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Within it, this process alone runs of those taking :func:`exclusive` of ``path`` (``what``: for messages)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(path)
    with open(path, "a") as f:
        start, said = time.monotonic(), False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited > timeout:
                    raise PanbenchError(f"{path}: held by another panbench process ({what}) for over "
                                        f"{_seconds(timeout)} s; end that process (or wait for it) and run this "
                                        "command again") from None
                if not said and waited > SAY_AFTER_S:
                    announce(f"waiting for another panbench process ({what}; lock {path}, up to {_seconds(timeout)} s)")
                    said = True
                time.sleep(POLL_S)
            except OSError as e:
                if e.errno in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    break
                raise
        try:
            yield
        finally:
            with suppress(OSError):
                fcntl.flock(f, fcntl.LOCK_UN)
