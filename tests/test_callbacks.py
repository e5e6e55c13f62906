"""Callbacks on the kernel's three structures: what the asyncio adapter is built on.

These use the kernel directly, with a minimal callback object, so that a failure here points
at the kernel rather than at the adapter.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import pytest

import kernel
from kernel import Kernel, ResourceBusy, VirtualClock
from kernel.iotable import EVENT_READ, EVENT_WRITE, IOWaitTable


class Note:
    """A callback that appends its label to a log when the kernel runs it."""

    def __init__(self, log: list[Any], label: Any, then: Any = None) -> None:
        self.log = log
        self.label = label
        self.then = then

    def _run(self) -> None:
        self.log.append(self.label)
        if self.then is not None:
            self.then()


def test_callbacks_and_tasks_share_one_fifo_ready_queue() -> None:
    log: list[Any] = []

    async def task(name: str) -> None:
        log.append(f"{name} starts")
        await kernel.sleep(0)
        log.append(f"{name} resumes")

    with Kernel() as k:
        k.call_soon(Note(log, "callback 1"))
        k.start_task(task, "A")
        k.call_soon(Note(log, "callback 2"))
        k.run_until(lambda: len(log) >= 4)
    assert log == ["callback 1", "A starts", "callback 2", "A resumes"]


def test_call_at_runs_in_deadline_order_on_the_kernel_clock() -> None:
    clock = VirtualClock()
    log: list[Any] = []
    with Kernel(clock=clock) as k:
        k.call_at(2.0, Note(log, ("two", clock)))
        k.call_at(1.0, Note(log, "one"))
        k.call_at(1.0, Note(log, "one again"))  # equal deadlines keep their order
        k.run_until(lambda: len(log) == 3)
        assert k.time() == 2.0
    assert [entry if isinstance(entry, str) else entry[0] for entry in log] == [
        "one",
        "one again",
        "two",
    ]


def test_a_cancelled_call_never_runs() -> None:
    clock = VirtualClock()
    log: list[Any] = []
    with Kernel(clock=clock) as k:
        handle = k.call_at(1.0, Note(log, "cancelled"))
        k.call_at(2.0, Note(log, "kept"))
        k.cancel_call(handle)
        k.run_until(lambda: bool(log))
    assert log == ["kept"]


def test_a_watcher_runs_each_time_its_descriptor_is_ready_until_removed() -> None:
    log: list[Any] = []
    a, b = socket.socketpair()
    with a, b, Kernel() as k:

        def drain() -> None:
            a.recv(100)

        k.add_watcher(a, EVENT_READ, Note(log, "readable", drain))
        b.send(b"1")
        k.run_until(lambda: len(log) == 1)
        b.send(b"2")
        k.run_until(lambda: len(log) == 2)
        removed = k.remove_watcher(a, EVENT_READ)
        assert isinstance(removed, Note)
        assert k.remove_watcher(a, EVENT_READ) is None
        assert k._io.waiters() == []
    assert log == ["readable", "readable"]


def test_a_watcher_replaces_a_watcher_but_not_a_parked_task() -> None:
    log: list[Any] = []
    a, b = socket.socketpair()
    table = IOWaitTable()
    with a, b:
        first = Note(log, "first")
        assert table.watch(a, EVENT_READ, first) is None
        assert table.watch(a, EVENT_READ, Note(log, "second")) is first
        assert len(table) == 1
        table.register(a, EVENT_WRITE, "a parked task")  # the other slot is free
        assert table.unwatch(a, EVENT_READ) is not None
        table.register(a, EVENT_READ, "a parked reader")
        with pytest.raises(ResourceBusy):
            table.watch(a, EVENT_READ, Note(log, "third"))
        assert table.unwatch(a, EVENT_READ) is None  # a task is not a watcher
        table.close()
    assert log == []


def test_closing_the_kernel_drops_queued_callbacks_but_lets_tasks_clean_up() -> None:
    log: list[Any] = []
    a, b = socket.socketpair()

    async def sleeper() -> None:
        try:
            await kernel.sleep(100)
        finally:
            log.append("task cleaned up")

    with a, b:
        k = Kernel()
        k.start_task(sleeper, daemon=True)
        k.run_until(lambda: bool(k._sleeping))
        k.call_soon(Note(log, "queued"))
        k.call_at(k.time(), Note(log, "timed"))
        k.add_watcher(a, EVENT_READ, Note(log, "watcher"))
        b.send(b"x")
        k.close()
    assert log == ["task cleaned up"]


def test_run_until_refuses_a_closed_or_nested_kernel() -> None:
    k = Kernel()
    k.close()
    with pytest.raises(RuntimeError, match="closed"):
        k.run_until(lambda: True)

    async def nested() -> None:
        with Kernel() as inner, pytest.raises(RuntimeError, match="already running"):
            inner.run_until(lambda: True)

    kernel.run(nested)


# -- the public hooks for code with no task: exit callbacks, cancel_task, close callbacks --


def test_exit_callbacks_run_when_the_task_ends_or_at_once_if_it_has() -> None:
    seen: list[Any] = []

    async def child() -> int:
        await kernel.sleep(0)
        return 7

    def record(task: kernel.Task) -> None:
        seen.append((task.name, task.done, task.result))

    def never(task: kernel.Task) -> None:
        seen.append("removed callback ran")

    with Kernel() as k:
        task = k.start_task(child, name="child")
        task.add_exit_callback(record)
        task.add_exit_callback(never)
        assert task.remove_exit_callback(never)
        assert not task.remove_exit_callback(never)
        k.run_until(lambda: task.done)
        assert seen == [("child", True, 7)]
        task.add_exit_callback(record)  # ended already: called at once
        assert seen == [("child", True, 7)] * 2
    with pytest.raises(TypeError, match="needs a callable"):
        task.add_exit_callback("not callable")  # type: ignore[arg-type]


def test_a_raising_exit_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def child() -> None:
        await kernel.sleep(0)

    def broken(task: kernel.Task) -> None:
        raise ValueError("broken callback")

    with Kernel() as k:
        task = k.start_task(child)
        task.add_exit_callback(broken)
        task.add_exit_callback(lambda task: seen.append("second"))
        k.run_until(lambda: task.done)
    assert seen == ["second"]
    (record,) = [r for r in caplog.records if "exit callback" in r.getMessage()]
    assert record.exc_info is not None and str(record.exc_info[1]) == "broken callback"


def test_cancel_task_from_a_callback_does_not_wait() -> None:
    clock = VirtualClock()
    steps: list[str] = []

    async def sleeper() -> None:
        try:
            await kernel.sleep(100)
        finally:
            steps.append("cleanup")

    with Kernel(clock=clock) as k:
        task = k.start_task(sleeper)
        k.call_at(
            1.0, Note(steps, "cancelling", then=lambda: steps.append(str(k.cancel_task(task))))
        )
        k.run_until(lambda: task.done)
        assert steps == ["cancelling", "True", "cleanup"]
        assert task.cancelled and isinstance(task.exception, kernel.TaskCancelled)
        assert k.time() == 1.0
        assert k.cancel_task(task) is False  # ended already
        with pytest.raises(TypeError, match=r"cancel_task\(exc=...\) needs an exception"):
            k.cancel_task(task, exc=42)  # type: ignore[arg-type]
        with Kernel() as other:
            stranger = other.start_task(sleeper, daemon=True)
            with pytest.raises(ValueError, match="not a task of this kernel"):
                k.cancel_task(stranger)


async def sleep_then_note(order: list[str], note: str) -> None:
    """A task that sleeps long, and notes when its cleanup runs."""
    try:
        await kernel.sleep(100)
    finally:
        order.append(note)


def test_close_callbacks_run_after_the_tasks_last_added_first() -> None:
    order: list[str] = []
    k = Kernel()
    k.start_task(sleep_then_note, order, "task cleanup", daemon=True)
    k.add_close_callback(lambda: order.append("first added"))
    k.add_close_callback(lambda: order.append("second added"))
    k.close()
    assert order == ["task cleanup", "second added", "first added"]
    with pytest.raises(RuntimeError, match="closed"):
        k.add_close_callback(lambda: None)


def test_shutdown_steps_run_after_the_tasks_while_the_kernel_can_still_turn() -> None:
    order: list[str] = []

    def step() -> None:
        # Callbacks still run here, and so do tasks: a step may turn the kernel.
        k.call_soon(Note(order, "callback queued by the step"))
        k.run_until(lambda: "callback queued by the step" in order)
        # Left running: close() cancels it.
        k.start_task(sleep_then_note, order, "step's task cleanup", daemon=True)

    k = Kernel(clock=VirtualClock())
    k.start_task(sleep_then_note, order, "task cleanup", daemon=True)
    k.call_soon(Note(order, "callback queued before close"))
    k.add_close_callback(lambda: order.append("close callback"))
    k.add_shutdown_step(lambda: order.append("first step added"))
    k.add_shutdown_step(step)
    k.close()
    assert order == [
        "task cleanup",  # (ahead of the callback in the ready queue)
        "callback queued before close",  # not dropped: a step may be waiting on it
        "callback queued by the step",
        "first step added",
        "step's task cleanup",
        "close callback",
    ]
    with pytest.raises(RuntimeError, match="closed"):
        k.add_shutdown_step(lambda: None)


def test_without_shutdown_steps_close_drops_queued_callbacks() -> None:
    order: list[str] = []
    k = Kernel()
    k.call_soon(Note(order, "dropped"))
    k.close()
    assert order == []


def test_the_tracer_is_public_for_the_layers_above() -> None:
    def tracer(event: str, task: Any, **details: Any) -> None:
        pass

    with Kernel(tracer=tracer) as traced, Kernel() as plain:
        assert traced.tracer is tracer
        assert plain.tracer is None


# -- call_threadsafe: what a raising callback does --


class OwnBaseException(BaseException):
    """A program's own BaseException, not meant to stop anything."""


def raise_from_a_threadsafe_callback(error: BaseException) -> str:
    """Run a kernel whose main task has another thread hand it a callback raising
    ``error``; return what main returns, or let ``run()`` raise."""

    def callback() -> None:
        raise error

    async def main() -> str:
        k = kernel.current_kernel()
        assert k is not None
        thread = threading.Thread(target=k.call_threadsafe, args=(callback,))
        thread.start()
        thread.join()
        await kernel.sleep(1)  # the callback runs meanwhile
        return "main finished"

    return str(kernel.run(main, clock=VirtualClock()))


@pytest.mark.parametrize(
    "error",
    [
        ValueError("an error"),
        asyncio.CancelledError("asyncio's cancellation"),
        kernel.TaskCancelled("the kernel's cancellation"),
        GeneratorExit("closing"),
        OwnBaseException("the program's own"),
    ],
    ids=type,
)
def test_a_threadsafe_callback_that_raises_is_logged_and_the_program_goes_on(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="kernel"):
        assert raise_from_a_threadsafe_callback(error) == "main finished"
    [record] = caplog.records
    assert "called through call_threadsafe, raised" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is error


@pytest.mark.parametrize("error", [KeyboardInterrupt("Ctrl-C"), SystemExit("exit")], ids=type)
def test_keyboardinterrupt_or_systemexit_from_a_threadsafe_callback_stops_the_program(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(type(error)) as info:
        raise_from_a_threadsafe_callback(error)
    assert info.value is error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
