"""JSON documents read ahead: a file's bytes read, and scanned by ``_match.scan`` (without the GIL), on a thread
while the process imports what scores them; :func:`~panbench.pq.coco_format.read_json` :func:`take` s one inside a
:class:`ReadAhead` block (docs/pq-evaluator.md, "Parallel paths").  Standard library only."""

from __future__ import annotations

import errno
import os
import stat
import threading
import weakref
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from panbench.pq.extensions import load_extension
from panbench.pq.threads import join_while_alive

Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    """What tells a file's bytes from those it held when read: its device, inode, size, modification and change
    times (a copy that keeps the modification time, ``cp -p`` onto the file, still moves the change time; so does
    replacing the file by a rename, which unlinks the one read)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class HeldFile:
    """A regular file kept open as it was read (by :func:`read_held`): its absolute path, descriptor and
    :func:`identity` then.  A document that keeps this instead of the file's bytes reads a span of them back without
    opening the file again, and only while they are the bytes it read (the descriptor is closed with this object;
    a copy is this object; a pickled one opens the path again where it is unpickled, and reads only if the file
    there is the one read)."""

    __slots__ = ("path", "fd", "ident", "__weakref__")

    def __init__(self, path: str, fd: int, ident: Identity) -> None:
        self.path, self.fd, self.ident = path, fd, ident
        if fd >= 0:
            weakref.finalize(self, os.close, fd)

    def span(self, start: int, stop: int) -> bytes | None:
        """Bytes ``start:stop`` as they were read; None where the file has changed since (an OSError where it cannot
        be read)."""
        if self.fd < 0:
            raise OSError(errno.EBADF, "not open where the document was unpickled")
        got = b""
        while self.unchanged() and len(got) < stop - start:  # one read stops short of 2 GiB
            if not (more := os.pread(self.fd, stop - start - len(got), start + len(got))):
                break
            got += more
        return got if self.unchanged() and len(got) == stop - start else None

    def unchanged(self) -> bool:
        return identity(os.fstat(self.fd)) == self.ident

    def __copy__(self) -> HeldFile:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HeldFile:
        return self

    def __reduce__(self) -> tuple[object, tuple[str, Identity]]:
        return _reopened, (self.path, self.ident)


def _reopened(path: str, ident: Identity) -> HeldFile:
    """A pickled :class:`HeldFile` where it is unpickled: the path opened again (never an error here: a read of it
    says what is wrong)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        fd = -1
    return HeldFile(path, fd, ident)


def read_held(path: str) -> tuple[bytes, HeldFile] | None:
    """A regular file's bytes and the file, kept open (:class:`HeldFile`); None for anything else (a FIFO, a
    device: opened without blocking, so not waited for)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        with open(fd, "rb", closefd=False) as f:
            raw = f.read()
    except BaseException:
        os.close(fd)
        raise
    return raw, HeldFile(os.path.abspath(path), fd, identity(st))


class _Ahead:
    """One file read (and scanned as a ground truth, ``gt``, or as predictions) on its own thread."""

    def __init__(self, path: str, gt: bool) -> None:
        self.path, self.gt = path, gt
        self.done: tuple[bytes, Any, HeldFile] | None = None  # bytes, scan's result, the file
        self.thread = threading.Thread(target=self._run, name="panbench-read-ahead", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            # without blocking: a FIFO or a terminal is no file to read ahead (read_json refuses it), not a wait
            if (got := read_held(self.path)) is None:
                return
            raw, file = got
            scan = load_extension("panbench.pq._match")
            found = scan.scan(raw, self.gt)
            self.done = raw, found, file
        except Exception:  # noqa: BLE001 - read_json meets it again and says what is wrong
            self.done = None


NOT_SCANNED = object()  # take's second item for a document not scanned as asked


class ReadAhead:
    """The documents one command reads ahead, for the length of its ``with`` block (inside it, :func:`take` and
    :func:`forget` act on them; after it, nothing is read ahead)."""

    def __init__(self, *files: tuple[str | os.PathLike[str], bool]) -> None:
        self.jobs = {str(Path(path)): _Ahead(str(Path(path)), gt) for path, gt in files}  # each file: (path, gt)
        self.token: Any = None

    def __enter__(self) -> ReadAhead:
        self.token = _OPEN.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _OPEN.reset(self.token)
        self.jobs.clear()


_OPEN: ContextVar[ReadAhead | None] = ContextVar("panbench_read_ahead", default=None)


def take(path: str | os.PathLike[str], gt: bool | None) -> tuple[bytes, Any, HeldFile] | None:
    """The bytes of ``path`` read ahead (once), the scan's result where it was scanned as ``gt`` asks (else
    :data:`NOT_SCANNED`) and the file (:class:`HeldFile`); None when it was not read ahead, the read failed or the
    file changed since."""
    docs = _OPEN.get()
    job = docs.jobs.pop(str(Path(path)), None) if docs is not None else None
    if job is None:
        return None
    join_while_alive(job.thread)
    if job.done is None:
        return None
    raw, found, file = job.done
    try:
        if identity(os.stat(job.path)) != file.ident:
            return None
    except OSError:
        return None
    return raw, found if gt is not None and gt == job.gt else NOT_SCANNED, file


def forget(path: str | os.PathLike[str]) -> None:
    """Forget what the open :class:`ReadAhead` read of ``path``, without waiting for it."""
    if (docs := _OPEN.get()) is not None:
        docs.jobs.pop(str(Path(path)), None)
