"""run_in_thread: results and errors, the pool's bound, cancellation, shutdown, no leftovers.

Worker threads run in real time, so these tests synchronise with ``threading.Event`` and
bound every wait (``WAIT``); none of them sleeps to let a thread catch up. Where a test must
know that a worker has got somewhere, the kernel thread itself waits on an event for a
moment: the workers never need the kernel to make progress, so this cannot deadlock.
"""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from typing import Any

import pytest

import kernel
from kernel import Kernel, TaskCancelled, TaskTimeout, VirtualClock
from kernel.threads import ThreadPool, _Job, _run_job, run_in_thread

WAIT = 5.0  # seconds: the bound on every wait for another thread; never reached when passing


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kernel-worker-")]


def arrived(event: threading.Event) -> None:
    """Block the kernel thread until a worker has set ``event`` (see the module docstring)."""
    assert event.wait(WAIT), "a worker thread did not get there in time"


class Gate:
    """A function for a worker that says when it has started, then waits to be let through."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.result = result
        self.error = error

    def __call__(self) -> Any:
        self.started.set()
        try:
            assert self.release.wait(WAIT), "the test never released the gate"
            if self.error is not None:
                raise self.error
            return self.result
        finally:
            self.finished.set()


class Arg:
    """Something to hand to a thread, then watch die (through a weak reference)."""

    def method(self, *args: Any, **kwargs: Any) -> int:
        return 1


async def test_returns_the_result_computed_in_another_thread() -> None:
    assert await run_in_thread(divmod, 7, 2) == (3, 1)
    assert await run_in_thread(int, "ff", base=16) == 255  # keyword arguments go to func
    assert await run_in_thread(threading.get_ident) != threading.get_ident()


async def test_raises_the_original_exception() -> None:
    error = ValueError("from the thread")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError) as info:
        await run_in_thread(fail)
    assert info.value is error


async def test_sequential_calls_reuse_one_thread() -> None:
    for _ in range(20):
        await run_in_thread(int)
    assert len(workers()) == 1


def test_the_pool_never_exceeds_max_threads() -> None:
    lock = threading.Lock()
    running = peak = 0
    all_busy = threading.Event()
    release = threading.Event()

    def job(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 3:
                all_busy.set()
        assert release.wait(WAIT)
        with lock:
            running -= 1
        return n

    async def main() -> list[int]:
        tasks = [await kernel.spawn(run_in_thread, job, n) for n in range(9)]
        await kernel.sleep(0)  # every task has submitted its job
        arrived(all_busy)
        assert len(workers()) == 3  # 3 busy, 6 jobs queued: no fourth thread
        release.set()
        return [await task.join() for task in tasks]

    assert kernel.run(main, clock=VirtualClock(), max_threads=3) == list(range(9))
    assert peak == 3
    assert workers() == []


def test_no_thread_survives_run() -> None:
    before = set(threading.enumerate())
    gates = [Gate(result=n) for n in range(4)]

    async def main() -> list[int]:
        tasks = [await kernel.spawn(run_in_thread, gate) for gate in gates]
        for gate in gates:
            gate.release.set()
        return [await task.join() for task in tasks]

    assert kernel.run(main, clock=VirtualClock()) == [0, 1, 2, 3]
    assert set(threading.enumerate()) == before


def test_cancelling_a_waiting_task_is_immediate_and_drops_the_late_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate(result="too late")

    async def main() -> None:
        task = await kernel.spawn(run_in_thread, gate)
        await kernel.sleep(0)
        arrived(gate.started)
        assert await task.cancel() is True  # returns with the thread still blocked in the gate
        assert isinstance(task.exception, TaskCancelled)
        assert not gate.finished.is_set()
        gate.release.set()
        # With one worker, the next call runs after the late one and its delivery comes
        # second: once it has returned, the late result has been delivered -- and dropped.
        assert await run_in_thread(str, "next") == "next"
        k = await kernel.traps._get_kernel()
        assert k._thread_pool is not None and k._thread_pool._pending == set()

    kernel.run(main, clock=VirtualClock(), max_threads=1)
    assert caplog.records == []


def test_a_late_exception_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    gate = Gate(error=OSError("disk on fire"))

    async def main() -> None:
        waiter = await kernel.spawn(kernel.timeout_after, 1, run_in_thread, gate)
        await kernel.sleep(0)
        arrived(gate.started)  # the job runs: the timeout cannot take it back any more
        await waiter.wait()  # the virtual clock jumps to the timeout at once
        assert isinstance(waiter.exception, TaskTimeout)
        gate.release.set()
        await run_in_thread(str)  # one worker: the late delivery comes in first

    with caplog.at_level(logging.ERROR, logger="kernel"):
        kernel.run(main, clock=VirtualClock(), max_threads=1)
    [record] = caplog.records
    assert "raised after its task had stopped waiting" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)
    assert "disk on fire" in caplog.text and "Traceback" in caplog.text


def test_a_job_whose_task_gave_up_before_it_started_never_runs() -> None:
    ran: list[str] = []

    async def main() -> None:
        gate = Gate()
        first = await kernel.spawn(run_in_thread, gate)
        second = await kernel.spawn(run_in_thread, ran.append, "second")
        await kernel.sleep(0)  # both submitted; the only worker is stuck in the gate
        await second.cancel()
        gate.release.set()
        await first.join()
        await run_in_thread(ran.append, "third")

    kernel.run(main, clock=VirtualClock(), max_threads=1)
    assert ran == ["third"]


async def test_works_alongside_sleeping_tasks_on_the_virtual_clock(
    virtual_clock: VirtualClock,
) -> None:
    async def sleeper() -> float:
        await kernel.sleep(10)
        return await kernel.clock()

    task = await kernel.spawn(sleeper)
    assert await run_in_thread(sum, [1, 2, 3]) == 6
    assert await task.join() == 10.0
    assert virtual_clock.now() == 10.0


def test_close_waits_for_a_busy_worker_and_reports_its_late_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon task is still waiting on a thread when main returns; close() cancels it, then
    # must join the thread. The warning it logs while waiting is what releases the thread,
    # whose exception then arrives after the loop has stopped -- and is still reported.
    gate = Gate(error=KeyError("after the end"))
    monkeypatch.setattr("kernel.threads.JOIN_WARNING_SECONDS", 0.01)

    class ReleaseOnWarning(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waits for kernel-worker" in record.getMessage():
                gate.release.set()

    async def main() -> None:
        await kernel.spawn(run_in_thread, gate, daemon=True)
        await kernel.sleep(0)
        arrived(gate.started)

    handler = ReleaseOnWarning()
    logging.getLogger("kernel").addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger="kernel"):
            kernel.run(main, clock=VirtualClock())
    finally:
        logging.getLogger("kernel").removeHandler(handler)
    assert workers() == []
    messages = [r.getMessage() for r in caplog.records]
    assert "waits for kernel-worker-1, still running <thread job" in messages[0]
    assert "raised after its task had stopped waiting" in messages[-1]
    assert "after the end" in caplog.text


def test_an_outcome_for_a_closed_kernel_is_reported_by_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    k = Kernel()
    k.close()
    job = _Job(int, (), {})
    job.exception, job.state = ZeroDivisionError("nobody home"), "done"  # as a worker left it
    with caplog.at_level(logging.ERROR, logger="kernel"):
        ThreadPool(k)._send_home(job)
    assert "raised after its task had stopped waiting" in caplog.text
    assert "nobody home" in caplog.text


def test_a_late_result_for_a_closing_kernel_is_released_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The kernel closes while a worker runs a job whose result holds a resource (aopen's
    file): the worker's delivery is refused, so it releases the result, and the job is still
    pending when the pool's shutdown looks -- which must not release it a second time."""
    gate = Gate(result="the file")
    released: list[Any] = []

    async def main() -> None:
        await kernel.spawn(_run_job, _Job(gate, (), {}, release=released.append), daemon=True)
        await kernel.sleep(0)
        arrived(gate.started)
        k.add_close_callback(gate.release.set)  # runs before the pool's shutdown (LIFO)

    with caplog.at_level(logging.WARNING, logger="kernel"), Kernel() as k:
        k.run(main)
    assert released == ["the file"]
    assert caplog.records == []
    assert workers() == []


def test_a_worker_that_cannot_start_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of threads, run_in_thread raises; the call never runs later behind its caller's
    back, and the pool works again once threads can be started."""
    ran: list[str] = []
    start = threading.Thread.start

    def cannot_start(thread: threading.Thread) -> None:
        if thread.name.startswith("kernel-worker-"):
            raise RuntimeError("can't start new thread")
        start(thread)

    async def main() -> int:
        monkeypatch.setattr(threading.Thread, "start", cannot_start)
        for _ in range(2):  # as many as max_threads: no dead thread may count against it
            with pytest.raises(RuntimeError, match="can't start new thread"):
                await run_in_thread(ran.append, "a call that raised")
        monkeypatch.setattr(threading.Thread, "start", start)
        result: int = await kernel.timeout_after(WAIT, run_in_thread, int, "2")
        return result

    assert kernel.run(main, max_threads=2) == 2  # and close() joined the one worker
    assert ran == []
    assert workers() == []


def test_call_threadsafe_while_the_kernel_closes_is_refused() -> None:
    """Once close() is past its tasks, nothing could run a callback another thread hands in:
    it is refused, as after close(), rather than accepted and dropped."""
    started, closing = threading.Event(), threading.Event()
    outcome: list[str] = []

    def worker() -> None:
        started.set()
        closing.wait(WAIT)
        try:
            k.call_threadsafe(outcome.append, "ran")
            outcome.append("accepted")
        except RuntimeError as error:
            outcome.append(str(error))

    async def main() -> None:
        await kernel.spawn(run_in_thread, worker, daemon=True)
        await kernel.sleep(0)
        arrived(started)  # the worker runs it: the pool's shutdown will wait for it
        k.add_close_callback(closing.set)  # runs before the pool's shutdown (last in, first out)

    with Kernel() as k:
        k.run(main)
    assert outcome == ["the kernel is closed"]


def test_systemexit_from_a_threadsafe_callback_stops_the_program_cleanly() -> None:
    """As from a task: the main task is cancelled, every cleanup runs, then run() raises."""
    cleaned: list[str] = []

    def stop() -> None:
        raise SystemExit("stop from a callback")

    async def worker() -> None:
        try:
            await kernel.sleep(100)
        finally:
            await kernel.sleep(0)  # a cleanup that itself awaits
            cleaned.append("worker")

    async def main() -> None:
        await kernel.spawn(worker)
        k = kernel.current_kernel()
        assert k is not None
        k.call_threadsafe(stop)
        k.call_threadsafe(cleaned.append, "the next callback")
        await kernel.sleep(100)

    with pytest.raises(SystemExit, match="stop from a callback"):
        kernel.run(main, clock=VirtualClock())
    assert cleaned == ["the next callback", "worker"]


async def test_stopiteration_from_the_function_arrives_as_python_makes_it() -> None:
    """No coroutine may raise StopIteration (PEP 479): the RuntimeError, caused by it."""
    with pytest.raises(RuntimeError) as info:
        await run_in_thread(next, iter([]))
    assert isinstance(info.value.__cause__, StopIteration)


async def fetch() -> str:
    return "data"


async def test_an_async_function_is_refused_before_a_thread_is_used() -> None:
    # (The tests turn warnings into errors: a coroutine left unawaited would fail this one.)
    with pytest.raises(TypeError, match=r"but fetch is an async function.*await fetch\("):
        _ = await run_in_thread(fetch)  # (which mypy takes for a coroutine to use)
    assert workers() == []  # refused in the task: no worker was started for it
    gc.collect()  # an unawaited coroutine would warn as it is collected


async def test_a_function_returning_a_coroutine_is_refused_and_the_coroutine_closed() -> None:
    made: list[Any] = []

    def makes_a_coroutine() -> Any:
        made.append(fetch())
        return made[-1]

    with pytest.raises(TypeError, match="makes_a_coroutine returned a coroutine"):
        await run_in_thread(makes_a_coroutine)
    assert made[0].cr_frame is None  # closed, never run
    del made[:]
    gc.collect()


async def test_a_keyword_argument_named_func_is_passed_on() -> None:
    # func is positional-only, as in asyncio.to_thread(func, /, *args, **kwargs).
    assert await run_in_thread(dict, func=1, x=2) == {"func": 1, "x": 2}


async def test_the_pool_keeps_nothing_of_a_call_once_it_has_returned() -> None:
    """Neither the job nor its idle worker holds on to the function or its arguments (nor
    does CPython's ThreadPoolExecutor): one may be large, and the worker may idle long."""
    owner, arg, kwarg = Arg(), Arg(), Arg()
    refs = [weakref.ref(obj) for obj in (owner, arg, kwarg)]
    assert await run_in_thread(owner.method, arg, key=kwarg) == 1
    del owner, arg, kwarg
    gc.collect()  # (not that a cycle should hold them)
    assert [ref() for ref in refs] == [None, None, None]
    assert len(workers()) == 1  # the worker is alive, and idle


def test_a_job_given_up_before_it_started_drops_its_arguments_at_once() -> None:
    async def main() -> None:
        gate, arg = Gate(), Arg()
        ref = weakref.ref(arg)
        first = await kernel.spawn(run_in_thread, gate)
        # (run_in_thread's job, made here: the traceback of the second task's cancellation
        # holds the frame it is given to, with its arguments -- this one holds only the job.)
        second = await kernel.spawn(_run_job, _Job(Arg.method, (arg,), {}))
        del arg
        await kernel.sleep(0)  # both submitted; the only worker is stuck in the gate
        try:
            await second.cancel()
            gc.collect()
            assert ref() is None  # although the job is still in the queue: no worker took it
        finally:
            gate.release.set()
        await first.join()

    kernel.run(main, clock=VirtualClock(), max_threads=1)
