"""A fixed set of threads that run submitted calls (score's batch path, the bootstrap's sums), on :mod:`threading`
alone: ``concurrent.futures`` loads :mod:`logging`, milliseconds of every ``panbench score`` start (docs/benchmarks.md).
The calls release the GIL (C decoding, counting, adding).  Standard library only."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
STOP_S = 2.0  # on a cancel or an interrupt: how long a thread or a forked process gets to end by itself (then a
# daemon thread is left behind, a process killed)
ALIVE_CHECK_S = 0.5  # a wait on another thread's work wakes this often to see that the thread still runs


def join_while_alive(thread: threading.Thread) -> None:
    """Wait for ``thread`` to end, in slices of :data:`ALIVE_CHECK_S` (no lock is waited on without a limit)."""
    while thread.is_alive():
        thread.join(ALIVE_CHECK_S)


class Cancelled(Exception):
    """What :meth:`Task.result` raises for a call that :meth:`Workers.shutdown` dropped before it ran."""


class Task(Generic[T]):
    """One submitted call: :meth:`result` waits for it and gives its value, or raises what it raised."""

    __slots__ = ("__weakref__", "_done", "_error", "_pool", "_taker", "_value")

    def __init__(self, pool: list[threading.Thread] | None = None) -> None:
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._pool = pool if pool is not None else []  # the threads that may take the call
        self._taker: threading.Thread | None = None  # the one that took it

    def result(self) -> T:
        done = self._done
        while not done.wait(ALIVE_CHECK_S):  # a thread that died holding the call (or every one before) ends it
            taker = self._taker
            alive = taker.is_alive() if taker is not None else any(t.is_alive() for t in self._pool)
            if not alive and not done.is_set():
                name = taker.name if taker is not None else "every thread of its pool"
                raise RuntimeError(f"thread {name} ended without a result for a submitted call")
        if self._error is not None:
            try:
                raise self._error
            finally:  # the traceback holds this frame: no cycle through the task stays behind
                self = None  # type: ignore[assignment]  # noqa: PLW0642
        return self._value  # type: ignore[return-value]  # set: the call returned


class Workers:
    """``threads`` threads taking calls in the order they were submitted; :meth:`shutdown` (or leaving a ``with`` block)
    waits for them, and with ``cancel`` drops the calls not yet started."""

    def __init__(self, threads: int, name: str = "panbench") -> None:
        self._calls: queue.SimpleQueue[tuple[Task[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._cancel = self._shut = False
        self._threads: list[threading.Thread] = []
        try:
            for k in range(max(1, threads)):
                t = threading.Thread(target=self._run, name=f"{name}_{k}", daemon=True)
                t.start()
                self._threads.append(t)
        except BaseException:  # a thread that cannot start: those started end before the error goes on
            self.shutdown()
            raise

    def submit(self, fn: Callable[..., T], *args: Any) -> Task[T]:
        if self._shut:
            raise RuntimeError("Workers.submit after shutdown")
        task: Task[T] = Task(self._threads)
        self._calls.put((task, fn, args))
        return task

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            task, fn, args = item
            try:
                task._taker = threading.current_thread()
                if self._cancel:
                    raise Cancelled("dropped by Workers.shutdown(cancel=True)")
                task._value = fn(*args)
            except BaseException as e:  # handed to the caller of result()
                task._error = e
            finally:
                task._done.set()
            del item, task, fn, args  # an idle thread holds no call's arguments (a chunk's buffers)

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the threads once the calls before are done (``cancel``: dropped, each raising :class:`Cancelled`) and
        wait for them to end (``cancel``: :data:`STOP_S` seconds at most).  Nothing can be submitted after."""
        self._cancel = self._cancel or cancel
        if not self._shut:
            self._shut = True
            for _ in self._threads:
                self._calls.put(None)
        if not self._cancel:
            for t in self._threads:
                join_while_alive(t)
            return
        deadline = time.monotonic() + STOP_S
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel=exc[0] is not None)
