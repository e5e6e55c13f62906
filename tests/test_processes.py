"""run_in_process: results, errors with the child's traceback, cancellation, no leftovers.

Most calls run stdlib functions, so a child has little to import and the tests stay fast.
A child is a real process: where a test must know the child got somewhere, it waits on a
``multiprocessing`` event, for a bounded time, never with a sleep.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import multiprocessing
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

import kernel
from kernel import Task, TaskCancelled, TaskTimeout, processes
from kernel.iotable import EVENT_READ, EVENT_WRITE
from kernel.processes import TERMINATE_GRACE_SECONDS, _context, run_in_process

WAIT = 10.0  # seconds: the bound on every wait for a child; never reached when passing


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Finalize, between tests, the multiprocessing events a test left in reference cycles
    (a cancelled task's traceback holds its arguments). Collected later, in the middle of
    another test's call into multiprocessing's resource tracker, they would make Python 3.13
    warn of a reentrant call (CPython issue 109593) -- an error under this test suite."""
    yield
    gc.collect()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stubborn(ready: Any) -> None:
    """In the child: ignore SIGTERM, say so, then sleep (only SIGKILL can stop it)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(60)


class Unshippable(Exception):
    """Pickles, but cannot be rebuilt from its args: it must not reach the parent as is."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")


def raise_unshippable() -> None:
    raise Unshippable(7, "odd constructor")


def return_unshippable() -> Unshippable:
    return Unshippable(7, "odd constructor")


def held_until(release: Any) -> bool:
    """In the child, unpickling a ``HeldUntil``: wait for the test's go-ahead (True), or give
    up (False)."""
    return bool(release.wait(WAIT))


class HeldUntil:
    """An argument the child cannot finish unpickling before the test sets ``release``."""

    def __init__(self, release: Any) -> None:
        self.release = release

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return (held_until, (self.release,))


def released_and_size(released: bool, data: bytes) -> tuple[bool, int]:
    return released, len(data)


def wait_for_release(started: Any, release: Any) -> str:
    """In the child: say it runs, then wait for the test's go-ahead."""
    started.set()
    return "released" if release.wait(WAIT) else "never released"


def call_run_in_process_in_the_child() -> int:
    result: int = kernel.run(run_in_process, abs, -1)
    return result


async def start_stubborn_child() -> tuple[Task, int]:
    """A task waiting in run_in_process on a child that now ignores SIGTERM; and its pid."""
    ready = _context().Event()
    task = await kernel.spawn(run_in_process, stubborn, ready)
    await kernel.sleep(0)  # the child has started; the task waits on its pipe
    [child] = multiprocessing.active_children()
    assert child.pid is not None
    assert ready.wait(WAIT)  # blocks the kernel thread a moment; the child needs nothing of it
    return task, child.pid


async def test_returns_the_result() -> None:
    assert await run_in_process(math.factorial, 20) == 2432902008176640000
    assert await run_in_process(os.getpid) != os.getpid()


def test_the_start_method_does_not_fork_this_process() -> None:
    assert _context().get_start_method() in ("forkserver", "spawn")


async def test_raises_the_exception_with_the_childs_traceback() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        await run_in_process(json.loads, "{")
    [note] = info.value.__notes__
    assert "Traceback in the child process (pid " in note
    assert "json/decoder.py" in note and "raw_decode" in note


async def test_an_exception_that_cannot_make_the_trip_arrives_described() -> None:
    with pytest.raises(RuntimeError, match=r"Unshippable: 7: odd constructor \(could not be"):
        await run_in_process(raise_unshippable)


async def test_an_unpicklable_result_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="returned an unpicklable result"):
        await run_in_process(threading.Lock)


async def test_a_result_that_cannot_be_unpickled_here_is_a_type_error_naming_the_call() -> None:
    with pytest.raises(TypeError, match="could not be sent back") as info:
        await run_in_process(return_unshippable)
    message = str(info.value)
    assert message.startswith("run_in_process(<function return_unshippable at ")
    assert "unpickling it here failed (TypeError: " in message
    assert isinstance(info.value.__cause__, TypeError)  # pickle's own error, kept
    assert multiprocessing.active_children() == []


async def test_a_child_that_dies_without_answering() -> None:
    with pytest.raises(RuntimeError, match="exited with code 3 without sending a result"):
        await run_in_process(os._exit, 3)


async def test_an_unpicklable_function_is_a_type_error_naming_the_fix() -> None:
    def local() -> int:
        return 1

    for func in (lambda: 1, local):
        with pytest.raises(TypeError, match="at the top level of a module") as info:
            await run_in_process(func)
        assert "cannot be pickled" in str(info.value)
    assert multiprocessing.active_children() == []


async def test_an_unpicklable_argument_is_a_type_error_naming_it_and_the_fix() -> None:
    await run_in_process(abs, -1)  # the first call starts the fork server, which keeps its fds
    fds, threads = open_fds(), set(threading.enumerate())
    for arg in (lambda: 1, threading.Lock()):  # (pickle raises AttributeError, TypeError)
        with pytest.raises(TypeError) as info:
            await run_in_process(max, 1, arg)
        message = str(info.value)
        assert message.startswith(f"run_in_process({max!r}, ...) cannot send argument 2, ")
        assert repr(arg) in message and "cannot be pickled" in message
        assert "Pass plain data" in message and "at the top level of a module" in message
    # Refused inside process.start(), before it forks: nothing to stop or to close.
    assert multiprocessing.active_children() == []
    assert set(threading.enumerate()) == threads
    assert open_fds() == fds


async def test_cancelling_the_task_terminates_the_child() -> None:
    task = await kernel.spawn(run_in_process, time.sleep, 60)
    await kernel.sleep(0)  # the child has started; the task waits on its pipe
    [child] = multiprocessing.active_children()
    pid = child.pid
    assert pid is not None
    await task.cancel()
    assert isinstance(task.exception, TaskCancelled)
    assert multiprocessing.active_children() == []
    assert gone(pid)


async def test_a_timeout_terminates_the_child() -> None:
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(5, run_in_process(time.sleep, 60))
    assert multiprocessing.active_children() == []


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    virtual_clock: kernel.VirtualClock,
) -> None:
    task, pid = await start_stubborn_child()
    step = TERMINATE_GRACE_SECONDS / 4
    ticks: list[tuple[float, bool]] = []

    async def ticker() -> None:
        # Three ticks inside the grace period, then no deadline is left but the SIGKILL's:
        # the clock cannot jump past it while the kernel waits for the child to exit.
        for _ in range(3):
            await kernel.sleep(step)
            ticks.append((await kernel.clock(), gone(pid)))

    await kernel.spawn(ticker)
    await task.cancel()
    assert isinstance(task.exception, TaskCancelled)
    # The stop waited on the kernel's clock, and the kernel ran the ticker meanwhile
    # (blocking in join() would have frozen both: the cancel would return at 0.0, no ticks).
    assert ticks == [(step, False), (2 * step, False), (3 * step, False)]
    assert virtual_clock.now() == TERMINATE_GRACE_SECONDS
    assert multiprocessing.active_children() == []
    assert gone(pid)


async def test_a_second_cancel_does_not_interrupt_the_stop(
    virtual_clock: kernel.VirtualClock,
) -> None:
    task, pid = await start_stubborn_child()

    async def cancel_again() -> None:
        await kernel.sleep(TERMINATE_GRACE_SECONDS / 2)
        await task.cancel(blocking=False)

    await kernel.spawn(cancel_again)
    await task.cancel()
    assert isinstance(task.exception, TaskCancelled)
    assert virtual_clock.now() == TERMINATE_GRACE_SECONDS
    assert multiprocessing.active_children() == []
    assert gone(pid)


@pytest.mark.parametrize("waiting", ["for the answer", "to send the call"])
def test_closing_the_waiting_coroutine_kills_the_child_at_once(waiting: str) -> None:
    # A coroutine being closed can await nothing: the stop must not need the kernel.
    coro: Coroutine[Any, Any, object]
    if waiting == "for the answer":
        coro = run_in_process(time.sleep, 60)
    else:  # more than the pipe holds: the child, still starting, has read nothing yet
        coro = run_in_process(len, b"x" * (4 << 20))
    trap = coro.send(None)  # starts the child, then yields its first wait (no kernel needed)
    assert trap[2] == (EVENT_READ if waiting == "for the answer" else EVENT_WRITE)
    [child] = multiprocessing.active_children()
    pid = child.pid
    assert pid is not None
    coro.close()
    assert multiprocessing.active_children() == []
    assert gone(pid)


async def test_no_file_descriptor_is_left_behind() -> None:
    await run_in_process(abs, -1)  # the first call starts the fork server, which keeps its fds
    before = open_fds()
    assert await run_in_process(abs, -2) == 2
    with pytest.raises(ZeroDivisionError):
        await run_in_process(divmod, 1, 0)
    task = await kernel.spawn(run_in_process, time.sleep, 60)
    await kernel.sleep(0)
    await task.cancel()
    task = await kernel.spawn(run_in_process, len, b"x" * (4 << 20))
    await kernel.sleep(0)  # parked sending the call, more than the pipe holds
    await task.cancel()
    assert open_fds() == before


class _KernelFailure:
    """A callback that raises in the kernel's loop, as a second Ctrl-C does: the kernel
    abandons its tasks (closing their coroutines: GeneratorExit)."""

    def _run(self) -> None:
        raise KeyboardInterrupt


def test_an_abandoned_grace_period_kills_and_reaps_the_child(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pids: list[int] = []

    async def main() -> None:
        task, pid = await start_stubborn_child()
        pids.append(pid)
        await task.cancel(blocking=False)
        await kernel.sleep(0)  # the task runs first: SIGTERM, ignored; now the grace period
        running = kernel.current_kernel()
        assert running is not None
        running.call_soon(_KernelFailure())
        await kernel.sleep(1)

    try:
        with pytest.raises(KeyboardInterrupt):
            kernel.run(main, clock=kernel.VirtualClock())
    finally:
        if pids and not gone(pids[0]):  # (without the fix: not to leave it running)
            os.kill(pids[0], signal.SIGKILL)  # (the fork server reaps it)
            pids.clear()
    assert pids and gone(pids[0])  # killed and reaped
    assert multiprocessing.active_children() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # none ignored the exit


async def test_a_large_argument_does_not_hold_the_kernel_while_the_child_starts() -> None:
    """start() only forks; the call goes to the child through the I/O wait table.

    A child takes its arguments in only after importing the main module again, which may
    take seconds. Here it is slow in a way the test controls: it cannot unpickle the first
    argument before the test has set ``release``, and the second is more than a pipe holds.
    Had start() written them, the kernel's thread would be stuck in that write, the test
    could not set ``release``, and the child would give up waiting after WAIT seconds.
    """
    release = _context().Event()
    big = b"x" * (4 << 20)  # a pipe holds 64 KiB by default, at most 1 MiB unless privileged
    task = await kernel.spawn(run_in_process, released_and_size, HeldUntil(release), big)
    await kernel.sleep(0)  # the task starts the child; the kernel turns on meanwhile
    assert not task.done
    release.set()
    assert await task.join() == (True, len(big))
    assert multiprocessing.active_children() == []


async def test_a_sigint_to_the_child_does_not_end_its_call() -> None:
    """A Ctrl-C at a terminal reaches every process in its group, children too: what it
    means is for the program to decide (it may handle SIGINT and let the work finish)."""
    started, release = _context().Event(), _context().Event()

    async def call() -> object:
        try:
            return await run_in_process(wait_for_release, started, release)
        except KeyboardInterrupt as error:  # (without the fix: not to stop the test run)
            return error

    task = await kernel.spawn(call)
    await kernel.sleep(0)  # the child has started; the task waits on its pipe
    [child] = multiprocessing.active_children()
    assert child.pid is not None
    assert started.wait(WAIT)  # the child runs the function (and ignores SIGINT by now)
    os.kill(child.pid, signal.SIGINT)
    release.set()
    assert await task.join() == "released"
    assert multiprocessing.active_children() == []


async def test_a_call_in_the_child_is_refused_with_the_reason_and_the_fix() -> None:
    with pytest.raises(RuntimeError, match="it is a daemonic process") as info:
        await run_in_process(call_run_in_process_in_the_child)
    message = str(info.value)
    assert "cannot start a child process from 'kernel-process:call_run_in_process_in" in message
    assert "the child of another run_in_process() call" in message
    assert "Do the work in this process directly" in message
    assert multiprocessing.active_children() == []


async def test_an_argument_that_cannot_be_rebuilt_in_the_child_is_reported() -> None:
    with pytest.raises(TypeError, match="could not unpickle the function and arguments"):
        await run_in_process(len, HeldUntil(None))  # (None has no wait())
    assert multiprocessing.active_children() == []


def test_a_function_of_a_script_run_by_the_views_gets_advice_that_fits(
    tmp_path: pathlib.Path,
) -> None:
    # `python -m kernel run script.py` loads the script under a private name that a child
    # cannot import: "define it at the top level" would be advice it already follows.
    from kernel.trace.script import load

    script = tmp_path / "uses_a_process.py"
    script.write_text(
        "def square(x):\n    return x * x\n\n\nclass Point:\n    pass\n", encoding="utf-8"
    )
    module = load(script)
    assert module.__name__.startswith(processes.SCRIPT_MODULE_PREFIX)

    async def main() -> None:
        await kernel.run_in_process(module.square, 7)

    async def main_sends_a_point() -> None:
        await kernel.run_in_process(repr, module.Point())  # (the child cannot unpickle it)

    try:
        with pytest.raises(TypeError, match=r"python -m kernel.*python script\.py"):
            kernel.run(main)
        with pytest.raises(TypeError, match=r"an argument: .*python -m kernel.*python script"):
            kernel.run(main_sends_a_point)
    finally:
        del sys.modules[module.__name__]
