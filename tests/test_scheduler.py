"""The kernel itself: run(), the loop's guarantees, bad input, shutdown, Ctrl-C, tracing."""

from __future__ import annotations

import functools
import gc
import inspect
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Generator
from typing import Any

import pytest

import kernel
from kernel import Kernel, KernelError, TaskCancelled, VirtualClock
from kernel.iotable import EVENT_READ
from kernel.traps import _io_wait, _wait_on
from kernel.waitqueue import WaitQueue


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def answer() -> int:
    await kernel.sleep(1)
    return 42


def test_run_returns_the_result() -> None:
    assert kernel.run(answer, clock=VirtualClock()) == 42
    assert kernel.run(answer(), clock=VirtualClock()) == 42


def test_run_reraises_the_original_exception() -> None:
    error = ValueError("original")

    async def main() -> None:
        await kernel.sleep(0)
        raise error

    with pytest.raises(ValueError) as info:
        kernel.run(main)
    assert info.value is error


def test_run_accepts_generator_coroutines() -> None:
    def plain() -> Generator[Any, Any, int]:
        yield from kernel.sleep(1)
        return 7

    @kernel.coroutine
    def marked() -> Generator[Any, Any, int]:
        task = yield from kernel.spawn(answer)
        result = yield from task.join()  # type: ignore[misc]  # (mypy: only types.coroutine)
        return result + 1  # type: ignore[no-any-return]

    assert kernel.run(plain(), clock=VirtualClock()) == 7
    assert kernel.run(marked, clock=VirtualClock()) == 43


def test_coroutine_decorator_rejects_plain_functions() -> None:
    with pytest.raises(TypeError, match="decorates a generator function"):
        kernel.coroutine(len)  # type: ignore[arg-type]

    async def already() -> None:
        pass

    assert kernel.coroutine(already) is already


def test_a_marked_bound_method_or_partial_runs_and_spawns_like_a_function() -> None:
    # types.coroutine cannot mark these in place; it wraps what they return instead.
    def ticker(n: int) -> Generator[Any, Any, int]:
        yield from kernel.sleep(n)
        return n

    class Worker:
        def job(self) -> Generator[Any, Any, str]:
            yield from kernel.sleep(1)
            return "job"

    by_partial = kernel.coroutine(functools.partial(ticker, 2))
    by_method = kernel.coroutine(Worker().job)

    async def main() -> list[Any]:
        spawned = [await kernel.spawn(by_partial), await kernel.spawn(by_method)]
        return [await by_partial(), await by_method()] + [await t.join() for t in spawned]

    assert kernel.run(by_partial, clock=VirtualClock()) == 2
    assert kernel.run(by_method, clock=VirtualClock()) == "job"
    assert kernel.run(main, clock=VirtualClock()) == [2, "job", 2, "job"]


def test_run_inside_a_running_kernel_is_an_error() -> None:
    async def main() -> str:
        coro = answer()
        try:
            kernel.run(coro)
        except RuntimeError as error:
            return str(error)
        finally:
            coro.close()
        return "no error"

    assert "called inside a running kernel" in kernel.run(main)


def test_a_kernel_can_run_several_times_and_cancels_leftovers_on_close() -> None:
    log: list[str] = []

    async def background() -> None:
        try:
            await kernel.sleep(1000)
        finally:
            log.append("background cleaned up")

    async def start() -> kernel.Task:
        return await kernel.spawn(background)

    with Kernel(clock=VirtualClock()) as k:
        task = k.run(start)
        assert k.run(answer) == 42
        assert not task.done  # still suspended between runs
        assert log == []
    assert log == ["background cleaned up"]
    assert task.cancelled
    with pytest.raises(RuntimeError, match="closed"):
        k.run(answer)


def test_run_cancels_remaining_tasks_and_runs_their_cleanup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []

    async def lingering(name: str) -> None:
        try:
            await kernel.sleep(1000)
        except TaskCancelled:
            log.append(f"{name} cancelled")
            await kernel.sleep(1)  # cleanup may still block
            log.append(f"{name} cleaned up")
            raise

    async def main() -> str:
        await kernel.spawn(lingering, "daemon", daemon=True)
        await kernel.spawn(lingering, "normal")
        await kernel.sleep(0)
        return "main done"

    with caplog.at_level(logging.WARNING, logger="kernel"):
        assert kernel.run(main, clock=VirtualClock()) == "main done"
    assert log == ["daemon cancelled", "normal cancelled", "daemon cleaned up", "normal cleaned up"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # for the non-daemon task only
    assert ".lingering' state=SLEEPING> was still running" in warnings[0]


def test_no_fd_or_thread_is_left_behind() -> None:
    threads = threading.active_count()
    before = open_fds()
    for _ in range(20):
        kernel.run(answer, clock=VirtualClock())
    assert open_fds() == before
    assert threading.active_count() == threads


class TestBadYields:
    def run_yielding(self, value: Any) -> str:
        """Run a task that yields ``value``; return the TypeError message it received."""
        others: list[str] = []

        def bad() -> Generator[Any, Any, str]:
            try:
                yield value
            except TypeError as error:
                return str(error)
            return "no error"

        async def bystander() -> None:
            await kernel.sleep(0)
            others.append("unaffected")

        async def main() -> str:
            b = await kernel.spawn(bystander)
            message = await (await kernel.spawn(bad())).join()
            await b.join()
            return f"{message}"

        message: str = kernel.run(main)
        assert others == ["unaffected"]
        return message

    def test_unknown_trap(self) -> None:
        message = self.run_yielding(("teleport", 1))
        assert "yielded ('teleport', 1) to the kernel" in message
        assert "'teleport' is not one of the kernel's traps" in message

    def test_malformed_trap(self) -> None:
        message = self.run_yielding(("sleep",))
        assert "a malformed trap: it should be a tuple of 2, ('sleep', 'seconds')" in message

    @pytest.mark.parametrize(
        ("trap", "says"),
        [
            (("sleep", "0.1"), "the sleep trap takes a number of seconds, not '0.1'"),
            (("cancel", 5, TaskCancelled()), "its task must be a kernel Task, not 5"),
            (("wait_on", None, "X"), "its queue must be a kernel WaitQueue, not None"),
        ],
    )
    def test_a_trap_with_arguments_of_the_wrong_kind(self, trap: Any, says: str) -> None:
        message = self.run_yielding(trap)
        assert f"yielded the trap {trap!r}, but {says}" in message

    def test_bare_yield(self) -> None:
        assert "a bare `yield`" in self.run_yielding(None)

    def test_asyncio_future(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            message = self.run_yielding(loop.create_future())
        finally:
            loop.close()
        assert "an asyncio object" in message and "kernel.aio" in message

    def test_anything_else(self) -> None:
        assert "not a trap" in self.run_yielding(3.5)


def test_an_exception_inside_a_trap_handler_is_a_kernel_error() -> None:
    log: list[str] = []
    before = open_fds()

    async def victim() -> None:
        try:
            await kernel.sleep(1000)
        finally:
            log.append("victim closed")

    def handler_with_a_bug(task: Any, trap: Any) -> bool:
        raise TypeError("a bug in the sleep handler")

    def breaks_the_kernel() -> Generator[Any, Any, None]:
        yield ("sleep", 1)  # a well-formed trap, whose handler fails: the kernel's fault

    async def main() -> None:
        await kernel.spawn(victim)
        await kernel.sleep(0)
        running = kernel.current_kernel()
        assert running is not None
        running._handlers["sleep"] = handler_with_a_bug
        await (await kernel.spawn(breaks_the_kernel())).join()

    with pytest.raises(KernelError, match="internal error in the kernel") as info:
        kernel.run(main)
    assert isinstance(info.value.__cause__, TypeError)
    assert log == ["victim closed"]
    assert open_fds() == before


def test_a_kernel_error_from_a_callback_does_not_blame_the_last_task() -> None:
    class Breaks:
        """A callback (the kernel calls its ``_run``) that fails: not a task's doing."""

        def _run(self) -> None:
            raise ValueError("the callback failed")

    async def innocent() -> None:
        await kernel.sleep(0)

    async def main() -> None:
        await kernel.spawn(innocent, name="innocent")
        k = kernel.current_kernel()
        assert k is not None
        k.call_soon(Breaks())
        await kernel.sleep(1)

    with pytest.raises(KernelError, match="while running a callback") as info:
        kernel.run(main, clock=VirtualClock())
    assert "innocent" not in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_an_unjoined_crash_is_reported_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crash() -> None:
        raise ZeroDivisionError("nobody saw me")

    async def joined() -> None:
        raise KeyError("seen")

    async def kept() -> None:
        raise OSError("held but never looked at")

    def crashes() -> list[str]:
        return [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]

    held: list[kernel.Task] = []

    async def main() -> None:
        await kernel.spawn(crash)  # nobody keeps the task: reported as soon as it is dropped
        t = await kernel.spawn(joined)  # fails before the join, but is joined: not reported
        held.append(await kernel.spawn(kept))  # referenced, never looked at: reported at close
        await kernel.sleep(0)
        await kernel.sleep(0)
        assert len(crashes()) == 1 and ".crash'" in crashes()[0]
        with pytest.raises(kernel.TaskError):
            await t.join()

    with caplog.at_level(logging.ERROR, logger="kernel"):
        kernel.run(main)
    assert len(crashes()) == 2 and ".kept'" in crashes()[1]
    assert all(r.exc_info is not None for r in caplog.records)
    assert "nobody saw me" in caplog.text and "Traceback" in caplog.text
    assert "seen" not in caplog.text


def test_a_main_task_failing_after_ctrl_c_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        try:
            signal.raise_signal(signal.SIGINT)
            await kernel.sleep(1)
        finally:
            raise ValueError("cleanup failed")

    with pytest.raises(KeyboardInterrupt) as stopped:
        kernel.run(main, clock=VirtualClock())
    assert repr(stopped.value.__cause__) == "ValueError('cleanup failed')"
    del stopped
    gc.collect()
    assert "cleanup failed" not in caplog.text  # not logged as well: it was seen


def test_ctrl_c_cancels_main_runs_cleanup_then_raises_keyboard_interrupt() -> None:
    log: list[Any] = []

    async def press_ctrl_c() -> None:
        await kernel.sleep(1)
        signal.raise_signal(signal.SIGINT)

    async def main() -> None:
        await kernel.spawn(press_ctrl_c)
        try:
            await kernel.sleep(100)
        except TaskCancelled:
            log.append(("main cancelled at", await kernel.clock()))
            await kernel.sleep(1)
            log.append("cleanup done")
            raise

    with pytest.raises(KeyboardInterrupt):
        kernel.run(main, clock=VirtualClock())
    assert log == [("main cancelled at", 1.0), "cleanup done"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.realtime
def test_ctrl_c_wakes_a_kernel_blocked_in_select() -> None:
    # A thread presses Ctrl-C once the main task is about to block; the main task sleeps
    # for 60 real seconds, so only the wake-up path can end this test quickly.
    about_to_block = threading.Event()

    def press_ctrl_c() -> None:
        about_to_block.wait(10)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    async def main() -> str:
        about_to_block.set()
        try:
            await kernel.sleep(60)
        except TaskCancelled:
            return "cancelled"
        return "slept"

    thread = threading.Thread(target=press_ctrl_c)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            kernel.run(main)
    finally:
        thread.join()


def test_signals_wake_the_kernel_through_its_wakeup_socket() -> None:
    # So that a signal arriving just before select() blocks cannot wait out the timeout.
    async def main() -> bool:
        k = kernel.current_kernel()
        assert k is not None
        installed = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(installed)
        return installed == k._wake_send.fileno()

    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    assert kernel.run(main) is True
    after = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(after)
    assert after == before  # put back as it was


def test_system_exit_in_a_child_stops_the_program_after_cleanup() -> None:
    log: list[str] = []

    async def quitter() -> None:
        raise SystemExit(3)

    async def main() -> None:
        await kernel.spawn(quitter)
        try:
            await kernel.sleep(100)
        finally:
            log.append("main cleaned up")

    with pytest.raises(SystemExit) as info:
        kernel.run(main, clock=VirtualClock())
    assert info.value.code == 3
    assert log == ["main cleaned up"]


def test_a_thread_wakes_a_task_through_call_threadsafe() -> None:
    queue = WaitQueue()

    async def main() -> Any:
        k = kernel.current_kernel()
        assert k is not None

        def from_thread() -> None:
            k.call_threadsafe(k._wake, queue, 1, "hello from a thread")

        thread = threading.Thread(target=from_thread)
        thread.start()
        value = await _wait_on(queue, "THREAD")  # the callback runs only after we park
        thread.join()
        return value

    assert kernel.run(main) == "hello from a thread"


def test_a_task_cannot_be_waited_for_from_another_kernel() -> None:
    async def start() -> kernel.Task:
        return await kernel.spawn(answer)

    async def wait_for(task: kernel.Task) -> None:
        await task.wait()

    with Kernel(clock=VirtualClock()) as first, Kernel(clock=VirtualClock()) as second:
        foreign = first.run(start)
        with pytest.raises(RuntimeError, match="belongs to another kernel"):
            second.run(wait_for, foreign)


def test_a_wait_queue_belongs_to_one_open_kernel_at_a_time() -> None:
    queue = WaitQueue(owner="the-lock")

    async def park_forever() -> None:
        await kernel.spawn(_wait_on, queue, "LOCK", daemon=True)
        await kernel.sleep(0)

    async def park_here() -> None:
        await _wait_on(queue, "LOCK")

    with Kernel(clock=VirtualClock()) as first:
        first.run(park_forever)  # a task of the first kernel now waits on the queue
        with (
            Kernel(clock=VirtualClock()) as second,
            pytest.raises(RuntimeError, match="'the-lock' is in use by another kernel"),
        ):
            second.run(park_here)
    with Kernel(clock=VirtualClock()) as third:  # the first kernel is closed: free to rebind
        third.run(park_forever)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_max_threads_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_threads must be a positive whole number"):
        Kernel(max_threads=bad)


def test_a_failing_threadsafe_callback_is_reported_and_the_kernel_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise ValueError("callback bug")

    async def main() -> str:
        k = kernel.current_kernel()
        assert k is not None
        k.call_threadsafe(broken)
        await kernel.sleep(0)
        await kernel.sleep(0)
        return "still running"

    with caplog.at_level(logging.ERROR, logger="kernel"):
        assert kernel.run(main) == "still running"
    assert "called through call_threadsafe, raised" in caplog.text
    assert "callback bug" in caplog.text


def test_a_burst_of_threadsafe_calls_writes_one_wakeup_byte() -> None:
    async def main() -> int:
        k = kernel.current_kernel()
        assert k is not None
        calls: list[int] = []
        for i in range(100):
            k.call_threadsafe(calls.append, i)
        pending = k._wake_recv.recv(4096)  # what the burst wrote to the wake-up socket
        await kernel.sleep(0)
        assert calls == list(range(100))
        k.call_threadsafe(calls.append, 100)  # after the burst ran, a new call writes again
        await kernel.sleep(0)
        return len(pending)

    assert kernel.run(main) == 1


def test_a_wakeup_byte_that_comes_after_its_callback_ran_does_not_silence_later_calls() -> None:
    # The race: a thread appends a callback, the kernel runs it, and only then does the
    # thread set the flag and write its byte. The kernel must clear the flag when it finds
    # that byte, although the deque is empty -- or no later call would write a byte again.
    async def main() -> bool:
        k = kernel.current_kernel()
        assert k is not None
        k._wakeup_pending = True
        k._wake_send.send(b"\0")
        await kernel.sleep(1)  # the kernel polls, drains the byte, finds no callback
        return k._wakeup_pending

    assert kernel.run(main, clock=VirtualClock()) is False


def test_call_threadsafe_on_a_closed_kernel_is_an_error() -> None:
    k = Kernel()
    k.close()
    with pytest.raises(RuntimeError, match="closed"):
        k.call_threadsafe(print)


class TestIOWait:
    async def test_a_reader_wakes_when_data_arrives(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)

            async def reader() -> bytes:
                await _io_wait(a, EVENT_READ)
                return a.recv(10)

            task = await kernel.spawn(reader)
            await kernel.sleep(0)
            assert task.state == "IO_WAIT"
            b.send(b"ping")
            assert await task.join() == b"ping"

    async def test_a_second_reader_gets_resource_busy(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            first = await kernel.spawn(_io_wait, a, EVENT_READ)
            await kernel.sleep(0)
            with pytest.raises(kernel.ResourceBusy):
                await _io_wait(a, EVENT_READ)
            await first.cancel()

    async def test_cancelling_a_waiter_leaves_the_table_empty(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            task = await kernel.spawn(_io_wait, a, EVENT_READ)
            await kernel.sleep(0)
            k = kernel.current_kernel()
            assert k is not None and len(k._io.waiters()) == 1
            await task.cancel()
            assert k._io.waiters() == [] and len(k._io) == 0

    async def test_waiting_on_a_closed_socket_raises_in_the_task(self) -> None:
        a, b = socket.socketpair()
        a.close()
        b.close()
        with pytest.raises((ValueError, OSError)):
            await _io_wait(a, EVENT_READ)


@pytest.mark.realtime
async def test_the_real_clock_sleeps_for_real() -> None:
    # Tolerance: only that time moves forward by at least the sleep; no upper bound is
    # asserted, since a loaded CI machine may be slow.
    start = await kernel.clock()
    await kernel.sleep(0.01)
    assert await kernel.clock() - start >= 0.01


def trace_of(main: Any) -> list[tuple[Any, ...]]:
    events: list[tuple[Any, ...]] = []

    def tracer(event: str, task: kernel.Task | None, **details: Any) -> None:
        events.append((event, task.id if task else None, details))

    kernel.run(main, clock=VirtualClock(), tracer=tracer)
    return events


async def traced_program() -> int:
    child = await kernel.spawn(answer)
    return int(await child.join())


def test_the_tracer_sees_every_decision() -> None:
    events = trace_of(traced_program)
    assert [(e, t) for e, t, _ in events] == [
        ("spawn", 1),
        ("run", 1),
        ("trap", 1),  # spawn
        ("spawn", 2),
        ("run", 1),
        ("trap", 1),  # wait_task
        ("park", 1),
        ("run", 2),
        ("trap", 2),  # sleep
        ("park", 2),
        ("select", None),  # nothing ready: blocks until t=1 (virtual: jumps)
        ("timer", 2),
        ("wake", 2),
        ("run", 2),
        ("wake", 1),  # child's exit wakes its joiner
        ("exit", 2),
        ("run", 1),
        ("exit", 1),
    ]
    assert events[2][2]["trap"] == "spawn"
    assert events[6][2] == {"state": "JOIN"}
    assert events[9][2] == {"state": "SLEEPING"}
    assert events[10][2] == {"timeout": 1.0, "ready": []}
    assert events[-1][2] == {"result": "42", "exc": None}


def test_schedules_are_repeatable() -> None:
    async def busy() -> None:
        async def worker(n: int) -> None:
            for i in range(3):
                await kernel.sleep(n * 0.1 if i % 2 else 0)

        async with kernel.TaskGroup() as g:
            for n in range(5):
                await g.spawn(worker, n)

    def shape(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(e, t) for e, t, _ in events]

    assert shape(trace_of(busy)) == shape(trace_of(busy))


def test_a_child_forked_inside_a_running_kernel_can_run_its_own() -> None:
    # In the child, the parent's kernel is a copy nobody turns: it must not count as running
    # (asyncio resets its running loop after a fork the same way). A fresh interpreter, so
    # that no other thread exists when it forks.
    program = """
import os, kernel

async def child_main():
    return 7

async def main():
    pid = os.fork()
    if pid == 0:
        code = 0 if kernel.current_kernel() is None and kernel.run(child_main) == 7 else 1
        os._exit(code)
    return os.waitpid(pid, 0)[1]

print(os.waitstatus_to_exitcode(kernel.run(main)))
"""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert (result.stdout, result.stderr) == ("0\n", "")


def test_ctrl_c_during_the_shutdown_cleanup_still_raises_keyboard_interrupt() -> None:
    # main() has returned; a task left running is being cancelled by close(), and Ctrl-C
    # comes during its cleanup. There is no main task left to cancel: the cleanup finishes,
    # then run() raises KeyboardInterrupt (asyncio.run does the same), not main's result.
    log: list[Any] = []

    async def left_running() -> None:
        try:
            await kernel.sleep(100)
        finally:
            async with kernel.disable_cancellation():
                signal.raise_signal(signal.SIGINT)
                await kernel.sleep(1)
                log.append(("cleanup done", await kernel.clock()))

    async def main() -> str:
        await kernel.spawn(left_running, daemon=True)
        await kernel.sleep(0)
        return "main's result"

    with pytest.raises(KeyboardInterrupt):
        kernel.run(main, clock=VirtualClock())
    assert log == [("cleanup done", 1.0)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_that_lands_in_a_task_stops_at_once() -> None:
    # The first Ctrl-C cancels main, whose cleanup takes 100 s; the second is raised in
    # whatever code runs when it comes -- here a task's -- and must still stop the program
    # then, not after the cleanup.
    log: list[Any] = []

    async def press_twice() -> None:
        await kernel.sleep(1)
        signal.raise_signal(signal.SIGINT)
        await kernel.sleep(1)
        signal.raise_signal(signal.SIGINT)  # KeyboardInterrupt is raised right here

    async def main() -> None:
        await kernel.spawn(press_twice, daemon=True)
        try:
            await kernel.sleep(1000)
        except TaskCancelled:
            log.append(("main cancelled at", await kernel.clock()))
            try:
                await kernel.sleep(100)
                log.append("cleanup ran to its end")
            except GeneratorExit:
                log.append("cleanup closed")
                raise
            raise

    with pytest.raises(KeyboardInterrupt):
        kernel.run(main, clock=VirtualClock())
    assert log == [("main cancelled at", 1.0), "cleanup closed"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_kernel_running_in_one_thread_cannot_be_run_from_another() -> None:
    async def other() -> str:
        return "ran"

    async def main(k: Kernel) -> str:
        def run_it_again() -> str:
            try:
                return str(k.run(other))
            except RuntimeError as error:
                return str(error)

        answer: str = await kernel.run_in_thread(run_it_again)
        return answer

    with Kernel() as k:
        answer = k.run(main, k)
        assert "already running in another thread" in answer
        assert "call_threadsafe" in answer
        assert len(k._tasks) == 0  # nothing was left behind by the refused run
        assert k.run(other) == "ran"  # and it still runs here


def test_closing_a_running_kernel_from_its_own_task_is_refused() -> None:
    async def main(k: Kernel) -> str:
        try:
            k.close()
        except RuntimeError as error:
            return str(error)
        return "closed"

    with Kernel() as k:
        answer = k.run(main, k)
        assert "while the kernel is running" in answer and "main task return" in answer
        assert k.run(kernel.sleep, 0) is None  # it was not closed


def test_a_prepared_trap_yields_its_trap_each_time_it_is_awaited() -> None:
    from kernel.traps import IO_WAIT, prepared_trap

    trap = prepared_trap(IO_WAIT, "sock", EVENT_READ)

    async def twice() -> str:
        await trap
        await trap
        return "done"

    coro = twice()
    assert coro.send(None) == (IO_WAIT, "sock", EVENT_READ)
    assert coro.send(None) == (IO_WAIT, "sock", EVENT_READ)
    with pytest.raises(StopIteration) as finished:
        coro.send(None)
    assert finished.value.value == "done"
    thrown = twice()
    thrown.send(None)
    with pytest.raises(TaskCancelled):  # thrown in: raised at the await, as a trap's would be
        thrown.throw(TaskCancelled("cancelled while parked"))


async def test_a_refused_nested_run_and_a_kernel_closed_in_a_task_leave_this_one_running() -> None:
    from kernel.lifecycle import current_kernel

    this = current_kernel()

    async def child() -> int:
        return 1

    refused = child()
    with pytest.raises(RuntimeError, match="inside a running kernel"):
        kernel.run(refused)
    assert (
        inspect.getcoroutinestate(refused) == "CORO_CLOSED"
    )  # closed: no "never awaited" warning later
    with Kernel():  # made and closed here, never run
        pass
    assert current_kernel() is this
    async with kernel.Lock():  # (needs running_task(), so the thread's current kernel)
        pass
    with pytest.raises(RuntimeError, match="inside a running kernel"):
        kernel.run(child)  # still refused


def test_cancelling_a_task_of_another_kernel_is_refused() -> None:
    tasks: list[kernel.Task] = []

    async def start() -> None:
        tasks.append(await kernel.spawn(kernel.sleep, 10, daemon=True))
        await kernel.sleep(0)

    async def cancel_it() -> None:
        with pytest.raises(RuntimeError, match="belongs to another kernel"):
            await tasks[0].cancel()

    with Kernel() as first:
        first.run(start)
        kernel.run(cancel_it)
        assert not tasks[0].done  # untouched: still parked in its own kernel


def test_a_task_spawned_by_a_cleanup_at_close_is_cancelled_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    helpers: list[kernel.Task] = []

    async def heartbeat() -> None:
        while True:
            await kernel.sleep(1)

    async def worker() -> None:
        try:
            await kernel.sleep(100)
        finally:  # its cleanup starts a helper, as the kernel closes
            helpers.append(await kernel.spawn(heartbeat))

    async def main() -> None:
        await kernel.spawn(worker, daemon=True)
        await kernel.sleep(0)

    kernel.run(main, clock=clock)
    assert helpers[0].cancelled and clock.now() == 0.0
    assert "heartbeat" in caplog.text and "was still running when the kernel closed" in caplog.text


def test_work_a_thread_hands_in_runs_before_virtual_time_jumps() -> None:
    ran_at: list[float] = []
    waiting = threading.Event()  # the kernel waits in select(), up to the threshold

    class Record:
        def _run(self) -> None:
            ran_at.append(k.time())

    def hand_in() -> None:
        waiting.wait()
        k.call_soon_threadsafe(Record())

    async def main() -> None:
        threading.Thread(target=hand_in).start()
        await kernel.sleep(10)

    with Kernel(clock=VirtualClock(autojump_threshold=60)) as k:
        real_select = k._io.select

        def select(timeout: float | None) -> list[Any]:
            if timeout and not waiting.is_set():  # the first wait: the thread ends it
                waiting.set()
                return real_select(timeout)
            return real_select(0)  # (later ones: no need to wait out the threshold)

        k._io.select = select  # type: ignore[method-assign]
        k.run(main)
    assert ran_at == [0.0]


def test_call_at_refuses_a_deadline_that_is_not_a_number() -> None:
    class Record:
        def _run(self) -> None:
            pass

    with Kernel() as k:
        with pytest.raises(ValueError, match="NaN deadline"):
            k.call_at(float("nan"), Record())
        with pytest.raises(TypeError, match=r"takes a deadline in seconds.*not '1'"):
            k.call_at("1", Record())  # type: ignore[arg-type]
