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


def _in_thread(call) -> list:  # noqa: ANN001
    """What ``call`` returned or raised, within 10 s (a list left empty: it still waits)."""
    out: list = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out.append(e)

    waiter = threading.Thread(target=run, daemon=True)
    waiter.start()
    waiter.join(10)
    return out


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread dying
def test_a_pool_thread_that_dies_holding_a_call_ends_its_result_with_a_one_line_error(monkeypatch) -> None:
    def dies(self: Workers) -> None:  # takes a call, then ends as a thread killed in its loop would
        self._calls.get()
        raise SystemExit

    monkeypatch.setattr(Workers, "_run", dies)
    pool = Workers(1, "t")
    task = pool.submit(lambda: 1)
    out = _in_thread(task.result)
    assert out and isinstance(out[0], RuntimeError), "result() still waits on a call no thread runs"
    assert str(out[0]) == "thread every thread of its pool ended without a result for a submitted call"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread dying
def test_a_thread_that_dies_inside_a_call_ends_its_result_while_the_others_run(monkeypatch) -> None:
    real = Workers._run
    taken = threading.Event()  # the other thread waits until t_0 holds the first call

    def dies_in_the_first_call(self: Workers) -> None:
        if threading.current_thread().name == "t_0":
            task, _fn, _args = self._calls.get()
            task._taker = threading.current_thread()
            taken.set()
            raise SystemExit  # a BaseException outside the call's own handler
        assert taken.wait(10)
        real(self)

    monkeypatch.setattr(Workers, "_run", dies_in_the_first_call)
    pool = Workers(2, "t")
    first = pool.submit(lambda: 1)
    _until(lambda: not pool._threads[0].is_alive())
    out = _in_thread(first.result)
    assert out and isinstance(out[0], RuntimeError) and "thread t_0 ended without a result" in str(out[0])
    assert pool.submit(lambda: 2).result() == 2
    pool.shutdown()


def test_shutdown_with_cancel_leaves_a_thread_stuck_in_a_call_behind_after_stop_s(monkeypatch) -> None:
    from panbench.pq import threads

    monkeypatch.setattr(threads, "STOP_S", 0.2)
    started, gate = threading.Event(), threading.Event()
    pool = Workers(1)
    pool.submit(_held, started, gate)
    assert started.wait(10)
    t0 = time.monotonic()
    try:
        assert _in_thread(lambda: pool.shutdown(cancel=True)) == [None]
        assert time.monotonic() - t0 < 2.0 and pool._threads[0].is_alive() and pool._threads[0].daemon
    finally:
        gate.set()
