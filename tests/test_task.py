"""Tasks: spawn, join, wait, cancel, results, and the errors for misuse."""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

import pytest

import kernel
from kernel import TaskCancelled, TaskError


async def returns(value: Any) -> Any:
    return value


async def fails() -> None:
    raise ValueError("boom")


async def sleeper(seconds: float, log: list[str], name: str) -> str:
    log.append(f"{name} start")
    await kernel.sleep(seconds)
    log.append(f"{name} end")
    return name


async def test_spawn_and_join_return_results() -> None:
    t1 = await kernel.spawn(returns, 1)
    t2 = await kernel.spawn(returns(2))
    assert await t1.join() == 1
    assert await t2.join() == 2
    assert t1.done and not t1.cancelled
    assert t1.result == 1
    assert t1.exception is None


async def test_tasks_interleave_in_strict_fifo_order() -> None:
    log: list[str] = []

    async def worker(name: str) -> None:
        for i in range(3):
            log.append(f"{name}{i}")
            await kernel.sleep(0)

    tasks = [await kernel.spawn(worker, name) for name in "abc"]
    for task in tasks:
        await task.join()
    assert log == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


async def test_task_identity_fields() -> None:
    me = await kernel.current_task()
    child = await kernel.spawn(returns, None, name="worker", daemon=True)
    other = await kernel.spawn(returns, None)
    assert me.id == 1 and me.name == "test_task_identity_fields"
    assert (child.id, child.name, child.daemon) == (2, "worker", True)
    assert (other.id, other.name, other.daemon) == (3, "returns", False)
    assert repr(child) == "<Task id=2 name='worker' state=READY>"
    await child.join()
    await other.join()
    assert repr(child) == "<Task id=2 name='worker' state=TERMINATED>"
    assert child.coro.__qualname__ == "returns"  # type: ignore[union-attr]


async def test_join_of_a_failed_task_raises_task_error_from_the_original() -> None:
    task = await kernel.spawn(fails)
    with pytest.raises(TaskError) as info:
        await task.join()
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "boom"
    assert isinstance(task.exception, ValueError)
    with pytest.raises(TaskError):
        task.result  # noqa: B018 - the property raises


async def test_joining_twice_is_an_error() -> None:
    task = await kernel.spawn(returns, 5)
    assert await task.join() == 5
    with pytest.raises(RuntimeError, match="already joined"):
        await task.join()
    await task.wait()  # wait() and result can be used any number of times
    assert task.result == 5


async def test_result_of_a_running_task_is_an_error() -> None:
    task = await kernel.spawn(kernel.sleep, 1)
    with pytest.raises(RuntimeError, match="has not finished"):
        task.result  # noqa: B018
    assert task.exception is None
    await task.cancel()


async def test_wait_does_not_raise_for_failures() -> None:
    task = await kernel.spawn(fails)
    await task.wait()
    await task.wait()
    assert isinstance(task.exception, ValueError)


async def test_cancel_a_sleeping_task(virtual_clock: kernel.VirtualClock) -> None:
    log: list[str] = []
    task = await kernel.spawn(sleeper, 10, log, "s")
    await kernel.sleep(1)
    assert await task.cancel() is True
    assert virtual_clock.now() == 1.0
    assert task.cancelled and isinstance(task.exception, TaskCancelled)
    assert log == ["s start"]
    assert await task.cancel() is False  # already ended
    with pytest.raises(TaskError) as info:
        await task.join()
    assert isinstance(info.value.__cause__, TaskCancelled)


async def test_cancel_is_delivered_at_the_next_blocking_trap() -> None:
    log: list[str] = []

    async def worker() -> None:
        log.append("runs until its first blocking call")
        x = await kernel.clock()  # non-blocking trap: not a cancellation point
        log.append(f"still running at {x}")
        try:
            await kernel.sleep(0)
        except TaskCancelled:
            log.append("cancelled at sleep(0)")
            raise

    task = await kernel.spawn(worker)
    await task.cancel()
    assert log == [
        "runs until its first blocking call",
        "still running at 0.0",
        "cancelled at sleep(0)",
    ]


async def test_cancellation_is_delivered_exactly_once() -> None:
    caught: list[str] = []

    async def stubborn() -> str:
        try:
            await kernel.sleep(10)
        except TaskCancelled:
            caught.append("once")
        await kernel.sleep(1)  # no second cancellation arrives here
        return "survived"

    task = await kernel.spawn(stubborn)
    await kernel.sleep(0)
    await task.cancel(blocking=False)
    await task.cancel(blocking=False)
    assert await task.join() == "survived"
    assert caught == ["once"]


async def test_cancel_with_a_custom_exception() -> None:
    task = await kernel.spawn(kernel.sleep, 10)
    await kernel.sleep(0)
    await task.cancel(KeyError("why"))
    assert isinstance(task.exception, KeyError)
    with pytest.raises(TypeError, match="exception class or instance"):
        await task.cancel(42)  # type: ignore[arg-type]


async def test_blocking_self_cancel_is_an_error() -> None:
    me = await kernel.current_task()
    with pytest.raises(RuntimeError, match="cannot cancel itself"):
        await me.cancel()


async def test_non_blocking_self_cancel_arrives_at_the_next_blocking_call() -> None:
    me = await kernel.current_task()
    assert await me.cancel(blocking=False) is True
    with pytest.raises(TaskCancelled):
        await kernel.sleep(0)


async def test_waiting_for_yourself_is_an_error() -> None:
    me = await kernel.current_task()
    with pytest.raises(RuntimeError, match="cannot wait for itself"):
        await me.wait()


async def test_disable_cancellation_defers_until_the_block_ends(
    virtual_clock: kernel.VirtualClock,
) -> None:
    log: list[Any] = []

    async def worker() -> None:
        async with kernel.disable_cancellation():
            await kernel.sleep(5)  # the cancel at t=1 waits
            log.append(("slept", virtual_clock.now()))
            pending = await kernel.check_cancellation()
            log.append(type(pending).__name__)
        log.append("left the block")
        try:
            await kernel.sleep(5)
        except TaskCancelled:
            log.append(("cancelled", virtual_clock.now()))
            raise

    task = await kernel.spawn(worker)
    await kernel.sleep(1)
    await task.cancel()
    assert log == [("slept", 5.0), "TaskCancelled", "left the block", ("cancelled", 5.0)]


async def test_check_cancellation_outside_a_block_raises_at_once() -> None:
    assert await kernel.check_cancellation() is None
    me = await kernel.current_task()
    await me.cancel(blocking=False)
    with pytest.raises(TaskCancelled):
        await kernel.check_cancellation()
    assert await kernel.check_cancellation() is None  # delivered once


def regular(x: int) -> int:
    return x


class TestSpawnErrors:
    async def test_regular_function(self) -> None:
        with pytest.raises(
            TypeError, match=r"is a regular function \(it returned 1\); declare it with `async def`"
        ):
            await kernel.spawn(regular, 1)  # type: ignore[arg-type]

    async def test_not_callable(self) -> None:
        with pytest.raises(TypeError, match="needs an async function or a coroutine, got 42"):
            await kernel.spawn(42)  # type: ignore[arg-type]

    async def test_coroutine_with_arguments(self) -> None:
        coro = returns(1)
        with pytest.raises(TypeError, match=r"coroutine object \*and\* arguments"):
            await kernel.spawn(coro, 2)
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"  # no "never awaited"

    async def test_callable_returning_something_else(self) -> None:
        class Weird:
            def __call__(self) -> int:
                return 1

        with pytest.raises(TypeError, match="expecting a coroutine, but it returned 1"):
            await kernel.spawn(Weird())  # type: ignore[arg-type]


async def test_spawn_takes_generator_functions_plain_or_decorated() -> None:
    # The course's older style: `yield from` instead of `await`. The kernel runs both, and
    # spawn()'s type accepts both (mypy checks this file).
    def plain(n: int) -> Generator[Any, Any, int]:
        yield from kernel.sleep(0)
        return n + 1

    @kernel.coroutine
    def decorated(n: int) -> Generator[Any, Any, int]:
        yield from kernel.sleep(0)
        return n * 2

    first = await kernel.spawn(plain, 1)
    second = await kernel.spawn(decorated, 5)
    async with kernel.TaskGroup() as group:
        third = await group.spawn(plain, 10)
    assert (await first.join(), await second.join(), third.result) == (2, 10, 11)


def test_a_task_ended_by_its_own_timeout_failed_and_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fetch() -> str:
        async with kernel.timeout_after(1):
            await kernel.sleep(5)
        return "data"

    async def main() -> kernel.Task:
        task = await kernel.spawn(fetch)
        await kernel.sleep(2)
        return task

    task = kernel.run(main, clock=kernel.VirtualClock())
    assert not task.cancelled and isinstance(task.exception, kernel.TaskTimeout)
    with pytest.raises(TaskError):
        _ = task.result
    del task  # (looked at now; the crash report below came when the kernel closed)
    assert "fetch" in caplog.text and "TaskTimeout" in caplog.text


async def test_a_join_that_timed_out_collected_nothing_and_may_be_tried_again(
    virtual_clock: kernel.VirtualClock,
) -> None:
    async def slow() -> str:
        await kernel.sleep(5)
        return "done"

    task = await kernel.spawn(slow)
    await kernel.ignore_after(1, task.join)
    assert await task.join() == "done"
    with pytest.raises(RuntimeError, match="already joined"):
        await task.join()  # (a join that did collect it counts)
