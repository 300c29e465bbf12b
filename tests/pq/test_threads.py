"""The threads of score's batch path and of the bootstrap's sums (panbench.pq.threads)."""

from __future__ import annotations

import threading
import time

import pytest

from panbench.pq.threads import Cancelled, Workers


def test_each_task_gives_the_value_of_its_own_call_on_the_pools_threads() -> None:
    with Workers(3, "t") as pool:
        tasks = [pool.submit(lambda k: (k * k, threading.current_thread().name), k) for k in range(50)]
        values = [t.result() for t in tasks]
    assert [v for v, _ in values] == [k * k for k in range(50)]
    assert {name for _, name in values} <= {"t_0", "t_1", "t_2"} and threading.main_thread().name not in {
        name for _, name in values}


def test_a_call_that_raises_raises_in_result_and_the_others_still_run() -> None:
    def boom() -> None:
        raise ValueError("bad image")

    with Workers(2) as pool:
        bad, good = pool.submit(boom), pool.submit(lambda: 7)
        with pytest.raises(ValueError, match="bad image"):
            bad.result()
        assert good.result() == 7


def _until(cond, seconds: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _held(started: threading.Event, gate: threading.Event) -> bool:
    started.set()
    return gate.wait(10)


def test_shutdown_with_cancel_drops_the_calls_not_started_and_ends_every_thread() -> None:
    started, gate, ran = threading.Event(), threading.Event(), []
    pool = Workers(1)
    first = pool.submit(_held, started, gate)
    later = [pool.submit(ran.append, k) for k in range(5)]
    assert started.wait(10)  # the one thread is inside the first call
    stopper = threading.Thread(target=pool.shutdown, kwargs={"cancel": True})
    stopper.start()
    _until(lambda: pool._cancel)  # shutdown has asked to cancel
    gate.set()
    stopper.join(10)
    assert not stopper.is_alive() and first.result() is True
    assert ran == []
    for t in later:
        with pytest.raises(Cancelled):
            t.result()
    assert not any(t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(ran.append, 9)


def test_a_failed_result_leaves_no_reference_cycle_through_its_task() -> None:
    import gc
    import weakref

    def boom() -> None:
        raise ValueError("x")

    with Workers(1) as pool:
        task = pool.submit(boom)
        with pytest.raises(ValueError):
            task.result()
    gone = weakref.ref(task)
    gc.disable()
    try:
        del task
        assert gone() is None  # freed by its reference count alone
    finally:
        gc.enable()


def test_shutdown_without_cancel_runs_every_call_submitted_before_it() -> None:
    ran: list[int] = []
    pool = Workers(2)
    for k in range(20):
        pool.submit(ran.append, k)
    pool.shutdown()
    assert sorted(ran) == list(range(20))


def test_leaving_the_block_on_an_error_drops_the_pending_calls() -> None:
    gate, ran = threading.Event(), []
    started = threading.Event()
    with pytest.raises(KeyError):
        with Workers(1) as pool:
            pool.submit(_held, started, gate)
            pool.submit(ran.append, 1)
            assert started.wait(10)
            opener = threading.Thread(target=lambda: (_until(lambda: pool._cancel), gate.set()))
            opener.start()  # the gate opens once leaving the block has asked to cancel
            raise KeyError("stop")
    opener.join(10)
    assert ran == []
