"""Kernel tasks and asyncio code on one kernel: awaiting each other, cancelling each other,
sharing one FIFO ready queue, one clock and one tracer.

Plain ``def`` tests: the plugin would run an ``async def`` test as a kernel task, and half of
these start on the asyncio side. Every test runs on a ``VirtualClock``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from asyncio import events as asyncio_events
from typing import Any

import pytest

import kernel
import kernel.aio
from kernel.aio import EventLoop


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


async def adapter_loop() -> asyncio.AbstractEventLoop:
    """From a kernel task: the adapter loop hosted on this kernel (made on first use)."""
    return await kernel.aio.run_asyncio(running_loop())


def run_kernel_main(main: Any) -> Any:
    """``kernel.run(main)`` on a VirtualClock that starts at 0.0."""
    return kernel.run(main, clock=kernel.VirtualClock())


# -- a kernel task awaiting asyncio futures and tasks ----------------------------------------------


def test_a_kernel_task_awaits_an_asyncio_future() -> None:
    async def main() -> tuple[str, float]:
        loop = await adapter_loop()
        future = loop.create_future()
        loop.call_later(1, future.set_result, "set by a timer")
        value = await future  # the kernel's FUTURE_WAIT trap
        return value, await kernel.clock()

    assert run_kernel_main(main) == ("set by a timer", 1.0)


def test_a_kernel_task_awaits_an_asyncio_task() -> None:
    async def work() -> int:
        await asyncio.sleep(2)
        return 42

    async def main() -> tuple[int, float]:
        loop = await adapter_loop()
        task = loop.create_task(work())
        return await task, await kernel.clock()

    assert run_kernel_main(main) == (42, 2.0)


def test_a_kernel_task_awaits_a_failed_future() -> None:
    async def main() -> str:
        loop = await adapter_loop()
        future = loop.create_future()
        loop.call_later(1, future.set_exception, ValueError("future failed"))
        try:
            await future
        except ValueError as error:
            return f"caught {error!r}"
        return "nothing raised"

    assert run_kernel_main(main) == "caught ValueError('future failed')"


def test_a_kernel_task_awaits_a_future_that_is_already_done() -> None:
    async def main() -> tuple[str, float]:
        loop = await adapter_loop()
        future = loop.create_future()
        future.set_result("ready")
        return await future, await kernel.clock()

    assert run_kernel_main(main) == ("ready", 0.0)


def test_a_kernel_task_cancelled_while_awaiting_cancels_the_future() -> None:
    async def main() -> None:
        loop = await adapter_loop()
        future = loop.create_future()
        log: list[str] = []

        async def waiter() -> None:
            try:
                await future
            except kernel.CancelledError as error:
                log.append(f"waiter got {type(error).__name__}")
                raise

        task = await kernel.spawn(waiter)
        await kernel.sleep(1)
        await task.cancel()
        assert future.cancelled()
        assert log == ["waiter got TaskCancelled"]
        assert task.cancelled

    run_kernel_main(main)


def test_a_kernel_timeout_while_awaiting_cancels_the_future() -> None:
    async def main() -> float:
        loop = await adapter_loop()
        future = loop.create_future()
        with pytest.raises(kernel.TaskTimeout):
            async with kernel.timeout_after(1):
                await future
        assert future.cancelled()
        return await kernel.clock()

    assert run_kernel_main(main) == 1.0


def test_a_kernel_task_cannot_await_a_future_of_another_loop() -> None:
    other = kernel.aio.new_event_loop()

    async def main() -> None:
        await adapter_loop()
        with pytest.raises(RuntimeError, match="belongs to"):
            await other.create_future()

    try:
        run_kernel_main(main)
    finally:
        other.close()


# -- run_asyncio: asyncio code from a kernel task --------------------------------------------------


def test_run_asyncio_returns_the_result_on_the_kernel_clock() -> None:
    async def asyncio_code(seconds: float) -> tuple[str, bool, float]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(seconds)
        hosted = isinstance(loop, EventLoop) and loop._kernel is kernel.current_kernel()
        return type(loop).__name__, hosted, loop.time()

    async def main() -> tuple[Any, ...]:
        result = await kernel.aio.run_asyncio(asyncio_code(1.5))
        return *result, await kernel.clock()

    assert run_kernel_main(main) == ("EventLoop", True, 1.5, 1.5)


def test_run_asyncio_leaves_no_running_loop_behind() -> None:
    # The hosted loop is asyncio's running loop only while its kernel runs.
    with kernel.Kernel(clock=kernel.VirtualClock()) as k:
        hosted = k.run(adapter_loop)
        assert not hosted.is_running()
        assert asyncio_events._get_running_loop() is None
        assert k.run(adapter_loop) is hosted  # the same loop, running again with its kernel
        assert not hosted.is_running()
    assert hosted.is_closed()
    loop = kernel.aio.new_event_loop(clock=kernel.VirtualClock())
    try:
        assert loop.run_until_complete(asyncio.sleep(1, "runs")) == "runs"
    finally:
        loop.close()


def test_run_asyncio_runs_on_the_loop_that_runs_the_kernel(aio_loop: EventLoop) -> None:
    # kernel.aio.run / new_event_loop: the loop owns the kernel; a kernel task's run_asyncio
    # must use that loop, not make a second one (whose futures main's tasks cannot await).
    async def waits_for(future: asyncio.Future[str]) -> str:
        return await future

    async def kernel_code(future: asyncio.Future[str]) -> tuple[Any, str]:
        return await adapter_loop(), await kernel.aio.run_asyncio(waits_for(future))

    async def main() -> tuple[bool, bool, str]:
        future = aio_loop.create_future()
        aio_loop.call_later(1, future.set_result, "set in main's loop")
        inner_loop, value = await kernel.aio.run_kernel(kernel_code, future)
        still_running = asyncio.get_running_loop()
        await kernel.aio.run_kernel(kernel.sleep, 1)  # and run_kernel still works after it
        return inner_loop is aio_loop, still_running is aio_loop, value

    assert aio_loop.run_until_complete(main()) == (True, True, "set in main's loop")


def test_a_kernel_has_one_event_loop() -> None:
    with kernel.Kernel(clock=kernel.VirtualClock()) as k:
        loop = EventLoop(k)
        with pytest.raises(RuntimeError, match="already has an event loop"):
            EventLoop(k)
        assert k.run(adapter_loop) is loop  # kernel.run: run_asyncio uses it, running
        assert not loop.is_running()
        loop.close()
        hosted = k.run(adapter_loop)  # its loop closed: a new one, made on first use
        assert hosted is not loop
        with pytest.raises(RuntimeError, match="already has an event loop"):
            EventLoop(k)
    assert hosted.is_closed()
    owner = kernel.aio.new_event_loop(clock=kernel.VirtualClock())
    try:
        with pytest.raises(RuntimeError, match="already has an event loop"):
            EventLoop(owner._kernel)
    finally:
        owner.close()


def test_run_asyncio_propagates_the_exception() -> None:
    async def asyncio_code() -> None:
        await asyncio.sleep(1)
        raise ValueError("from asyncio")

    async def main() -> str:
        try:
            await kernel.aio.run_asyncio(asyncio_code())
        except ValueError as error:
            return f"kernel task caught {error!r}"
        return "nothing raised"

    assert run_kernel_main(main) == "kernel task caught ValueError('from asyncio')"


def test_cancelling_the_kernel_task_cancels_the_asyncio_task() -> None:
    log: list[str] = []

    async def asyncio_code() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append(f"asyncio task cancelled at {asyncio.get_running_loop().time()}")
            raise

    async def main() -> None:
        with pytest.raises(kernel.TaskTimeout):
            await kernel.timeout_after(2, kernel.aio.run_asyncio, asyncio_code())
        await kernel.sleep(0)  # the asyncio task's last step
        assert log == ["asyncio task cancelled at 2.0"]

    run_kernel_main(main)


def test_an_asyncio_task_cancelled_on_its_side_raises_cancelled_error_in_the_kernel_task() -> None:
    async def asyncio_code() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel("cancelled by asyncio code")
        await asyncio.sleep(1)

    async def main() -> str:
        try:
            await kernel.aio.run_asyncio(asyncio_code())
        except asyncio.CancelledError as error:
            return f"kernel task got {error!r}"
        return "nothing raised"

    assert run_kernel_main(main) == "kernel task got CancelledError('cancelled by asyncio code')"


# -- run_kernel and wrap_kernel_task: kernel tasks from asyncio code -------------------------------


def test_run_kernel_returns_the_result(aio_loop: EventLoop) -> None:
    async def kernel_code(seconds: float) -> str:
        await kernel.sleep(seconds)
        return f"slept {seconds} at {await kernel.clock()}"

    async def main() -> str:
        result: str = await kernel.aio.run_kernel(kernel_code, 2)
        return result

    assert aio_loop.run_until_complete(main()) == "slept 2 at 2.0"
    assert aio_loop.time() == 2.0


def test_run_kernel_propagates_the_exception(
    aio_loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    async def kernel_code() -> None:
        await kernel.sleep(1)
        raise ValueError("from the kernel task")

    async def main() -> None:
        await kernel.aio.run_kernel(kernel_code)

    with pytest.raises(ValueError, match="from the kernel task"):
        aio_loop.run_until_complete(main())
    aio_loop.close()
    # The error was delivered to the asyncio side: not also reported as an unobserved crash.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cancelling_the_asyncio_side_cancels_the_kernel_task(aio_loop: EventLoop) -> None:
    log: list[str] = []

    async def kernel_code() -> None:
        try:
            await kernel.sleep(10)
        except kernel.TaskCancelled:
            log.append(f"kernel task cancelled at {await kernel.clock()}")
            raise

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(kernel.aio.run_kernel(kernel_code), 1)
        await asyncio.sleep(0)  # the kernel task's cleanup runs

    aio_loop.run_until_complete(main())
    assert log == ["kernel task cancelled at 1.0"]


def test_a_kernel_task_cancelled_on_its_side_cancels_the_asyncio_future(
    aio_loop: EventLoop,
) -> None:
    async def sleeper() -> None:
        await kernel.sleep(10)

    async def canceller(task: kernel.Task) -> None:
        await kernel.sleep(1)
        await task.cancel()

    async def kernel_code() -> None:
        me = await kernel.current_task()
        await kernel.spawn(canceller, me)
        await sleeper()

    async def main() -> float:
        with pytest.raises(asyncio.CancelledError):
            await kernel.aio.run_kernel(kernel_code)
        return aio_loop.time()

    assert aio_loop.run_until_complete(main()) == 1.0


def test_a_kernel_timeout_escaping_run_kernel_is_a_timeout_error(aio_loop: EventLoop) -> None:
    # Nobody cancelled the asyncio side: the kernel task failed with its own timeout.
    async def kernel_code() -> None:
        await kernel.timeout_after(1, kernel.sleep, 10)

    async def main() -> tuple[str, int, float]:
        with pytest.raises(TimeoutError) as caught:
            await kernel.aio.run_kernel(kernel_code)
        task = asyncio.current_task()
        assert task is not None
        return type(caught.value.__cause__).__name__, task.cancelling(), aio_loop.time()

    assert aio_loop.run_until_complete(main()) == ("TaskTimeout", 0, 1.0)


def test_kernel_tasks_left_running_are_cancelled_before_the_loop_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As asyncio.run cancels the asyncio tasks left over and lets them clean up, kernel.aio.run
    # (an asyncio.Runner with the adapter's loop) does the same for run_kernel's tasks.
    cleanup: list[Any] = []
    tasks: list[kernel.Task] = []

    async def worker() -> None:
        tasks.append(await kernel.current_task())
        try:
            await kernel.sleep(3600)
        finally:
            # The loop is still open and running: the cleanup can use asyncio.
            cleanup.append(await kernel.aio.run_asyncio(running_loop()))

    async def main() -> asyncio.AbstractEventLoop:
        kernel.aio.run_kernel(worker)  # never awaited, like a forgotten asyncio task
        await asyncio.sleep(1)
        return asyncio.get_running_loop()

    def virtual_loop() -> EventLoop:
        return kernel.aio.new_event_loop(clock=kernel.VirtualClock())

    with asyncio.Runner(loop_factory=virtual_loop) as runner:
        loop = runner.run(main())
    assert cleanup == [loop]
    assert loop.is_closed()
    assert tasks[0].cancelled
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_closing_a_loop_on_an_existing_kernel_cancels_its_run_kernel_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []

    async def worker() -> None:
        try:
            await kernel.sleep(3600)
        finally:
            log.append(f"cleanup at {asyncio.get_running_loop().time()}")

    async def main() -> None:
        kernel.aio.run_kernel(worker)
        await asyncio.sleep(1)

    with kernel.Kernel(clock=kernel.VirtualClock()) as k:
        loop = EventLoop(k)
        loop.run_until_complete(main())
        loop.close()
        assert log == ["cleanup at 1.0"]  # before the loop closed, not when the kernel did
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_kernel_task_may_end_after_the_loop_of_its_wrapper_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def job() -> str:
        await kernel.sleep(2)
        return "done"

    async def wrap(task: kernel.Task) -> asyncio.Future[Any]:
        return kernel.aio.wrap_kernel_task(task)

    with kernel.Kernel(clock=kernel.VirtualClock()) as k:
        task = k.start_task(job)  # a kernel task, not run_kernel's: closing the loop leaves it
        loop = EventLoop(k)
        future = loop.run_until_complete(wrap(task))
        loop.close()
        k.run(task.wait)  # it ends: the future of the closed loop is left alone
        assert task.result == "done"
    assert not future.done()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_asyncio_tasks_left_by_run_asyncio_are_cancelled_when_the_kernel_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # kernel.run is then the asyncio.run of the loop run_asyncio made: what asyncio code left
    # running is cancelled, and cleans up with the loop still running.
    cleanup: list[Any] = []

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cleanup.append(("cancelled", asyncio.get_running_loop().time()))
            await asyncio.sleep(1)  # the cleanup may still await
            cleanup.append(("cleaned up", asyncio.get_running_loop().time()))
            raise

    async def asyncio_code() -> str:
        asyncio.get_running_loop().create_task(background())  # never awaited
        await asyncio.sleep(0)
        return "returned"

    async def main() -> str:
        result: str = await kernel.aio.run_asyncio(asyncio_code())
        await kernel.sleep(2)
        return result

    assert run_kernel_main(main) == "returned"
    assert cleanup == [("cancelled", 2.0), ("cleaned up", 3.0)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_kernel_tasks_left_running_clean_up_before_the_asyncio_side_winds_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Kernel tasks are cancelled first, with asyncio still working: their cleanup can use it.
    order: list[str] = []

    async def asyncio_cleanup() -> str:
        await asyncio.sleep(1)
        return "asyncio code run by a kernel task's cleanup"

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            order.append("asyncio task cancelled")

    async def kernel_worker() -> None:
        try:
            await kernel.sleep(3600)
        finally:
            order.append(await kernel.aio.run_asyncio(asyncio_cleanup()))

    async def start_background() -> None:
        asyncio.get_running_loop().create_task(background())

    async def main() -> None:
        await kernel.spawn(kernel_worker, daemon=True)
        await kernel.aio.run_asyncio(start_background())

    run_kernel_main(main)
    assert order == ["asyncio code run by a kernel task's cleanup", "asyncio task cancelled"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_asyncio_task_failing_in_its_cleanup_at_kernel_close_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise ValueError("failed while cancelled")

    async def asyncio_code() -> None:
        asyncio.get_running_loop().create_task(background())

    async def main() -> None:
        await kernel.aio.run_asyncio(asyncio_code())

    run_kernel_main(main)
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "left running when its kernel closed" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


def test_the_default_executor_of_run_asyncio_is_joined_when_the_kernel_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads_before = set(threading.enumerate())
    finished: list[str] = []
    release = threading.Event()
    shutdowns: list[bool] = []  # the wait= of each executor shutdown, as it is asked
    shutdown = concurrent.futures.ThreadPoolExecutor.shutdown

    def recorded(executor: Any, wait: bool = True, **kwargs: Any) -> None:
        shutdowns.append(wait)
        shutdown(executor, wait, **kwargs)

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "shutdown", recorded)

    def job() -> None:
        assert release.wait(10)  # still working when main returns: kernel.run must wait for it
        finished.append("job")

    async def asyncio_code() -> None:
        asyncio.get_running_loop().run_in_executor(None, job)  # never awaited

    async def main() -> None:
        await kernel.aio.run_asyncio(asyncio_code())
        running = kernel.current_kernel()
        assert running is not None
        # Shutdown steps run last-added first: this one, then the wind-down that joins.
        running.add_shutdown_step(release.set)

    run_kernel_main(main)
    assert shutdowns[0] is True  # joined (loop.close() then asks again, without waiting)
    assert finished == ["job"]
    assert set(threading.enumerate()) - threads_before == set()  # no thread leaked


def test_wrap_kernel_task() -> None:
    async def job(n: int) -> int:
        await kernel.sleep(n)
        return n * 10

    async def watch(task: kernel.Task) -> tuple[int, float]:
        future = kernel.aio.wrap_kernel_task(task)
        assert asyncio.isfuture(future)
        return await future, asyncio.get_running_loop().time()

    async def main() -> list[Any]:
        running = await kernel.spawn(job, 2)
        finished = await kernel.spawn(job, 0)
        await finished.join()
        return [
            await kernel.aio.run_asyncio(watch(running)),
            await kernel.aio.run_asyncio(watch(finished)),  # already done
        ]

    assert run_kernel_main(main) == [(20, 2.0), (0, 2.0)]


def test_cancelling_the_wrapper_cancels_the_kernel_task() -> None:
    async def job() -> None:
        await kernel.sleep(10)

    async def cancel_after(task: kernel.Task, seconds: float) -> None:
        future = kernel.aio.wrap_kernel_task(task)
        await asyncio.sleep(seconds)
        future.cancel()
        await asyncio.sleep(0)

    async def main() -> tuple[bool, float]:
        task = await kernel.spawn(job)
        await kernel.aio.run_asyncio(cancel_after(task, 1))
        await task.wait()
        return task.cancelled, await kernel.clock()

    assert run_kernel_main(main) == (True, 1.0)


def test_run_kernel_and_wrap_kernel_task_need_the_adapter_loop() -> None:
    async def nothing() -> None:
        pass

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"needs the kernel\.aio event loop"):
            kernel.aio.run_kernel(nothing)

    asyncio_loop = asyncio.new_event_loop()  # asyncio's own loop
    try:
        asyncio_loop.run_until_complete(main())
    finally:
        asyncio_loop.close()


# -- one scheduler ---------------------------------------------------------------------------------


def test_asyncio_and_kernel_tasks_interleave_in_one_fifo_order(aio_loop: EventLoop) -> None:
    log: list[str] = []

    async def kernel_worker() -> None:
        for i in range(3):
            log.append(f"kernel {i}")
            await kernel.sleep(0)

    async def asyncio_worker() -> None:
        for i in range(3):
            log.append(f"asyncio {i}")
            await asyncio.sleep(0)

    async def main() -> None:
        first = asyncio.create_task(asyncio_worker())  # queued first, so it runs first
        second = kernel.aio.run_kernel(kernel_worker)
        await asyncio.gather(first, second)

    aio_loop.run_until_complete(main())
    assert log == ["asyncio 0", "kernel 0", "asyncio 1", "kernel 1", "asyncio 2", "kernel 2"]


def test_the_same_interleaving_started_from_the_kernel_side() -> None:
    log: list[str] = []

    async def kernel_worker() -> None:
        for i in range(3):
            log.append(f"kernel {i}")
            await kernel.sleep(0)

    async def asyncio_worker() -> None:
        for i in range(3):
            log.append(f"asyncio {i}")
            await asyncio.sleep(0)

    async def main() -> None:
        worker = await kernel.spawn(kernel_worker)  # queued first, so it runs first
        await kernel.aio.run_asyncio(asyncio_worker())
        await worker.join()

    run_kernel_main(main)
    assert log == ["kernel 0", "asyncio 0", "kernel 1", "asyncio 1", "kernel 2", "asyncio 2"]


def test_timers_of_both_sides_share_one_clock(aio_loop: EventLoop) -> None:
    log: list[tuple[str, float]] = []

    async def kernel_sleeper() -> None:
        for _ in range(2):
            await kernel.sleep(1.5)
            log.append(("kernel", await kernel.clock()))

    async def main() -> None:
        sleeper = kernel.aio.run_kernel(kernel_sleeper)
        for _ in range(3):
            await asyncio.sleep(1)
            log.append(("asyncio", aio_loop.time()))
        await sleeper

    aio_loop.run_until_complete(main())
    assert log == [
        ("asyncio", 1.0),
        ("kernel", 1.5),
        ("asyncio", 2.0),
        ("kernel", 3.0),  # equal deadlines: the one set first (at 1.5, not 2.0) runs first
        ("asyncio", 3.0),
    ]


class Recorder:
    """A kernel tracer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, dict[str, Any]]] = []

    def __call__(self, event: str, task: Any, **details: Any) -> None:
        self.events.append((event, task, details))

    def mentioning(self, text: str) -> list[str]:
        """The events whose task or details mention ``text`` (in their repr)."""
        return [
            event
            for event, task, details in self.events
            if text in repr(task) or any(text in str(value) for value in details.values())
        ]


async def asyncio_sleeper() -> None:
    await asyncio.sleep(1)


async def kernel_sleeper() -> None:
    await kernel.sleep(2)


async def both_sides() -> None:
    await kernel.aio.run_kernel(kernel_sleeper)
    await asyncio.create_task(asyncio_sleeper(), name="asyncio-sleeper")


def run_traced(main: Any) -> Recorder:
    recorder = Recorder()
    with kernel.Kernel(clock=kernel.VirtualClock(), tracer=recorder) as k:
        loop = EventLoop(k)
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    return recorder


def test_the_tracer_sees_kernel_tasks_and_asyncio_timers() -> None:
    recorder = run_traced(both_sides)
    kernel_events = [
        (event, task.name)
        for event, task, _ in recorder.events
        if isinstance(task, kernel.Task) and event in ("spawn", "exit")
    ]
    assert kernel_events == [("spawn", "kernel_sleeper"), ("exit", "kernel_sleeper")]
    # asyncio.sleep(1) is a TimerHandle on the kernel's sleeping queue: its deadline is traced.
    timers = [
        details["now"]
        for event, task, details in recorder.events
        if event == "timer" and "TimerHandle" in repr(task) + str(details.get("callback"))
    ]
    assert timers == [3.0]


def test_the_tracer_sees_the_steps_of_asyncio_tasks() -> None:
    recorder = run_traced(both_sides)
    assert recorder.mentioning("asyncio-sleeper") != []  # its steps are queued and run
