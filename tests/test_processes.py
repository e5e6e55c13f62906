"""run_in_process: results, errors with the child's traceback, cancellation, no leftovers.

Most calls run stdlib functions, so a child has little to import and the tests stay fast.
A child is a real process: where a test must know the child got somewhere, it waits on a
``multiprocessing`` event, for a bounded time, never with a sleep.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import pytest

import kernel
from kernel import TaskCancelled, TaskTimeout
from kernel.processes import _context, run_in_process

WAIT = 10.0  # seconds: the bound on every wait for a child; never reached when passing


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


async def test_a_child_that_ignores_sigterm_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kernel.processes.TERMINATE_GRACE_SECONDS", 0.05)
    ready = _context().Event()
    task = await kernel.spawn(run_in_process, stubborn, ready)
    await kernel.sleep(0)
    [child] = multiprocessing.active_children()
    pid = child.pid
    assert pid is not None
    assert ready.wait(WAIT)  # blocks the kernel thread a moment; the child needs nothing of it
    await task.cancel()
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
    assert open_fds() == before
