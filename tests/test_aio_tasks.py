"""kernel.aio.Task: asyncio's Task semantics on the kernel's ready queue.

Plain ``def`` tests: each drives an adapter loop (the ``aio_loop`` fixture, on a
``VirtualClock``) itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import io
import sys
import types
import weakref
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

import pytest

import kernel.aio
from kernel.aio import EventLoop, Task

T = TypeVar("T")


def create_task(loop: EventLoop, coro: Coroutine[Any, Any, T]) -> Task[T]:
    """``loop.create_task(coro)``, typed as the adapter's Task that it is."""
    task = loop.create_task(coro)
    assert isinstance(task, Task)
    return task


def run_once(loop: EventLoop) -> None:
    """Run one turn of ``loop``: the callbacks and task steps queued so far."""
    loop.stop()
    loop.run_forever()


# -- scheduling ------------------------------------------------------------------------------------


def test_task_steps_interleave_in_fifo_order(aio_loop: EventLoop) -> None:
    log: list[str] = []

    async def worker(name: str) -> None:
        for i in range(3):
            log.append(f"{name}{i}")
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(worker(name) for name in "abc"))

    aio_loop.run_until_complete(main())
    assert log == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


def test_steps_and_callbacks_share_the_queue(aio_loop: EventLoop) -> None:
    log: list[str] = []

    async def worker() -> None:
        log.append("step 1")
        await asyncio.sleep(0)
        log.append("step 2")

    aio_loop.call_soon(log.append, "callback before")
    task = aio_loop.create_task(worker())
    aio_loop.call_soon(log.append, "callback after")
    aio_loop.run_until_complete(task)
    assert log == ["callback before", "step 1", "callback after", "step 2"]


def test_a_task_is_a_future_with_the_coroutines_result(aio_loop: EventLoop) -> None:
    async def answer() -> int:
        await asyncio.sleep(1)
        return 42

    log: list[int] = []
    task = aio_loop.create_task(answer())
    assert isinstance(task, Task)
    assert asyncio.isfuture(task)
    task.add_done_callback(lambda t: log.append(t.result()))
    assert aio_loop.run_until_complete(task) == 42
    run_once(aio_loop)  # the done callback's turn
    assert log == [42]
    assert aio_loop.time() == 1.0
    with pytest.raises(RuntimeError, match="does not support set_result"):
        task.set_result(1)
    with pytest.raises(RuntimeError, match="does not support set_exception"):
        task.set_exception(ValueError())


def test_a_failing_task_holds_the_exception(aio_loop: EventLoop) -> None:
    async def fail() -> None:
        raise ValueError("boom")

    task = aio_loop.create_task(fail())
    with pytest.raises(ValueError, match="boom"):
        aio_loop.run_until_complete(task)
    assert type(task.exception()) is ValueError


def test_a_task_exception_never_retrieved_is_reported(aio_loop: EventLoop) -> None:
    reports: list[dict[str, Any]] = []
    aio_loop.set_exception_handler(lambda loop, context: reports.append(context))

    async def fail() -> None:
        raise ValueError("nobody looked")

    task = aio_loop.create_task(fail())
    run_once(aio_loop)
    assert task.done()
    del task
    gc.collect()
    assert [(c["message"], repr(c["exception"])) for c in reports] == [
        ("Task exception was never retrieved", "ValueError('nobody looked')")
    ]

    # The exception that run_until_complete raised was looked at: nothing more to report.
    reports.clear()
    with pytest.raises(ValueError):
        aio_loop.run_until_complete(fail())
    gc.collect()
    assert reports == []


def test_create_task_wants_a_coroutine(aio_loop: EventLoop) -> None:
    with pytest.raises(TypeError, match="a coroutine was expected"):
        aio_loop.create_task(42)  # type: ignore[arg-type]


# -- cancellation ----------------------------------------------------------------------------------


def test_cancel_while_awaiting_a_future_cancels_the_future(aio_loop: EventLoop) -> None:
    future = aio_loop.create_future()
    log: list[str] = []

    async def waiter() -> None:
        try:
            await future
        except asyncio.CancelledError as error:
            log.append(f"cancelled with {error.args!r}")
            raise

    task = aio_loop.create_task(waiter())
    run_once(aio_loop)  # the task is now waiting on the future
    assert task.cancel("time to go") is True
    assert future.cancelled()
    with pytest.raises(asyncio.CancelledError, match="time to go"):
        aio_loop.run_until_complete(task)
    assert task.cancelled()
    assert log == ["cancelled with ('time to go',)"]
    assert task.cancel() is False  # done


def test_cancel_before_the_first_step(aio_loop: EventLoop) -> None:
    log: list[str] = []

    async def never_starts() -> None:
        log.append("started")

    task = aio_loop.create_task(never_starts())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        aio_loop.run_until_complete(task)
    assert task.cancelled()
    assert log == []


def test_a_task_may_catch_its_cancellation_and_return(aio_loop: EventLoop) -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "returned anyway"
        return "slept"

    task = aio_loop.create_task(stubborn())
    aio_loop.call_later(1, task.cancel)
    assert aio_loop.run_until_complete(task) == "returned anyway"
    assert not task.cancelled()
    assert aio_loop.time() == 1.0


def test_cancelled_during_its_last_step_it_ends_cancelled(aio_loop: EventLoop) -> None:
    async def cancels_itself() -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        return "too late"

    task = aio_loop.create_task(cancels_itself())
    with pytest.raises(asyncio.CancelledError):
        aio_loop.run_until_complete(task)
    assert task.cancelled()


def test_cancelling_and_uncancel(aio_loop: EventLoop) -> None:
    async def main() -> list[int]:
        task = asyncio.current_task()
        assert task is not None
        counts = [task.cancelling()]
        task.cancel()
        task.cancel()
        counts.append(task.cancelling())
        counts.append(task.uncancel())
        counts.append(task.uncancel())  # none left
        counts.append(task.uncancel())  # never below zero
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            counts.append(-1)
        return counts

    # From 3.13 the last uncancel() withdraws the cancel not yet thrown in; before, it still
    # arrives at the next await -- the adapter follows the running Python, as asyncio does.
    withdrawn = sys.version_info >= (3, 13)
    assert aio_loop.run_until_complete(main()) == [0, 2, 1, 0, 0] + ([] if withdrawn else [-1])
    assert aio_loop.time() == (1.0 if withdrawn else 0.0)


def test_uncancel_follows_the_running_pythons_asyncio() -> None:
    async def job() -> str:
        me = asyncio.current_task()
        assert me is not None
        me.cancel()
        me.uncancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert kernel.aio.run(job()) == asyncio.run(job())


def test_asyncio_timeout(aio_loop: EventLoop) -> None:
    async def main() -> tuple[float, int]:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await asyncio.sleep(5)
        task = asyncio.current_task()
        assert task is not None
        async with asyncio.timeout(3):
            await asyncio.sleep(1)  # done in time: nothing raised
        return aio_loop.time(), task.cancelling()

    assert aio_loop.run_until_complete(main()) == (2.0, 0)


def test_taskgroup_waits_for_all_children(aio_loop: EventLoop) -> None:
    async def child(seconds: int) -> int:
        await asyncio.sleep(seconds)
        return seconds

    async def main() -> list[int]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(child(n)) for n in (2, 1, 3)]
        return [task.result() for task in tasks]

    assert aio_loop.run_until_complete(main()) == [2, 1, 3]
    assert aio_loop.time() == 3.0


def test_taskgroup_failure_cancels_the_siblings(aio_loop: EventLoop) -> None:
    log: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append(f"slow cancelled at {aio_loop.time()}")
            raise

    async def failing() -> None:
        await asyncio.sleep(1)
        raise ValueError("child failed")

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(slow())
            group.create_task(failing())

    with pytest.raises(ExceptionGroup) as raised:
        aio_loop.run_until_complete(main())
    assert [repr(e) for e in raised.value.exceptions] == ["ValueError('child failed')"]
    assert log == ["slow cancelled at 1.0"]


def test_current_task_and_all_tasks(aio_loop: EventLoop) -> None:
    seen: list[Any] = []

    async def child() -> None:
        await asyncio.sleep(1)

    async def main() -> None:
        me = asyncio.current_task()
        other = asyncio.create_task(child())
        seen.extend([me, asyncio.all_tasks() == {me, other}])
        aio_loop.call_soon(lambda: seen.append(asyncio.current_task()))
        await other
        seen.append(asyncio.all_tasks() == {me})

    task = aio_loop.create_task(main())
    aio_loop.run_until_complete(task)
    assert seen == [task, True, None, True]  # None: a callback runs in no task
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.current_task()


# -- what a Task tells about itself ----------------------------------------------------------------


def test_names(aio_loop: EventLoop) -> None:
    async def nothing() -> None:
        pass

    unnamed = create_task(aio_loop, nothing())
    named = aio_loop.create_task(nothing(), name="worker")
    assert isinstance(named, Task)
    assert unnamed.get_name().startswith("Task-")
    assert named.get_name() == "worker"
    named.set_name(7)
    assert named.get_name() == "7"
    assert "name='7'" in repr(named)
    aio_loop.run_until_complete(asyncio.gather(unnamed, named))


def test_get_coro_and_get_context(aio_loop: EventLoop) -> None:
    async def nothing() -> None:
        pass

    coro = nothing()
    context = contextvars.copy_context()
    task = aio_loop.create_task(coro, context=context)
    assert isinstance(task, Task)
    assert task.get_coro() is coro
    assert task.get_context() is context
    aio_loop.run_until_complete(task)


def test_get_stack_and_print_stack(aio_loop: EventLoop) -> None:
    async def inner() -> None:
        await asyncio.sleep(1)
        raise ValueError("boom")

    async def outer() -> None:
        await inner()

    task = create_task(aio_loop, outer())
    run_once(aio_loop)  # suspended in inner(), at the sleep
    stack = task.get_stack()
    assert stack[0].f_code.co_name == "outer"
    out = io.StringIO()
    task.print_stack(file=out)
    assert out.getvalue().startswith("Stack for <Task pending")
    assert "in outer" in out.getvalue()

    with pytest.raises(ValueError):
        aio_loop.run_until_complete(task)
    names = [frame.f_code.co_name for frame in task.get_stack()]
    assert names[-2:] == ["outer", "inner"]  # the traceback's frames, once it failed
    assert len(task.get_stack(limit=1)) == 1
    out = io.StringIO()
    task.print_stack(file=out)
    assert out.getvalue().endswith("ValueError: boom\n")


# -- misuse gets asyncio's errors ------------------------------------------------------------------


@types.coroutine
def yield_value(value: Any) -> Generator[Any, Any, Any]:
    return (yield value)


def test_bad_yield(aio_loop: EventLoop) -> None:
    async def main() -> None:
        await yield_value(42)

    with pytest.raises(RuntimeError, match="Task got bad yield: 42"):
        aio_loop.run_until_complete(main())


def test_yielding_a_kernel_trap_says_to_use_run_kernel(aio_loop: EventLoop) -> None:
    async def main() -> None:
        await yield_value(("sleep", 1))

    with pytest.raises(RuntimeError, match=r"Task got bad yield.*run_kernel"):
        aio_loop.run_until_complete(main())


def test_yield_instead_of_yield_from(aio_loop: EventLoop) -> None:
    future = aio_loop.create_future()

    async def main() -> None:
        await yield_value(future)  # a bare `yield future`: _asyncio_future_blocking is False

    with pytest.raises(RuntimeError, match="yield was used instead of yield from"):
        aio_loop.run_until_complete(main())


def test_awaiting_a_future_of_another_loop(aio_loop: EventLoop) -> None:
    other = kernel.aio.new_event_loop()
    try:
        foreign = other.create_future()

        async def main() -> None:
            await foreign

        with pytest.raises(RuntimeError, match="attached to a different loop"):
            aio_loop.run_until_complete(main())
    finally:
        other.close()


def test_a_task_awaiting_itself(aio_loop: EventLoop) -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        await task

    with pytest.raises(RuntimeError, match="Task cannot await on itself"):
        aio_loop.run_until_complete(main())


@pytest.mark.parametrize("exit_exception", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_in_a_task_leaves_run_until_complete(
    aio_loop: EventLoop, exit_exception: type[BaseException]
) -> None:
    log: list[str] = []

    async def interrupted() -> None:
        await asyncio.sleep(1)
        raise exit_exception

    async def bystander() -> None:
        await asyncio.sleep(5)
        log.append("bystander finished")

    other = aio_loop.create_task(bystander())
    with pytest.raises(exit_exception):
        aio_loop.run_until_complete(interrupted())
    assert aio_loop.time() == 1.0
    assert not aio_loop.is_running()
    # The loop is still usable afterwards, and the other task still there.
    aio_loop.run_until_complete(other)
    assert log == ["bystander finished"]


def test_a_pending_task_destroyed_is_reported(aio_loop: EventLoop) -> None:
    reports: list[str] = []
    aio_loop.set_exception_handler(lambda loop, context: reports.append(context["message"]))

    async def waits() -> None:
        await asyncio.sleep(10)

    task = aio_loop.create_task(waits())
    run_once(aio_loop)  # parked on its sleep
    aio_loop.close()  # drops the timer that held the task
    del task
    gc.collect()
    assert reports == ["Task was destroyed but it is pending!"]


@contextlib.contextmanager
def collector_off() -> Generator[None, None, None]:
    """Turn the cyclic garbage collector off, so that only reference counting frees."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Held:
    """Something a coroutine's frame holds, to see when that frame is freed."""


async def frames_freed_once_thrown_into(ending: str) -> bool:
    """Whether a task ended by an exception thrown into it lets its frames go by refcount.

    The task waits on a future; then it is cancelled, or the future fails. Once the task
    is awaited and dropped, nothing should hold its coroutine's frames any more (the
    worker does not keep the future in a variable: its own frame would then hold the
    future, whose exception's traceback holds that frame -- a cycle of the test's making).
    """
    loop = asyncio.get_running_loop()
    held: list[weakref.ref[Held]] = []
    box: list[asyncio.Future[None]] = [loop.create_future()]
    future = weakref.ref(box[0])

    async def worker() -> None:
        big = Held()
        held.append(weakref.ref(big))
        await box.pop()

    task = loop.create_task(worker())
    await asyncio.sleep(0)  # the worker waits on the future
    if ending == "cancelled":
        task.cancel()
    else:
        waited_on = future()
        assert waited_on is not None
        waited_on.set_exception(ValueError("the future failed"))
        del waited_on
    with contextlib.suppress(asyncio.CancelledError, ValueError):
        await task
    del task
    # The loop's last callback (the one that woke us) is only let go of at the next one.
    await asyncio.sleep(0)
    return held[0]() is None and future() is None


@pytest.mark.parametrize("ending", ["cancelled", "failed"])
def test_a_task_ended_by_a_thrown_in_exception_leaves_no_cycle(
    aio_loop: EventLoop, ending: str
) -> None:
    with collector_off():
        # asyncio's own Task frees them by reference counting; so must ours.
        with asyncio.Runner() as runner:
            assert runner.run(frames_freed_once_thrown_into(ending))
        assert aio_loop.run_until_complete(frames_freed_once_thrown_into(ending))


# -- context variables -----------------------------------------------------------------------------

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_each_task_runs_in_its_own_copy_of_the_context(aio_loop: EventLoop) -> None:
    async def handler(name: str) -> list[str]:
        seen = [request.get()]  # inherited from main, at create_task
        request.set(name)
        await asyncio.sleep(0)  # the other handler sets its own value meanwhile
        seen.append(request.get())
        return seen

    async def main() -> list[Any]:
        request.set("main")
        results = await asyncio.gather(handler("a"), handler("b"))
        return [*results, request.get()]

    assert aio_loop.run_until_complete(main()) == [["main", "a"], ["main", "b"], "main"]
    assert request.get() == "none"


def test_create_task_with_a_context(aio_loop: EventLoop) -> None:
    context = contextvars.copy_context()
    context.run(request.set, "given")

    async def read() -> str:
        request.set("changed inside")
        return "read"

    async def main() -> str:
        return await aio_loop.create_task(read(), context=context)

    assert aio_loop.run_until_complete(main()) == "read"
    assert context[request] == "changed inside"  # the task ran in that very context


# -- waking a task whose future is done ---------------------------------------------------------


def wake_order(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Callbacks queued around a ``set_result`` and the wake-up of the task awaiting it."""
    log: list[str] = []

    async def waiter(fut: asyncio.Future[int]) -> None:
        log.append(f"woken with {await fut}")

    async def main() -> None:
        fut = loop.create_future()
        task = loop.create_task(waiter(fut))
        await asyncio.sleep(0)  # the waiter parks on fut
        loop.call_soon(log.append, "queued before")
        fut.set_result(1)
        loop.call_soon(log.append, "queued after")
        await task

    loop.run_until_complete(main())
    return log


def test_a_woken_task_keeps_asyncios_place_in_the_queue(aio_loop: EventLoop) -> None:
    with contextlib.closing(asyncio.new_event_loop()) as reference:
        expected = wake_order(reference)
    assert wake_order(aio_loop) == expected == ["queued before", "woken with 1", "queued after"]


def crowded_wake_order(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Who runs in which order when one future has callbacks and several awaiting tasks."""
    log: list[str] = []

    async def waiter(name: str, awaitable: Any) -> None:
        log.append(f"{name} woken with {await awaitable}")

    async def worker() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return "done"

    async def main() -> None:
        fut = loop.create_future()
        busy = loop.create_task(worker())
        first = loop.create_task(waiter("first", fut))
        late = loop.create_task(waiter("late", fut))
        on_task = loop.create_task(waiter("on the worker", busy))
        await asyncio.sleep(0)  # first, late and on_task park
        fut.add_done_callback(lambda _: log.append("callback added after the waiters"))
        fut.set_result(1)
        await asyncio.gather(first, late, on_task)

        fut2 = loop.create_future()
        fut2.add_done_callback(lambda _: log.append("callback added before the waiter"))
        after = loop.create_task(waiter("after a callback", fut2))
        await asyncio.sleep(0)
        fut2.set_result(2)
        await after

    loop.run_until_complete(main())
    return log


def test_tasks_and_callbacks_on_one_future_wake_in_asyncios_order(aio_loop: EventLoop) -> None:
    with contextlib.closing(asyncio.new_event_loop()) as reference:
        expected = crowded_wake_order(reference)
    assert crowded_wake_order(aio_loop) == expected
    assert expected == [
        "first woken with 1",
        "late woken with 1",
        "callback added after the waiters",
        "on the worker woken with done",
        "callback added before the waiter",
        "after a callback woken with 2",
    ]


def test_untraced_the_first_waiting_task_costs_the_future_no_callback_list(
    aio_loop: EventLoop,
) -> None:
    # asyncio's C Future keeps its first callback in a field; ours keeps its first waiting
    # task in one (_awaited_by), so a plain ``await fut`` allocates no list and no pair.
    async def main() -> None:
        fut = aio_loop.create_future()
        task = create_task(aio_loop, fut_waiter(fut))
        await asyncio.sleep(0)
        assert fut._callbacks is None and fut._awaited_by is task
        second = create_task(aio_loop, fut_waiter(fut))
        await asyncio.sleep(0)
        assert len(fut._callbacks) == 1  # the second: __wakeup
        fut.set_result(3)
        assert await task == await second == 3
        assert fut._awaited_by is None

    aio_loop.run_until_complete(main())


async def fut_waiter(fut: asyncio.Future[int]) -> int:
    return await fut


def test_untraced_a_result_wakes_the_task_without_a_handle(aio_loop: EventLoop) -> None:
    # The task itself goes on the ready queue, as for every step; an exception still takes
    # __wakeup's way through a Handle, and the task gets it.
    queued: list[str] = []
    call_soon = aio_loop.call_soon

    def counting_call_soon(callback: Any, *args: Any, context: Any = None) -> Any:
        queued.append(getattr(callback, "__qualname__", type(callback).__name__))
        return call_soon(callback, *args, context=context)

    aio_loop.call_soon = counting_call_soon  # type: ignore[method-assign,assignment]

    async def waiter(fut: asyncio.Future[int]) -> int:
        return await fut

    async def main() -> tuple[int, BaseException | None]:
        ok, bad = aio_loop.create_future(), aio_loop.create_future()
        first = create_task(aio_loop, waiter(ok))
        second = create_task(aio_loop, waiter(bad))
        await asyncio.sleep(0)
        assert "Task.__wakeup()" in repr(ok)  # as asyncio's repr shows a waiting task
        ok.set_result(7)
        bad.set_exception(ValueError("no"))
        value = await first
        with contextlib.suppress(ValueError):
            await second
        return value, second.exception()

    result, error = aio_loop.run_until_complete(main())
    assert result == 7 and isinstance(error, ValueError)
    # One: the exception's. The two results (ok for first, first for main) needed none.
    assert queued.count("Task.__wakeup") == 1


def _task_reprs(loop: asyncio.AbstractEventLoop) -> list[str]:
    """A task's repr at each stage of its life, with the loop-specific parts cut away: the
    words' names (``name=``, ``coro=``...) in their order, and the state word in full."""
    seen: list[str] = []

    def words(task: asyncio.Task[Any]) -> str:
        inside = repr(task).removeprefix("<Task ").removesuffix(">")
        state, *rest = inside.split(" ")
        keys = [word.split("=")[0] for word in rest if "=" in word]
        return " ".join([state, *keys])

    async def child(fut: asyncio.Future[int]) -> int:
        return await fut

    async def main() -> None:
        fut = loop.create_future()
        task = loop.create_task(child(fut), name="c")
        task.add_done_callback(lambda _: None)
        seen.append(words(task))  # pending, not started
        await asyncio.sleep(0)
        seen.append(words(task))  # waiting for fut
        task.cancel()
        seen.append(words(task))  # cancelling
        with contextlib.suppress(asyncio.CancelledError):
            await task
        seen.append(words(task))  # cancelled
        done = loop.create_task(child(fut := loop.create_future()), name="d")
        fut.set_result(3)
        await done
        seen.append(words(done))  # finished with a result
        failed = loop.create_task(child(fut := loop.create_future()), name="e")
        fut.set_exception(ValueError("no"))
        with contextlib.suppress(ValueError):
            await failed
        seen.append(words(failed))  # finished with an exception

    loop.run_until_complete(main())
    return seen


def test_task_repr_has_asyncios_words_in_asyncios_order(aio_loop: EventLoop) -> None:
    reference = asyncio.new_event_loop()
    try:
        expected = _task_reprs(reference)
    finally:
        reference.close()
    assert _task_reprs(aio_loop) == expected
    assert expected[2].startswith("cancelling name coro wait_for")  # (what it checks)
